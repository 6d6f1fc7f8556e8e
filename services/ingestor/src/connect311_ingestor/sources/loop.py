"""Running a poller forever: polite intervals, longer back-off while a feed keeps failing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import datetime
from typing import Protocol

from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.pipeline import IngestSummary
from connect311_ingestor.store import IngestorStore

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0


class Poller(Protocol):
    """Anything that polls one source once."""

    @property
    def source(self) -> str: ...

    async def poll_once(self) -> IngestSummary: ...

    async def backfill_window(
        self, since: datetime, until: datetime | None = None
    ) -> IngestSummary: ...


def next_delay(interval_s: float, failures: int) -> float:
    """Seconds until the next poll: the interval, doubled per consecutive failure, jittered."""
    base = min(interval_s * 2.0**failures, max(MAX_BACKOFF_S, interval_s))
    return base * random.uniform(0.9, 1.1)


def is_first_poll(cursor: dict[str, object] | None) -> bool:
    """Whether a source has never finished a poll (its watermark is not caught up yet)."""
    return not (cursor or {}).get("caught_up", False)


def warn_if_empty_first_poll(source: str, summary: IngestSummary) -> None:
    """A first poll that finds nothing is almost always a wrong URL, place or time zone."""
    if summary.records == 0:
        log.warning(
            "%s: the first poll found no records in its backfill window: check the feed URL, "
            "place and time zone, or fetch older history with "
            "`connect311-ingestor backfill %s --since YYYY-MM-DD`",
            source,
            source,
        )


async def run_forever(
    poller: Poller,
    interval_s: float,
    metrics: IngestMetrics,
    stop: asyncio.Event,
    store: IngestorStore | None = None,
) -> None:
    """Poll until `stop` is set; a failing cycle is counted and retried later, never fatal.

    With a store, each poll's time and error are recorded for `connect311-ingestor sources`.
    """
    failures = 0
    while not stop.is_set():
        first = False
        try:
            if store is not None:
                first = is_first_poll(await asyncio.to_thread(store.get_cursor, poller.source))
            summary = await poller.poll_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A feed or broker outage must not stop the other feeds or the push endpoint.
            failures += 1
            metrics.poll_errors.labels(poller.source).inc()
            log.exception("poll of %s failed (%d in a row)", poller.source, failures)
            await _record(store, poller.source, f"{exc.__class__.__name__}: {exc}")
        else:
            failures = 0
            metrics.last_poll.labels(poller.source).set(time.time())
            await _record(store, poller.source, None)
            if first:
                warn_if_empty_first_poll(poller.source, summary)
            log.info(
                "polled %s: %d records, events %s, rejects %s",
                poller.source,
                summary.records,
                dict(summary.events),
                dict(summary.rejects),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), next_delay(interval_s, failures))


async def _record(store: IngestorStore | None, source: str, error: str | None) -> None:
    if store is None:
        return
    try:
        await asyncio.to_thread(store.record_poll, source, error)
    except Exception:
        # Bookkeeping for the operator must never stop polling.
        log.exception("could not record the poll of %s", source)
