"""Aggregate tables equal a recount of `requests` after any replay; answers match the scan.

Oracle: after arbitrary batches of events (shuffled, duplicated, stale), the aggregates kept
by the state writer equal a fresh recount from the stored requests (SQL GROUP BY for the
counts, `rebuild` for everything), and stats and clusters answered from them equal the
answers scanning `requests`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, text

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus
from connect311_map_api.core.aggregates import BASE_CELL, cell_degrees, cell_source
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox, grid_range
from connect311_map_api.core.state import request_row
from connect311_map_api.core.stats import Interval
from connect311_map_api.db import aggregates, queries
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.db.tables import (
    agg_cells,
    agg_close_minutes,
    agg_opened,
    agg_resolved,
    metadata,
    requests,
)
from tests.unit.map_api.factories import T0, event, snapshot

r = requests.c
AGENCIES = ["Streets", "Water", None]
# Points on and around base-cell corners, so edge cases of the grid are exercised.
CORNER_LAT = -90 + 5378 * BASE_CELL
CORNER_LONG = -180 + 4427 * BASE_CELL
POINTS = [
    (CORNER_LAT, CORNER_LONG),
    (CORNER_LAT - 1e-9, CORNER_LONG + 1e-9),
    (CORNER_LAT + 3 * BASE_CELL + 1e-4, CORNER_LONG - 7 * BASE_CELL),
    (27.7712345, -82.6398765),
    (27.9, -82.5),
]
STATUSES = list(RequestStatus)

snapshots = st.builds(
    dict,
    status=st.sampled_from(STATUSES),
    dataset=st.sampled_from(["311", "crime"]),
    agency=st.sampled_from(AGENCIES),
    point=st.sampled_from(POINTS),
    opened_days=st.integers(0, 20),
    # Seconds to close: sub-minute, sub-hour, around the 2-day switch to hours, and weeks.
    seconds=st.one_of(
        st.integers(0, 3_600), st.integers(172_000, 173_000), st.integers(0, 400 * 3_600)
    ),
    micros=st.tuples(st.integers(0, 999_999), st.integers(0, 999_999)),
    # A code under two names, a code without a name, no code at all.
    kind=st.sampled_from([("POT", "Pothole"), ("POT", "Pot hole"), ("GRAF", None), (None, None)]),
)
histories = st.lists(
    st.tuples(st.integers(0, 3), snapshots), min_size=1, max_size=14
)  # (request number, snapshot)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """One database for all examples of a test; emptied before each example."""
    db = make_engine(database_url)
    create_schema(db)
    yield db
    db.dispose()


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))


def _events(history: list[tuple[int, dict[str, Any]]]) -> list[RequestEvent]:
    out = []
    for i, (number, s) in enumerate(history):
        opened = T0 + timedelta(days=s["opened_days"])
        req = snapshot(
            f"agg{number}",
            status=s["status"],
            lat=s["point"][0],
            long=s["point"][1],
            opened=opened + timedelta(microseconds=s["micros"][0]),
            updated=opened + timedelta(seconds=s["seconds"], microseconds=sum(s["micros"])),
            agency=s["agency"],
            dataset=s["dataset"],
            code=s["kind"][0],
            name=s["kind"][1],
        )
        kind = "closed" if s["status"] is RequestStatus.CLOSED else "updated"
        out.append(event(kind, req, occurred=T0 + timedelta(minutes=i), event_id=f"e{i}"))
    return out


def _table(engine: Engine, table: Any) -> set[tuple[Any, ...]]:
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(select(table).where(table.c.n > 0))}


def _recount(engine: Engine) -> dict[str, set[tuple[Any, ...]]]:
    agency = func.coalesce(r.agency_responsible, "")
    closed = r.status == "closed"
    with engine.connect() as conn:

        def grouped(*cols: Any, where: Any = True) -> set[tuple[Any, ...]]:
            query = select(*cols, func.count()).where(where).group_by(*cols)
            return {tuple(row) for row in conn.execute(query)}

        return {
            "opened": grouped(agency, r.dataset, r.opened_day, r.status),
            "resolved": grouped(
                agency, r.dataset, r.closed_day, where=closed & r.closed_day.is_not(None)
            ),
            "minutes": _close_minutes_recount(conn),
            "categories": {
                (*row[:-1], int(row[-1]))
                for row in grouped(r.service_code, r.service_name, r.dataset)
                if row[0] is not None
            },
            "agencies": {row for row in grouped(r.agency_responsible) if row[0] is not None},
            "datasets": grouped(r.dataset),
        }


def _close_minutes_recount(conn: Any) -> set[tuple[Any, ...]]:
    """(agency, dataset, counted minutes, n) in plain Python: minutes under 2 days, hours
    beyond."""
    counts: dict[tuple[str, str, int], int] = {}
    query = select(r.agency_responsible, r.dataset, r.requested_datetime, r.closed_datetime).where(
        r.status == "closed", r.closed_datetime.is_not(None)
    )
    for agency, dataset, opened, closed in conn.execute(query):
        gap = closed.replace(microsecond=0) - opened.replace(microsecond=0)
        seconds = gap // timedelta(seconds=1)
        minutes = seconds // 60 if seconds < 2 * 86_400 else seconds // 3_600 * 60
        key = (agency or "", dataset, minutes)
        counts[key] = counts.get(key, 0) + 1
    return {(*key, n) for key, n in counts.items()}


def _without_centroids(cells: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (tuple(c["cell"]), c["count"], c["by_status"], c["by_dataset"], tuple(c["bounds"]))
        for c in cells
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories, data=st.data())
def test_aggregates_equal_a_recount_after_any_replay(
    engine: Engine, history: list[tuple[int, dict[str, Any]]], data: st.DataObject
) -> None:
    _empty(engine)
    events = _events(history)
    # Any order, with repeats, in batches of any size (each its own transaction).
    replay = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events)))))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(replay)), max_size=4)))
    for start, end in zip([0, *cuts], [*cuts, len(replay)], strict=True):
        with engine.begin() as conn:
            apply_events(conn, replay[start:end])
    recount = _recount(engine)
    assert _table(engine, agg_opened) == recount["opened"]
    assert _table(engine, agg_resolved) == recount["resolved"]
    assert _table(engine, agg_close_minutes) == recount["minutes"]
    with engine.connect() as conn:  # the map's lists, from the kinds table
        listed = {
            "categories": aggregates.kind_counts(conn, "service_code", "service_name", "dataset"),
            "agencies": aggregates.kind_counts(conn, "agency"),
            "datasets": aggregates.kind_counts(conn, "dataset"),
        }
    for name, rows in listed.items():
        assert set(rows) == recount[name], name
        assert rows == sorted(rows, key=lambda row: tuple(str(v or "") for v in row)), name
    kept = {name: _table(engine, t) for name, t in (("c", agg_cells), ("m", agg_close_minutes))}
    with engine.connect() as conn:  # emptied rows carry no coordinate residue
        leftovers = conn.execute(select(agg_cells).where(agg_cells.c.n == 0)).all()
    assert all(row.lat_micro == 0 and row.long_micro == 0 for row in leftovers)
    with engine.begin() as conn:
        aggregates.rebuild(conn)
    assert {"c": _table(engine, agg_cells), "m": _table(engine, agg_close_minutes)} == kept
    _same_answers(engine)


def _same_answers(engine: Engine) -> None:
    box = BBox(CORNER_LONG - 0.05, CORNER_LAT - 0.01, CORNER_LONG + 0.001, CORNER_LAT + 0.2)
    filter_sets = [
        RequestFilters(),
        RequestFilters(agencies=("Water",)),
        RequestFilters(statuses=("closed",)),
        RequestFilters(statuses=("open", "in_progress"), agencies=("Streets", "Water")),
        RequestFilters(datasets=("crime",)),
        RequestFilters(datasets=("311", "crime"), agencies=("Water",)),
    ]
    with engine.connect() as conn:
        for f in filter_sets:
            for interval in Interval:
                fast = queries.stats(conn, f, interval, T0)
                slow = queries.stats(conn, f, interval, T0, use_aggregates=False)
                assert fast == slow, (f, interval)
            # 14 and 16: street tiles' groups, from the zoom-16 cells.
            for zoom, source in ((16, (16, 1)), (14, (16, 4)), (12, (12, 1)), (10, (12, 4))):
                cell = cell_degrees(zoom)
                assert cell_source(cell) == source
                for bbox in (None, box):
                    for datasets in ((), ("crime",)):
                        g = RequestFilters(bbox=bbox, statuses=f.statuses, datasets=datasets)
                        fast_cells = queries.clusters(conn, g, cell)
                        slow_cells = queries.clusters(conn, g, cell, use_aggregates=False)
                        assert _without_centroids(fast_cells) == _without_centroids(slow_cells)
                        for a, b in zip(fast_cells, slow_cells, strict=True):
                            assert a["lat"] == pytest.approx(b["lat"], abs=1e-6)
                            assert a["long"] == pytest.approx(b["long"], abs=1e-6)
            if aggregates.serves_cells(f):
                _inner_count_is_a_lower_bound(conn, f, box)


def _inner_count_is_a_lower_bound(conn: Any, f: RequestFilters, box: BBox) -> None:
    """The tile shortcut's count: requests of zoom-16 cells wholly inside the box, never
    more than the box holds (so "over the marker limit" is never said of a tile that is not)."""
    cell = cell_degrees(16)
    inside = [
        r.long >= box.min_long,
        r.long < box.max_long,
        r.lat > box.min_lat,
        r.lat <= box.max_lat,
    ]
    cx = func.floor((r.long + 180.0) / cell)
    cy = func.floor((r.lat + 90.0) / cell)
    x0, y0, x1, y1 = grid_range(box, cell)
    inner = [cx > x0, cx < x1, cy > y0, cy < y1]
    wanted = [*_in_filter(f)]
    in_box = conn.execute(select(func.count()).where(*inside, *wanted)).scalar_one()
    in_inner = conn.execute(select(func.count()).where(*inner, *wanted)).scalar_one()
    assert aggregates.inner_count(conn, f, box) == in_inner <= in_box


def _in_filter(f: RequestFilters) -> list[Any]:
    out = [r.status.in_(f.statuses)] if f.statuses else []
    return out + ([r.dataset.in_(f.datasets)] if f.datasets else [])


def test_start_builds_aggregates_for_rows_stored_without_them(sqlite_url: str) -> None:
    """A database from before the aggregates (or after a layout change) is recounted once."""
    engine = make_engine(sqlite_url)
    create_schema(engine)
    aggregates.ensure_built(engine)  # what every start does: empty, so built at once
    with engine.begin() as conn:
        apply_events(conn, [event("opened", snapshot(f"old{i}", agency="Parks")) for i in range(5)])
        conn.execute(delete(agg_opened))  # as if the rows predate the aggregate tables
    aggregates.ensure_built(engine)  # marked as built already: nothing happens
    assert _table(engine, agg_opened) == set()
    with engine.begin() as conn:
        conn.execute(delete(aggregates.agg_meta))
    aggregates.ensure_built(engine)
    assert _table(engine, agg_opened) == {("Parks", "311", T0.date().isoformat(), "open", 5)}
    engine.dispose()


def test_a_database_built_by_the_older_cell_layout_gets_cells_per_dataset(
    database_url: str,
) -> None:
    """Layout 2 had cells per status only (create_all never changes a table that exists):
    the start makes the aggregate tables again and recounts them."""
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE agg_cells"))
        conn.execute(
            text(
                "CREATE TABLE agg_cells (cx INTEGER, cy INTEGER, status VARCHAR(20), n BIGINT,"
                " lat_micro BIGINT, long_micro BIGINT, PRIMARY KEY (cx, cy, status))"
            )
        )
        conn.execute(aggregates.agg_meta.insert().values(name="aggregates", version=2))
    incident = snapshot("c1", dataset="crime", status=RequestStatus.CLOSED)
    with engine.begin() as conn:
        conn.execute(requests.insert(), [request_row(event("closed", incident))])
    aggregates.ensure_built(engine)
    with engine.connect() as conn:
        [cell] = queries.clusters(conn, RequestFilters(), cell_degrees(12))
    assert (cell["count"], cell["by_status"], cell["by_dataset"]) == (1, {}, {"crime": 1})
    engine.dispose()
