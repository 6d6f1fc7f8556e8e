"""Apply request events to the database: idempotent by event id, newest snapshot wins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from connect311_contracts.events import RequestEvent, RequestOverdue
from connect311_map_api.core.aggregates import Facts, Key, change, facts, merge
from connect311_map_api.core.state import Rank, event_rank, history_row, is_newer, request_row
from connect311_map_api.db import aggregates
from connect311_map_api.db.tables import history, requests


@dataclass
class ApplyResult:
    """What a batch did: counts and the ids whose current state changed."""

    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    not_state: int = 0
    changed_ids: list[str] = field(default_factory=list)


def _new_event_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The ids among `ids` not yet in the history."""
    known: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(history.c.event_id).where(history.c.event_id.in_(chunk))
        known.update(conn.scalars(query))
    return set(ids) - known


def _insert_history(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # ON CONFLICT DO NOTHING: a concurrent consumer may have recorded the same event.
    conn.execute(dialect.insert(history).on_conflict_do_nothing(), rows)


def apply_events(conn: Connection, events: Sequence[RequestEvent]) -> ApplyResult:
    """Record each event in the history (once) and move current state forward.

    Runs inside the caller's transaction; replaying any event again changes nothing.
    """
    result = ApplyResult()
    # An overdue event changes nothing here: this service works due dates out itself, by
    # the same rule (connect311_contracts.due), for every page that shows them.
    result.not_state = sum(isinstance(ev, RequestOverdue) for ev in events)
    events = [ev for ev in events if not isinstance(ev, RequestOverdue)]
    seen: set[str] = set()
    fresh: list[RequestEvent] = []
    new_ids = _new_event_ids(conn, list({ev.event_id for ev in events}))
    for ev in events:
        if ev.event_id in seen or ev.event_id not in new_ids:
            result.duplicates += 1
            continue
        seen.add(ev.event_id)
        fresh.append(ev)
    if fresh:
        _insert_history(conn, [history_row(ev) for ev in fresh])
    best: dict[str, RequestEvent] = {}
    for ev in fresh:
        rid = ev.request.service_request_id
        if rid not in best or event_rank(ev) > event_rank(best[rid]):
            best[rid] = ev
    result.stale += len(fresh) - len(best)
    stored = _stored(conn, sorted(best))
    inserts: list[dict[str, Any]] = []
    deltas: dict[Key, tuple[int, ...]] = {}
    for rid, ev in best.items():
        row = request_row(ev)
        if rid not in stored:
            inserts.append(row)
            merge(deltas, change(None, facts(row)))
        elif is_newer(event_rank(ev), stored[rid][0]):
            if _update(conn, ev, row):
                merge(deltas, change(stored[rid][1], facts(row)))
        else:
            result.stale += 1
            continue
        result.changed_ids.append(rid)
    if inserts:
        conn.execute(requests.insert(), inserts)
    # Same transaction as the rows: the aggregates can never disagree with `requests`.
    aggregates.apply(conn, deltas)
    result.applied = len(fresh)
    return result


def _stored(conn: Connection, ids: list[str]) -> dict[str, tuple[Rank, Facts]]:
    """Rank and counted facts of the stored rows (locked on PostgreSQL until commit)."""
    out: dict[str, tuple[Rank, Facts]] = {}
    cols = (requests.c.rank_source_at, requests.c.rank_occurred_at, requests.c.rank_event_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(requests.c.service_request_id, *cols, *aggregates.FACT_COLUMNS).where(
            requests.c.service_request_id.in_(chunk)
        )
        if conn.dialect.name == "postgresql":
            # The facts subtracted from the aggregates must be the ones this update replaces.
            query = query.with_for_update()
        for row in conn.execute(query):
            out[row[0]] = ((row[1], row[2], row[3]), facts(row._mapping))
    return out


def _update(conn: Connection, ev: RequestEvent, row: dict[str, Any]) -> bool:
    rank = event_rank(ev)
    # Compare-and-set: a concurrent writer with a newer snapshot is never overwritten.
    done = conn.execute(
        update(requests)
        .where(requests.c.service_request_id == row["service_request_id"])
        .where(
            tuple_(requests.c.rank_source_at, requests.c.rank_occurred_at, requests.c.rank_event_id)
            < tuple_(*rank)
        )
        .values(row)
    )
    return bool(done.rowcount)
