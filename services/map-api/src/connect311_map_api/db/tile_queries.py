"""Rows of one map data tile: compact marker rows, half-open tile edges (see core/tiles.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, and_, cast, extract, select

from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.tiles import Tile
from connect311_map_api.db.queries import conditions
from connect311_map_api.db.tables import requests

__all__ = ["marker_rows"]

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
