"""The overdue clock: every so often, publish `RequestOverdue` for open requests past due.

Exactly once per request per due time, in effect:

- a sweep reads every open request's stored snapshot and finds those past due (the shared
  rule, `connect311_contracts.due`), minus those recorded in `ingestor_overdue_published`;
- under the ingest lock it reads their states again (a batch may just have closed one or
  moved its due date: then it is not late, or not late for that due time), publishes, waits
  for the broker's acknowledgement, and only then records (request id, due time);
- a crash between the acknowledgement and the record publishes again on the next sweep with
  the SAME event id (derived from request id and due time), and so does a second instance
  sweeping the same database: consumers de-duplicate by event id.

A request closed before its due time is never open and late, so it never gets one; a due
date that moves (the feed changed `expected_datetime`, the operator changed a target) is a
new (request, due time) and gets its own. See docs/architecture.md, "Where the clock lives".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from connect311_contracts.envelope import utc_now
from connect311_contracts.events import RequestOverdue
from connect311_contracts.service_levels import ServiceLevels, ServiceLevelsError, load
from connect311_ingestor.overdue import Late, due_input, due_input_from_json, late, overdue_event
from connect311_ingestor.pipeline import Ingestor

__all__ = ["OverdueSweeper"]

log = logging.getLogger(__name__)


class OverdueSweeper:
    """Finds open requests past due and publishes each one's overdue event once."""

    def __init__(
        self,
        ingestor: Ingestor,
        levels_file: Path | None,
        zone_name: str,
        alert_window: timedelta,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 500,
    ) -> None:
        self.ingestor = ingestor
        self.store = ingestor.store
        self.metrics = ingestor.metrics
        self.levels_file = levels_file
        self.zone_name = zone_name
        self.alert_window = alert_window
        self.clock = clock
        self.batch_size = batch_size
        # (request id, due time) known to be published: spares a database look-up per late
        # request per sweep. Only ever holds what the database also holds.
        self._published: set[tuple[str, datetime]] = set()

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Sweep every `interval_s` until `stop` is set; a failed sweep is logged, retried."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # the broker or database away: the next sweep tries again
                log.exception("overdue sweep failed; next one in %.0f s", interval_s)
            with contextlib.suppress(TimeoutError):  # the interval passed: sweep again
                await asyncio.wait_for(stop.wait(), interval_s)

    async def sweep(self) -> int:
        """One pass: publish every late request's event not yet recorded; how many."""
        try:
            levels = await asyncio.to_thread(load, self.levels_file, self.zone_name)
        except ServiceLevelsError as exc:
            # No fallback to feed dates only: judging by half the rules would publish events
            # the fixed file contradicts. Nothing is lost: the next good sweep catches up.
            log.error("overdue sweep skipped, service levels unusable: %s", exc)
            self.metrics.overdue_sweeps.labels("service_levels").inc()
            return 0
        found = await asyncio.to_thread(self._scan, levels, self.clock())
        fresh = [f for f in found if f.key not in self._published]
        if fresh:
            ids = [f.service_request_id for f in fresh]
            recorded = await asyncio.to_thread(self.store.overdue_published, ids)
            self._published |= recorded
            fresh = [f for f in fresh if f.key not in recorded]
        published = 0
        for start in range(0, len(fresh), self.batch_size):
            published += await self._publish(fresh[start : start + self.batch_size], levels)
        self.metrics.overdue_sweeps.labels("ok").inc()
        self.metrics.overdue_last_sweep.set(time.time())
        return published

    def _scan(self, levels: ServiceLevels, now: datetime) -> list[Late]:
        """Every open request past due at `now` (a worker thread: it reads them all)."""
        found: list[Late] = []
        for rows in self.store.open_snapshots():
            for service_request_id, snapshot in rows:
                try:
                    item = due_input_from_json(snapshot)
                except (ValueError, KeyError, TypeError):
                    self.metrics.overdue_unreadable.inc()
                    continue
                hit = late(service_request_id, item, levels, now)
                if hit is not None:
                    found.append(hit[0])
        return found

    async def _publish(self, chunk: list[Late], levels: ServiceLevels) -> int:
        async with self.ingestor.lock:
            states = await asyncio.to_thread(
                self.store.load_states, [f.service_request_id for f in chunk]
            )
            now = self.clock()
            events: list[RequestOverdue] = []
            for found in chunk:
                state = states.get(found.service_request_id)
                if state is None:
                    continue
                hit = late(found.service_request_id, due_input(state.snapshot), levels, now)
                # Closed meanwhile, or its due time moved: judged again by the next sweep.
                if hit is not None and hit[0] == found:
                    events.append(overdue_event(state.snapshot, hit[1], now, self.alert_window))
            if not events:
                return 0
            await self.ingestor.publisher.publish_events(events)
            # Only after the acknowledgement: a crash before this publishes the same ids again.
            await asyncio.to_thread(self._record, events)
        self._published.update(
            (e.service_request_id, e.due_datetime.replace(tzinfo=None)) for e in events
        )
        self.metrics.events_out.labels("request.overdue").inc(len(events))
        for event in events:
            self.metrics.overdue_published.labels("backfill" if event.backfill else "alert").inc()
        return len(events)

    def _record(self, events: list[RequestOverdue]) -> None:
        rows = [
            (e.service_request_id, e.due_datetime.replace(tzinfo=None), e.event_id) for e in events
        ]
        self.store.record_overdue(rows)
        keep = self.ingestor.keep_published
        if keep > timedelta(0):  # re-published with the batches' events after a broker loss
            self.store.remember_events({e.event_id: e.model_dump_json() for e in events}, keep)
