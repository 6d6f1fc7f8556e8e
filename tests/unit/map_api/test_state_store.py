"""Applying request events: idempotent, order-independent, newest snapshot wins (both DBs)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus
from connect311_map_api.core.state import event_rank, request_row
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.db.tables import history, requests
from tests.unit.map_api.factories import T0, event, lifecycle, snapshot


def _pool() -> list[RequestEvent]:
    """Events of three requests, including equal source times (ties) and late arrivals."""
    pool = lifecycle("a") + lifecycle("b", lat=27.8)
    reopened = snapshot("a", status=RequestStatus.OPEN, updated=T0 + timedelta(days=5))
    pool.append(event("reopened", reopened, occurred=T0 + timedelta(days=5)))
    same_time = snapshot("c", notes="first")
    pool.append(event("opened", same_time, occurred=T0, event_id="c-1"))
    pool.append(event("updated", snapshot("c", notes="second"), occurred=T0, event_id="c-2"))
    late = snapshot("c", notes="ingested later", lat=27.9)
    pool.append(event("updated", late, occurred=T0 + timedelta(hours=1), event_id="c-0"))
    return pool


POOL = _pool()


def _state(engine: Engine) -> tuple[dict[str, dict[str, Any]], set[str]]:
    with engine.connect() as conn:
        rows = {
            row.service_request_id: {k: v for k, v in row._mapping.items() if k != "pk"}
            for row in conn.execute(select(requests))
        }
        events = set(conn.scalars(select(history.c.event_id)))
    return rows, events


def _oracle(events: list[RequestEvent]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    best: dict[str, RequestEvent] = {}
    for ev in events:
        rid = ev.request.service_request_id
        if rid not in best or event_rank(ev) > event_rank(best[rid]):
            best[rid] = ev
    return {rid: request_row(ev) for rid, ev in best.items()}, {e.event_id for e in events}


def _normalise(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # PostgreSQL and SQLite give datetimes back naive; compare plain values.
    return {rid: {k: v for k, v in row.items()} for rid, row in rows.items()}


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}")
    create_schema(engine)
    return engine


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=30),
    cuts=st.lists(st.integers(1, 30), max_size=5),
)
def test_any_order_and_duplication_yields_the_oracle_state(
    sqlite_engine: Engine, picks: list[int], cuts: list[int]
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(delete(requests))
        conn.execute(delete(history))
    stream = [POOL[i] for i in picks]
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for start, end in itertools.pairwise(bounds):
        with sqlite_engine.begin() as conn:
            apply_events(conn, stream[start:end])
    assert _state(sqlite_engine) == _oracle(stream)


def test_replaying_everything_twice_changes_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        first = apply_events(conn, POOL)
    once = _state(engine)
    with engine.begin() as conn:
        again = apply_events(conn, list(reversed(POOL)))
    assert first.applied == len(POOL) and again.applied == 0
    assert again.duplicates == len(POOL) and again.changed_ids == []
    assert _normalise(_state(engine)[0]) == _normalise(once[0]) == _oracle(POOL)[0]
    engine.dispose()


def test_older_snapshot_never_overwrites_newer(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    closed = lifecycle("x")[2]
    opened = lifecycle("x")[0]
    with engine.begin() as conn:
        apply_events(conn, [closed])
    with engine.begin() as conn:
        result = apply_events(conn, [opened])
    assert result.stale == 1 and result.changed_ids == []
    rows, events = _state(engine)
    assert rows["test:x"]["status"] == "closed"
    assert len(events) == 2  # the late 'opened' still joins the timeline
    engine.dispose()
