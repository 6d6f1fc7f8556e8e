"""Rows of one map data tile: compact marker rows, half-open tile edges (see core/tiles.py),
or its groups' sums from the counted cells (`agg_cells`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)

from connect311_map_api.core.aggregates import FINE_ZOOM, cell_source
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox, grid_range
from connect311_map_api.core.tile_groups import GROUP_STATUSES
from connect311_map_api.core.tiles import Tile
from connect311_map_api.db.aggregates import inner_cells, serves_cells
from connect311_map_api.db.queries import conditions
from connect311_map_api.db.tables import agg_cells, requests

__all__ = ["CountedGroups", "counted_groups", "marker_rows"]

r = requests.c


def _inside(tile: Tile) -> list[ColumnElement[bool]]:
    # Half-open like core.tiles.contains: a point on an edge belongs to one tile only.
    east = r.long <= tile.east if tile.closes_east else r.long < tile.east
    south = r.lat >= tile.south if tile.closes_south else r.lat > tile.south
    return [south, r.lat <= tile.north, r.long >= tile.west, east]


def marker_rows(conn: Connection, f: RequestFilters, tile: Tile, limit: int) -> Sequence[Any]:
    """Up to `limit` (id, lat, long, status, dataset, service_code, requested epoch s, address) rows
    (the caller asks one more than it shows to learn that there are more)."""
    query = (
        select(
            r.service_request_id,
            r.lat,
            r.long,
            r.status,
            r.dataset,
            r.service_code,
            # Seconds since 1970 (UTC), computed by the database: parsing and formatting a
            # datetime per row cost a third of a tile's time.
            cast(extract("epoch", r.requested_datetime), BigInteger),
            r.address,
        )
        .where(and_(True, *_inside(tile), *conditions(f)))
        # No ORDER BY: sorting every row of a dense tile cost more than the rest of the query,
        # and the caller needs all rows (or learns that there are too many), in any order.
        .limit(limit)
    )
    return conn.execute(query).all()


@dataclass(frozen=True)
class CountedGroups:
    """A tile's group sums from the counted cells, and what its inner cells hold."""

    rows: Sequence[Any]
    """core.tile_groups.GroupRow per (group, dataset): the groups of every cell the tile
    touches, whole (so a group's centre of mass is that of all its requests; the tile keeps
    those whose centre it holds)."""
    inner: int
    """Records in the counted cells wholly inside the tile (as aggregates.inner_count)."""


def counted_groups(
    conn: Connection, f: RequestFilters, tile: Tile, group_deg: float
) -> CountedGroups | None:
    """The tile's groups of `group_deg` degrees summed from the counted cells in one query
    (None when no zoom-16 cells make such groups, or the filters need what they lack).

    A cold street tile read ~1,000 cell rows twice (its inner count, then its groups) and
    grouped them in Python; here the database sums them per group and dataset, a column per
    status, and each column of cells is one index range (`cx IN (...)`: a range over cx
    walked every cy of each column).
    """
    source = cell_source(group_deg)
    # Zoom-16 cells only: the inner count below is theirs (street tiles' groups are made of
    # them; coarser tiles read the city's cached groups).
    if source is None or source[0] != FINE_ZOOM or not serves_cells(f):
        return None
    factor = source[1]
    box = BBox(tile.west, tile.south, tile.east, tile.north)
    x0, y0, x1, y1 = grid_range(box, group_deg)
    ix0, iy0, ix1, iy1 = inner_cells(box)
    params: dict[str, Any] = {
        "xs": list(range(x0 * factor, (x1 + 1) * factor)),
        "y0": y0 * factor,
        "y1": (y1 + 1) * factor - 1,
        "ix0": ix0,
        "ix1": ix1,
        "iy0": iy0,
        "iy1": iy1,
    }
    if f.statuses:
        params["statuses"] = list(f.statuses)
    if f.datasets:
        params["datasets"] = list(f.datasets)
    query = _groups_query(factor, bool(f.statuses), bool(f.datasets))
    rows = conn.execute(query, params).all()
    return CountedGroups(rows, sum(row[6] for row in rows))


@lru_cache(maxsize=32)
def _groups_query(factor: int, by_status: bool, by_dataset: bool) -> Select[Any]:
    """The statement of `counted_groups` for one shape, built once: making it anew took
    longer than SQLite took to run it."""
    c = agg_cells.c
    # A literal factor: PostgreSQL accepts a grouped expression only when GROUP BY repeats
    # it exactly, and two bound parameters are not the same expression. Factor 1: the
    # columns themselves, so SQLite groups in index order without sorting.
    by = literal_column(str(int(factor)), Integer)
    gx = c.cx if factor == 1 else c.cx // by
    gy = c.cy if factor == 1 else c.cy // by
    inner = and_(
        c.cx.between(bindparam("ix0"), bindparam("ix1")),
        c.cy.between(bindparam("iy0"), bindparam("iy1")),
    )
    # Casts: PostgreSQL sums bigints as numeric (Decimal in Python).
    return (
        select(
            gx,
            gy,
            c.dataset,
            *(
                cast(func.sum(value), BigInteger)
                for value in (c.n, c.lat_micro, c.long_micro, case((inner, c.n), else_=0))
            ),
            *(
                cast(func.sum(case((c.status == s, c.n), else_=0)), BigInteger)
                for s in GROUP_STATUSES
            ),
        )
        .where(
            c.zoom == FINE_ZOOM,
            c.n > 0,
            c.cx.in_(bindparam("xs", expanding=True)),
            c.cy.between(bindparam("y0"), bindparam("y1")),
            *([c.status.in_(bindparam("statuses", expanding=True))] if by_status else []),
            *([c.dataset.in_(bindparam("datasets", expanding=True))] if by_dataset else []),
        )
        .group_by(gx, gy, c.dataset)
    )
