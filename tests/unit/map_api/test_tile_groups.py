"""Street tiles' groups from one query over the counted cells equal a recount of the requests.

Oracle: the scan of `requests` (`queries.clusters` without aggregates) groups every cell a
tile touches; the tile's query (`tile_queries.counted_groups`, grouped by `core.tile_groups`)
must give the same groups with the same counts by status and dataset, its inner count must be
`aggregates.inner_count`'s, and every group must be sent by exactly one tile of its zoom.
The city is dense around a tile corner (cells cut by tile edges, groups of several cells and
datasets) and some requests moved away (emptied cell rows), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Connection

from connect311_contracts.request import RequestStatus
from connect311_map_api.api.tiles_routes import CELLS_PER_TILE
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox
from connect311_map_api.core.tile_groups import cluster_entries
from connect311_map_api.core.tiles import Tile, membership, tile_of
from connect311_map_api.db import aggregates, queries, tile_queries
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import T0, event, snapshot

CORNER = tile_of(27.77, -82.64, 11)  # its north-west corner is a corner at z11-z14 too
FILTERS = [
    RequestFilters(),
    RequestFilters(statuses=("closed",)),
    RequestFilters(datasets=("crime",)),
    RequestFilters(datasets=("311", "crime"), statuses=("acknowledged", "closed")),
]


def _near(rnd: random.Random, spread: float) -> tuple[float, float]:
    return CORNER.north + rnd.uniform(-spread, spread), CORNER.west + rnd.uniform(-spread, spread)


def _seed(conn: Connection) -> None:
    rnd = random.Random(15)
    # On the corner itself and its edges, around it at street scale, and a few farther out.
    points = [(CORNER.north, CORNER.west), (CORNER.north, CORNER.west - 1e-9)]
    points += [(CORNER.north + 1e-9, CORNER.west)]
    points += [_near(rnd, 0.004) for _ in range(120)] + [_near(rnd, 0.05) for _ in range(40)]
    events = []
    for i, (lat, long) in enumerate(points):
        request = snapshot(
            f"g{i}",
            lat=lat,
            long=long,
            status=rnd.choice(list(RequestStatus)),
            dataset=rnd.choice(["311", "311", "crime"]),
        )
        events.append(event("opened", request, event_id=f"o{i}"))
    apply_events(conn, events)


def _move(conn: Connection) -> None:
    """Some requests move away: their old cells keep rows that count 0."""
    rnd = random.Random(16)
    later = T0 + timedelta(hours=1)
    moves = []
    for i in range(0, 163, 7):
        lat, long = _near(rnd, 0.05)
        moved = snapshot(f"g{i}", lat=lat, long=long, opened=T0, updated=later)
        moves.append(event("updated", moved, occurred=later, event_id=f"u{i}"))
    apply_events(conn, moves)


def test_street_tile_groups_equal_a_recount(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    for step in _seed, _move:
        with engine.begin() as conn:  # apart: the deltas of one batch are summed first
            step(conn)
    with engine.connect() as conn:
        for z in (11, 12, 13, 14):  # groups of 8 x 8 ... 1 x 1 counted cells
            for f in FILTERS:
                _equal_a_recount(conn, f, z)
    engine.dispose()


def _equal_a_recount(conn: Connection, f: RequestFilters, z: int) -> None:
    centre = tile_of(CORNER.north, CORNER.west, z)
    deg = 360.0 / (centre.n * CELLS_PER_TILE)
    kept, touched = [], []
    for dx, dy in itertools.product((-1, 0, 1), repeat=2):
        tile = Tile(z, centre.x + dx, centre.y + dy)
        counted = tile_queries.counted_groups(conn, f, tile, deg)
        assert counted is not None
        box = BBox(tile.west, tile.south, tile.east, tile.north)
        assert counted.inner == aggregates.inner_count(conn, f, box)
        every = cluster_entries(counted.rows, lambda _lat, _long: True)
        scan = queries.clusters(conn, replace(f, bbox=box), deg, use_aggregates=False)
        assert [e[2:] for e in every] == [
            [c["count"], c["by_status"], c["by_dataset"]] for c in scan
        ], (f, tile)
        for e, c in zip(every, scan, strict=True):  # rounded to 6 decimals
            assert e[:2] == pytest.approx([c["lat"], c["long"]], abs=1e-6)
        kept.append(cluster_entries(counted.rows, membership(tile)))
        touched = every if tile == centre else touched
    # Each group the centre tile touches is sent by one tile only.
    assert touched and all(sum(e in k for k in kept) == 1 for e in touched), (f, z)
