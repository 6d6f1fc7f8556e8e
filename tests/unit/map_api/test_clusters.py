"""Clusters: a viewport answer equals the whole-city aggregation cut to the cells it touches."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox, grid_range
from connect311_map_api.db import queries
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import event, snapshot

CELL10 = 360 / (2**10 * 4)  # exactly representable, so boundary points are exact too


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    db = make_engine(f"sqlite:///{tmp_path_factory.mktemp('clusters') / 'c.db'}")
    create_schema(db)
    rnd = random.Random(5)
    events = []
    for i in range(300):
        if i % 3 == 0:  # on a zoom-10 cell corner
            lat = -90 + (1344 + rnd.randrange(6)) * CELL10
            long = -180 + (1107 + rnd.randrange(6)) * CELL10
        else:
            lat, long = rnd.uniform(27.6, 28.1), rnd.uniform(-82.8, -82.4)
        req = snapshot(f"k{i}", lat=lat, long=long, agency="Water" if i % 2 else "Streets")
        events.append(event("opened", req))
    with db.begin() as conn:
        apply_events(conn, events)
    return db


def _strip(cells: list[dict]) -> list[tuple]:
    return [(tuple(c["cell"]), c["count"], c["by_status"], tuple(c["bounds"])) for c in cells]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    zoom=st.integers(0, 12),
    lat=st.floats(27.5, 28.2),
    long=st.floats(-82.9, -82.3),
    dlat=st.floats(0.0, 0.4),
    dlong=st.floats(0.0, 0.4),
    water=st.booleans(),
)
def test_viewport_equals_cut_whole_city(
    engine: Engine, zoom: int, lat: float, long: float, dlat: float, dlong: float, water: bool
) -> None:
    cell = 360 / (2**zoom * 4)
    box = BBox(long, lat, long + dlong, lat + dlat)
    filters = RequestFilters(bbox=box, agencies=("Water",) if water else ())
    with engine.connect() as conn:
        live = queries.clusters(conn, filters, cell)
        whole = queries.clusters(conn, replace(filters, bbox=None), cell)
    x0, y0, x1, y1 = grid_range(box, cell)
    cut = [c for c in whole if x0 <= c["cell"][0] <= x1 and y0 <= c["cell"][1] <= y1]
    assert _strip(live) == _strip(cut)
    for a, b in zip(live, cut, strict=True):
        assert a["lat"] == pytest.approx(b["lat"]) and a["long"] == pytest.approx(b["long"])


def test_aggregates_are_reused_for_the_cache_lifetime(tmp_path, publisher, signing) -> None:
    from tests.unit.map_api.conftest import make_client

    for ttl, expect_fresh in ((60.0, False), (0.0, True)):
        url = f"sqlite:///{tmp_path / f'cache{ttl}.db'}"
        with make_client(url, publisher, signing, aggregate_cache_s=ttl) as client:
            db: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
            with db.begin() as conn:
                apply_events(conn, [event("opened", snapshot("c1"))])
            first = client.get("/api/requests/clusters", params={"zoom": 5}).json()
            stats1 = client.get("/api/stats").json()
            with db.begin() as conn:
                apply_events(conn, [event("opened", snapshot("c2"))])
            second = client.get("/api/requests/clusters", params={"zoom": 5}).json()
            stats2 = client.get("/api/stats").json()
            live = client.get("/api/requests/clusters", params={"zoom": 14}).json()
            assert first["total"] == 1 and live["total"] == 2
            assert second["total"] == (2 if expect_fresh else 1)
            assert stats2["backlog"][0]["open"] == (2 if expect_fresh else 1)
            assert stats1["backlog"][0]["open"] == 1
