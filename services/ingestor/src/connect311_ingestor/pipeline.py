"""The ingest step every source shares: detect changes, publish, then remember.

Order matters: events are published and acknowledged BEFORE their fingerprints are stored,
so a crash in between re-publishes (with the same deterministic event ids) and never skips.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connect311_contracts.envelope import utc_now
from connect311_contracts.events import REQUEST_EVENT_ADAPTER, RequestEvent
from connect311_contracts.rejects import RecordRejected, clip
from connect311_contracts.request import ServiceRequest
from connect311_ingestor.changes import StoredState, as_of, decide
from connect311_ingestor.exclusions import NOTHING_EXCLUDED, Exclusion
from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.notes import Step, steps
from connect311_ingestor.publisher import Publisher
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.scrub import content_hash, mask_text, record_id, scrubbed_json
from connect311_ingestor.store import IngestorStore
from connect311_ingestor.update_notes import as_noted, past_note, update_key
from connect311_ingestor.updates import UpdateLike, apply_update


@dataclass
class IngestSummary:
    """What a batch (or a whole import) did: counts for the CLI and the push response.

    `rejects` counts every rejected record of this run, per reason; `new_rejects` only those
    never recorded before (the ingestor_reject_count table and the metric count these).
    """

    records: int = 0
    rows: int = 0
    """Export rows those records came from (more than `records` when rows are folded)."""
    accepted: int = 0
    unchanged: int = 0
    unmatched_updates: int = 0
    excluded: int = 0
    """Records of a category the source leaves out (`exclusions`): not published, not a reject."""
    past_notes: int = 0
    """Open311 updates older than the stored state, filed in the timeline as history."""
    events: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    new_rejects: int = 0
    """Rejects seen for the first time (the others were recorded by an earlier run)."""
    anomalies: Counter[str] = field(default_factory=Counter)
    """Data-quality notes ('<field>:<kind>') of records kept that caused an event."""
    backfill: bool = False

    def add(self, other: IngestSummary) -> None:
        """Fold another summary into this one."""
        self.records += other.records
        self.rows += other.rows
        self.accepted += other.accepted
        self.unchanged += other.unchanged
        self.unmatched_updates += other.unmatched_updates
        self.past_notes += other.past_notes
        self.excluded += other.excluded
        self.events.update(other.events)
        self.rejects.update(other.rejects)
        self.new_rejects += other.new_rejects
        self.anomalies.update(other.anomalies)


@dataclass(frozen=True)
class Outcome:
    """What happened to one record of a batch (for the push endpoint's answer)."""

    service_request_id: str | None
    event_type: str | None = None
    reject: RecordRejected | None = None
    excluded: bool = False


REJECT_NAMESPACE = uuid.UUID("3b0e7f0c-6c1e-5a55-8d0e-311e3ec7ed00")


def new_trace_id() -> str:
    """A fresh trace id for one ingested record.

    Random but not secret: the pseudo-random generator avoids an os.urandom call per record.
    """
    return f"{random.getrandbits(128):032x}"


def reject_identity(result: Rejected) -> tuple[str, str]:
    """(what the rejected record is, a digest of its content).

    A parsed record is named by its own id when it has one, else by its content alone: a
    re-polled window finds it at another location (the location holds the window's times),
    and it must still be recorded once. Only what could not be parsed into a record (a
    whole document, a broken CSV line) is named by where it was read.
    """
    known_id = record_id(result.record, result.allow) if result.allow is not None else None
    digest = content_hash(result.record, result.raw)
    if known_id is not None:
        return f"id {known_id}", digest
    if result.record is not None:
        return "no id", digest
    return f"at {result.location}", digest


def reject_raw(result: Rejected) -> str:
    """What of the rejected input the operator may see (allow-listed; see `scrub`)."""
    if result.record is not None and result.allow is not None:
        return scrubbed_json(result.record, result.allow)
    return mask_text(result.raw)


def to_reject(result: Rejected, source: str, trace_id: str | None = None) -> RecordRejected:
    """The rejects-topic message for a parser's rejection (the one place raw is scrubbed).

    Its event id is derived from (source, record id or location, reason, content digest), so
    the same bad record read twice (a re-import, a re-polled window) carries the same id and
    is recorded once.
    """
    name, digest = reject_identity(result)
    key = f"{source}\n{name}\n{result.reason.value}\n{digest}"
    return RecordRejected(
        event_id=str(uuid.uuid5(REJECT_NAMESPACE, key)),
        source=source,
        reason=result.reason,
        detail=clip(result.detail, 1900),
        location=result.location,
        raw=clip(reject_raw(result)),
        trace_id=trace_id,
    )


def _decide_record(
    result: Accepted,
    known: dict[str, StoredState],
    changed: dict[str, StoredState],
    backfill: bool,
    now: datetime,
    trace_id: str,
) -> list[RequestEvent]:
    """The events one accepted record causes, in order; `known`/`changed` move along.

    A record with comments is run as successive snapshots, one per new comment (`notes`).
    Each step's occurred_at is a microsecond later than the one before, so the timeline
    keeps steps that share a source time in order.
    """
    srid = result.request.service_request_id
    previous = known.get(srid)
    if not result.notes:
        plan = [Step(result.request, news=False)]
    else:
        plan = steps(previous.snapshot if previous else None, result.request, result.notes)
    events: list[RequestEvent] = []
    for i, step in enumerate(plan):
        decision = decide(
            known.get(srid),
            step.request,
            backfill=backfill,
            now=now + timedelta(microseconds=i),
            trace_id=trace_id,
            news=step.news,
        )
        if decision.state is not None:
            known[srid] = changed[srid] = decision.state
        if decision.event is not None:
            events.append(decision.event)
    return events


class Ingestor:
    """Turns parse results into published events and rejects, and remembers what it saw."""

    def __init__(
        self,
        store: IngestorStore,
        publisher: Publisher,
        metrics: IngestMetrics,
        clock: Callable[[], datetime] = utc_now,
        keep_published: timedelta = timedelta(hours=1),
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        self.keep_published = keep_published
        # One batch at a time: two concurrent batches could both see the same old state.
        self._lock = asyncio.Lock()
        self._exclusions: dict[str, Exclusion] = {}

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a batch is decided, published and stored. Whatever else publishes
        request events from the stored states (the overdue sweep) holds it too, so it never
        judges a state a batch is about to replace (one request's events stay in order)."""
        return self._lock

    def exclude(self, source: str, exclusion: Exclusion) -> None:
        """Leave a source's categories out from now on (its profile's or feed's setting)."""
        self._exclusions[source] = exclusion

    async def ingest(
        self,
        results: Sequence[ParseResult],
        *,
        source: str,
        backfill: bool = False,
        past_notes: Sequence[RequestEvent] = (),
        update_keys: Sequence[str] = (),
    ) -> tuple[IngestSummary, list[Outcome]]:
        """Publish the events and rejects of a batch, then store the new states.

        `past_notes` (history events of Open311 updates, see `update_notes`) are published
        first, and `update_keys` remembered with the states, by `ingest_updates`.
        """
        async with self._lock:
            return await self._ingest(results, source, backfill, past_notes, update_keys)

    async def _ingest(
        self,
        results: Sequence[ParseResult],
        source: str,
        backfill: bool,
        past_notes: Sequence[RequestEvent] = (),
        update_keys: Sequence[str] = (),
    ) -> tuple[IngestSummary, list[Outcome]]:
        summary = IngestSummary(
            records=len(results),
            rows=sum(r.rows for r in results),
            past_notes=len(past_notes),
        )
        ids = [r.request.service_request_id for r in results if isinstance(r, Accepted)]
        known = await asyncio.to_thread(self.store.load_states, ids)
        changed: dict[str, StoredState] = {}
        events: list[RequestEvent] = list(past_notes)
        rejects: list[RecordRejected] = []
        identities: dict[str, tuple[str, str]] = {}
        outcomes: list[Outcome] = []
        now = self.clock()
        exclusion = self._exclusions.get(source, NOTHING_EXCLUDED)
        for result in results:
            trace_id = new_trace_id()
            if isinstance(result, Rejected):
                reject = to_reject(result, source, trace_id)
                rejects.append(reject)
                identities[reject.event_id] = reject_identity(result)
                outcomes.append(Outcome(None, reject=reject))
                continue
            srid = result.request.service_request_id
            if exclusion and exclusion.excludes(result.request):
                summary.excluded += 1
                outcomes.append(Outcome(srid, excluded=True))
                continue
            summary.accepted += 1
            caused = _decide_record(result, known, changed, backfill, now, trace_id)
            if not caused:
                summary.unchanged += 1
                outcomes.append(Outcome(srid))
                continue
            events += caused
            summary.anomalies.update(result.request.anomalies)
            outcomes.append(Outcome(srid, caused[-1].event_type))
        # A reject is published and counted once per (source, record, content): a re-import
        # or a re-polled window finds it again, with the same event id, and only says so.
        seen = await asyncio.to_thread(self.store.seen_rejects, identities) if rejects else set()
        fresh = list({r.event_id: r for r in rejects if r.event_id not in seen}.values())
        await self.publisher.publish_events(events)
        await self.publisher.publish_rejects(fresh)
        rows = [
            {
                "event_id": r.event_id,
                "source": r.source,
                "reason": r.reason.value,
                "record": identities[r.event_id][0],
                "content_hash": identities[r.event_id][1],
            }
            for r in fresh
        ]
        await asyncio.to_thread(self._record, list(changed.values()), rows, events)
        if update_keys:
            await asyncio.to_thread(self.store.record_updates, source, update_keys)
        self._count(summary, events, rejects, source)
        summary.new_rejects = len(fresh)
        for r in fresh:
            self.metrics.rejects.labels(source, r.reason.value).inc()
        return summary, outcomes

    def _record(
        self, states: list[StoredState], rejects: list[dict[str, str]], events: list[RequestEvent]
    ) -> None:
        self.store.save_states(states)
        self.store.record_rejects(rejects)
        if self.keep_published > timedelta(0):
            bodies = {e.event_id: e.model_dump_json() for e in events}
            self.store.remember_events(bodies, self.keep_published)

    async def republish_recent(self) -> int:
        """Publish again every event of the last `keep_published` (after a broker lost them).

        Event ids are unchanged, so consumers that already applied an event ignore the copy.
        """
        async with self._lock:
            bodies = await asyncio.to_thread(self.store.recent_events, self.keep_published)
            events = [REQUEST_EVENT_ADAPTER.validate_json(b) for b in bodies]
            await self.publisher.publish_events(events)
        self.metrics.republished.inc(len(events))
        return len(events)

    def _count(
        self,
        summary: IngestSummary,
        events: list[RequestEvent],
        rejects: list[RecordRejected],
        source: str,
    ) -> None:
        summary.events.update(e.event_type for e in events)
        summary.rejects.update(r.reason.value for r in rejects)
        self.metrics.records_in.labels(source).inc(summary.records)
        self.metrics.unchanged.labels(source).inc(summary.unchanged)
        if summary.excluded:
            self.metrics.excluded.labels(source).inc(summary.excluded)
        for event_type, n in summary.events.items():
            self.metrics.events_out.labels(event_type).inc(n)
        for kind, n in summary.anomalies.items():
            self.metrics.data_anomalies.labels(source, kind).inc(n)

    async def ingest_updates(
        self,
        updates: Sequence[UpdateLike | Rejected],
        *,
        source: str,
        backfill: bool = False,
        location: str | None = None,
    ) -> IngestSummary:
        """Apply Open311 request updates to the stored snapshots and ingest the results.

        Each update is taken into account once (`update_notes.update_key`, remembered in the
        store). One newer than the stored snapshot changes it as usual; an older one (the
        requests list, polled first, already holds a later state) is filed as a past note:
        its own timeline entry at its own time, history only (see `update_notes`).
        Updates for requests never seen are counted (not rejected): their request will
        arrive through the request list with its current state.
        """
        applicable = [u for u in updates if not isinstance(u, Rejected)]
        keys = {id(u): update_key(u) for u in applicable}
        ids = [u.service_request_id for u in applicable]
        known, seen = await asyncio.gather(
            asyncio.to_thread(self.store.load_states, ids),
            asyncio.to_thread(self.store.seen_updates, keys.values()),
        )
        latest = {srid: state.snapshot for srid, state in known.items()}
        results: list[ParseResult] = [u for u in updates if isinstance(u, Rejected)]
        notes: list[RequestEvent] = []
        last_note: dict[str, ServiceRequest] = {}
        taken: list[str] = []
        unmatched = 0
        now = self.clock()
        # Oldest first (feeds list them newest first, too): each update then applies to the
        # state before it, and none looks older than the one just applied and is dropped.
        for update in sorted(applicable, key=lambda u: u.updated_datetime):
            key = keys[id(update)]
            if key in seen:
                continue
            srid = update.service_request_id
            snapshot = latest.get(srid)
            if snapshot is None:
                unmatched += 1
                continue
            seen.add(key)
            if update.updated_datetime < as_of(snapshot):
                noted = as_noted(snapshot, update, location)
                if isinstance(noted, Rejected):
                    results.append(noted)
                    continue
                at = now + timedelta(microseconds=len(notes))
                before = last_note.get(srid)
                notes.append(past_note(noted.request, update, before=before, now=at))
                last_note[srid] = noted.request
                taken.append(key)
                continue
            applied = apply_update(snapshot, update, location)
            if isinstance(applied, Accepted):
                latest[srid] = applied.request
                taken.append(key)
            results.append(applied)
        summary, _ = await self.ingest(
            results, source=source, backfill=backfill, past_notes=notes, update_keys=taken
        )
        summary.unmatched_updates = unmatched
        self.metrics.records_in.labels(source).inc(unmatched + len(notes))
        return summary
