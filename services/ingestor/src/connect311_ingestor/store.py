"""Durable ingestor state (SQLAlchemy Core): fingerprints, cursors, reject counts, and the
recently published events (kept for a while to re-publish after a broker lost them).

SQLite file by default, PostgreSQL by URL. Calls are synchronous and short; async callers
run them in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from connect311_bus.engine import make_engine
from connect311_contracts.request import ServiceRequest
from connect311_ingestor.changes import StoredState
from connect311_ingestor.store_tables import (
    metadata,
    overdue_published,
    recent_event,
    reject_count,
    reject_seen,
    request_state,
    source_cursor,
    source_health,
    update_seen,
)

_CHUNK = 500  # ids per IN (...) query: well under every backend's parameter limit


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert rows, replacing existing ones with the same primary key."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


class IngestorStore:
    """Per-request fingerprints and snapshots, per-source cursors, reject counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> IngestorStore:
        """A store on the database at `url`, with its tables created."""
        store = cls(make_engine(url))
        store.create_schema()
        return store

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        metadata.create_all(self.engine)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def load_states(self, ids: Iterable[str]) -> dict[str, StoredState]:
        """The stored state of each known request among `ids`."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, StoredState] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(
                    request_state.c.fingerprint,
                    request_state.c.version,
                    request_state.c.snapshot,
                ).where(request_state.c.service_request_id.in_(chunk))
                for print_, version, snapshot in conn.execute(query):
                    state = StoredState(
                        ServiceRequest.model_validate_json(snapshot), print_, version
                    )
                    found[state.service_request_id] = state
        return found

    def save_states(self, states: Iterable[StoredState]) -> None:
        """Remember the given states (after their events were acknowledged)."""
        now = datetime.now(UTC)
        rows = [
            {
                "service_request_id": s.service_request_id,
                "source": s.snapshot.source,
                "fingerprint": s.fingerprint,
                "status": s.snapshot.status.value,
                "version": s.version,
                "snapshot": s.snapshot.model_dump_json(),
                "stored_at": now,
            }
            for s in states
        ]
        with self.engine.begin() as conn:
            _upsert(conn, request_state, rows, ["service_request_id"])

    def remember_events(self, bodies: Mapping[str, str], keep: timedelta) -> None:
        """Keep published events (id -> JSON) for `keep`, dropping older ones."""
        now = datetime.now(UTC)
        rows = [{"event_id": k, "published_at": now, "body": v} for k, v in bodies.items()]
        with self.engine.begin() as conn:
            conn.execute(recent_event.delete().where(recent_event.c.published_at < now - keep))
            if rows:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                insert = dialect.insert(recent_event).on_conflict_do_nothing(
                    index_elements=["event_id"]
                )
                conn.execute(insert, rows)

    def recent_events(self, keep: timedelta) -> list[str]:
        """The events published within `keep`, oldest first (as JSON)."""
        since = datetime.now(UTC) - keep
        query = (
            select(recent_event.c.body)
            .where(recent_event.c.published_at >= since)
            .order_by(recent_event.c.seq)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def count_requests(self, source: str | None = None) -> int:
        """How many requests are remembered (for one source, or all)."""
        query = select(func.count()).select_from(request_state)
        if source is not None:
            query = query.where(request_state.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def cursors(self) -> dict[str, dict[str, Any]]:
        """Every source's saved watermark/cursor."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(source_cursor.c.source, source_cursor.c.cursor)).all()
        return {source: dict(json.loads(value)) for source, value in rows}

    def request_counts(self) -> dict[str, int]:
        """How many requests are remembered, per source."""
        query = select(request_state.c.source, func.count()).group_by(request_state.c.source)
        with self.engine.connect() as conn:
            return {source: int(n) for source, n in conn.execute(query).all()}

    def get_cursor(self, source: str) -> dict[str, Any] | None:
        """A source's saved watermark/cursor, or None before its first import."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(source_cursor.c.cursor).where(source_cursor.c.source == source)
            ).scalar_one_or_none()
        return dict(json.loads(value)) if value is not None else None

    def set_cursor(self, source: str, cursor: Mapping[str, Any]) -> None:
        """Save a source's watermark/cursor (after everything before it was recorded)."""
        row = {
            "source": source,
            "cursor": json.dumps(dict(cursor), sort_keys=True, default=str),
            "stored_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            _upsert(conn, source_cursor, [row], ["source"])

    def delete_cursor(self, source: str) -> bool:
        """Forget a source's watermark (its next poll is a first poll); False if it had none."""
        with self.engine.begin() as conn:
            done = conn.execute(source_cursor.delete().where(source_cursor.c.source == source))
        return bool(done.rowcount)

    def record_poll(self, source: str, error: str | None = None) -> None:
        """Note a finished poll of a source: when, and its error (None when it succeeded)."""
        now = datetime.now(UTC)
        row: dict[str, Any] = {"source": source, "last_poll_at": now}
        if error is None:
            row["last_ok_at"] = now
        else:
            row.update(last_error=error[:2000], last_error_at=now)
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(source_health).values(**row)
            updates = {k: stmt.excluded[k] for k in row if k != "source"}
            conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=updates))

    def source_health(self) -> dict[str, dict[str, Any]]:
        """Every polled source's last poll, last success and last error (with its time)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(source_health)).mappings().all()
        return {row["source"]: {k: v for k, v in row.items() if k != "source"} for row in rows}

    def add_reject_counts(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add to the per source+reason reject counters."""
        if not counts:
            return
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            for (source, reason), n in counts.items():
                stmt = dialect.insert(reject_count).values(source=source, reason=reason, count=n)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["source", "reason"],
                        set_={"count": reject_count.c.count + stmt.excluded["count"]},
                    )
                )

    def seen_rejects(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these reject event ids were recorded before."""
        return self._present(reject_seen.c.event_id, event_ids)

    def record_rejects(self, rows: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], int]:
        """Remember first sightings (event_id, source, reason, record, content_hash) and add
        them to the per source+reason counters, in one transaction; a row already recorded
        is neither stored nor counted again. Returns what was counted."""
        now = datetime.now(UTC)
        counted: dict[tuple[str, str], int] = {}
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            for row in rows:
                stmt = dialect.insert(reject_seen).values(
                    event_id=row["event_id"],
                    source=row["source"],
                    reason=row["reason"],
                    record=row["record"][:400],
                    content_hash=row["content_hash"],
                    first_seen_at=now,
                )
                done = conn.execute(stmt.on_conflict_do_nothing(index_elements=["event_id"]))
                if done.rowcount:
                    key = (row["source"], row["reason"])
                    counted[key] = counted.get(key, 0) + 1
            for (source, reason), n in counted.items():
                stmt = dialect.insert(reject_count).values(source=source, reason=reason, count=n)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["source", "reason"],
                        set_={"count": reject_count.c.count + stmt.excluded["count"]},
                    )
                )
        return counted

    def seen_updates(self, keys: Iterable[str]) -> set[str]:
        """Which of these Open311 update keys were taken into account before."""
        return self._present(update_seen.c.update_key, keys)

    def _present(self, column: Column[str], keys: Iterable[str]) -> set[str]:
        """Which of `keys` are in `column` (a primary key), in chunks."""
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = select(column).where(column.in_(wanted[start : start + _CHUNK]))
                found.update(conn.execute(query).scalars())
        return found

    def record_updates(self, source: str, keys: Iterable[str]) -> None:
        """Remember Open311 update keys as taken into account (after their events were
        acknowledged)."""
        now = datetime.now(UTC)
        rows = [{"update_key": k, "source": source, "first_seen_at": now} for k in keys]
        if not rows:
            return
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(update_seen).on_conflict_do_nothing(
                index_elements=["update_key"]
            )
            conn.execute(insert, rows)

    def open_snapshots(self, chunk: int = 1_000) -> Iterator[list[tuple[str, str]]]:
        """Every request not closed, as (id, snapshot JSON), `chunk` at a time (streamed: a
        city has hundreds of thousands open, and only their due dates are wanted)."""
        query = select(request_state.c.service_request_id, request_state.c.snapshot).where(
            request_state.c.status != "closed"
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=chunk).execute(query)
            for rows in result.partitions():
                yield [(rid, snapshot) for rid, snapshot in rows]

    def overdue_published(self, ids: Iterable[str]) -> set[tuple[str, datetime]]:
        """(request id, due time) of every overdue event recorded for these requests."""
        wanted = list(dict.fromkeys(ids))
        found: set[tuple[str, datetime]] = set()
        table = overdue_published
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = select(table.c.request_id, table.c.due_datetime).where(
                    table.c.request_id.in_(wanted[start : start + _CHUNK])
                )
                found.update((rid, due) for rid, due in conn.execute(query))
        return found

    def record_overdue(self, rows: Iterable[tuple[str, datetime, str]]) -> None:
        """Remember (request id, due time, event id) as published (after the broker
        acknowledged); one already recorded (another instance, a re-run) is left as it is."""
        now = datetime.now(UTC)
        values = [
            {"request_id": rid, "due_datetime": due, "event_id": eid, "published_at": now}
            for rid, due, eid in rows
        ]
        if not values:
            return
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(overdue_published).on_conflict_do_nothing(
                index_elements=["request_id", "due_datetime"]
            )
            conn.execute(insert, values)

    def reject_counts(self) -> dict[tuple[str, str], int]:
        """Every reject counter, by (source, reason)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(reject_count)).all()
        return {(source, reason): int(n) for source, reason, n in rows}
