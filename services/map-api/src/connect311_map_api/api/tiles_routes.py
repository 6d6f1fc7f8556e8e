"""Map data by tile: `/api/tiles/{z}/{x}/{y}.json?<filter key>`, cacheable by design.

Every client looking at the same place with the same filters asks the same URL (the filter
key is canonical: a non-canonical query is redirected to it), and each answer carries a strong
`ETag`, `Cache-Control: public, max-age, stale-while-revalidate` and a 304 on revalidation, so
a reverse proxy (deploy/nginx/map-api.conf) and the browser answer a crowd for the server. Live
changes keep coming over `/api/stream`.

Answers are gzipped once when rendered and kept so (never compressed per answer on the event
loop); each encoding has its own strong tag. An answer holds only what a marker needs (id,
position to 6 decimals, status, dataset and category code, when reported in seconds since 1970
UTC for the list view; the rest is fetched on click from `/api/requests/{id}`). Below
`MARKERS_MIN_Z`, or when a tile holds more than `MAX_TILE_MARKERS`, it holds the grid groups
of the tile instead: zoomed out, the city's cached groups; at street zooms (z11-z14), one
query summing the counted zoom-16 cells (db/tile_queries.py, core/tile_groups.py); finer, or
with filters the counted cells lack, a query over the tile's requests. A data tile spans
4 x 4 base-map tiles: the map asks at its zoom minus 2, so a full-screen view is a handful of
requests (the read limit counts each).
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic_core import to_json
from sqlalchemy import Connection

from connect311_map_api.cache import AnswerCache
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core.conditional import etag_of, not_modified
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox
from connect311_map_api.core.tile_groups import cluster_entries
from connect311_map_api.core.tiles import (
    MAX_ZOOM,
    FilterKeyError,
    Tile,
    as_request_filters,
    canonical_filters,
    filter_key,
    membership,
)
from connect311_map_api.db import aggregates, queries, tile_queries
from connect311_map_api.heavy_work import HEAVY

__all__ = [
    "CELLS_PER_TILE",
    "MARKERS_MIN_Z",
    "MARKER_FIELDS",
    "MAX_TILE_MARKERS",
    "TILES_PREFIX",
    "install",
    "router",
]

TILES_PREFIX = "/api/tiles/"
MARKERS_MIN_Z = 11  # a data tile at z11 is what the map shows at zoom 13 (its marker zoom)
# Beyond this the tile's groups are sent. A view shows 4-6 data tiles, and placing markers is
# what a zoom waits for: ~6-8k markers took MarkerCluster 0.6-0.7 s (bench/map_paint.py at
# 1M); with at most ~4-6k a zoom stays quick. MarkerCluster would draw that many as
# bubbles anyway.
MAX_TILE_MARKERS = 1_000
CELLS_PER_TILE = 16  # 16 grid cells across a data tile = 4 per 256-pixel base tile (~64 px)
DISPLAY_ZOOMS_ABOVE = 2  # a data tile at z covers a 1024-pixel square at map zoom z + 2
CACHED_MAX_DISPLAY_ZOOM = 12  # as /api/requests/clusters: a whole-city aggregation per zoom
# The date too: the list view beside the map (its equivalent for keyboards and screen
# readers) orders and dates what the markers show. Everything else comes on click.
# The address rides along: the list view beside the map (the map's accessible equivalent)
# names each request by kind and address without a request per row.
MARKER_FIELDS = ("id", "lat", "long", "status", "dataset", "service_code", "requested", "address")
CLUSTER_FIELDS = ("lat", "long", "count", "by_status", "by_dataset")
GZIP_LEVEL = 6  # ~level 9's size at a fraction of its time

router = APIRouter(prefix="/api", tags=["tiles"])
ZoomParam = Annotated[int, Path(ge=0, le=MAX_ZOOM, description="Tile zoom (Web Mercator)")]
IndexParam = Annotated[int, Path(ge=0, description="Tile column or row")]


@router.get(
    "/tiles/{z}/{x}/{y}.json",
    summary="Compact map data of one tile (cacheable)",
    dependencies=[HEAVY],
    responses={
        200: {"description": "Markers or groups of the tile, with ETag and Cache-Control"},
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        308: {"description": "The same tile under its canonical filter key"},
        422: {"description": "Unknown parameter, bad filter value or no such tile"},
    },
)
def tile(request: Request, ctx: Ctx, z: ZoomParam, x: IndexParam, y: IndexParam) -> Response:
    """Markers (`kind: markers`) or grid groups (`kind: clusters`) inside one tile.

    Query: the map's filters only (status, service_code, agency, dataset, since, until, q),
    in canonical form (sorted names, sorted comma-separated values); any other form is
    redirected (308) to the canonical URL, so every cache holds one copy per tile.
    """
    where = Tile(z, x, y)
    if not where.valid():
        raise HTTPException(422, detail=f"no tile {z}/{x}/{y}: x and y must be below 2**z")
    raw = request.url.query
    try:
        canonical = canonical_filters(parse_qsl(raw, keep_blank_values=True))
    except FilterKeyError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    key = filter_key(canonical)
    headers = {"Cache-Control": ctx.settings.map_data_cache_control()}
    if raw != key:
        location = f"{TILES_PREFIX}{z}/{x}/{y}.json" + (f"?{key}" if key else "")
        return Response(status_code=308, headers={**headers, "Location": location})
    answers: AnswerCache = request.app.state.tile_answers
    zipped = _accepts_gzip(request.headers.get("accept-encoding", ""))
    cache_key = (z, x, y, key, zipped)
    body = answers.lookup(cache_key)
    if body is None:
        body = _body(ctx, where, as_request_filters(canonical))
        if zipped:
            # Compressed once here (a worker thread), kept compressed: never per answer on
            # the event loop. mtime=0: equal content, equal bytes, equal ETag.
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        answers.keep(cache_key, body)
    # Each encoding is its own representation, so its own strong tag (RFC 9110 8.8.3).
    headers["ETag"] = etag_of(body, ".gz" if zipped else "")
    headers["Vary"] = "Accept-Encoding"
    if zipped:
        headers["Content-Encoding"] = "gzip"
    if not_modified(request.headers.get("if-none-match"), None, headers["ETag"]):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding allows gzip (named, or `*`, without `q=0`)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            return not (params.strip().startswith("q=") and _is_zero(q))
    return False


def _is_zero(q: str) -> bool:
    try:
        return float(q) == 0.0
    except ValueError:
        return False


def _body(ctx: AppContext, where: Tile, filters: RequestFilters) -> bytes:
    head: dict[str, Any] = {"z": where.z, "x": where.x, "y": where.y}
    counted = None
    if where.z >= MARKERS_MIN_Z:
        with ctx.engine.connect() as conn:
            # A street tile's groups and the count of its inner cells in one query: when
            # that count alone is over the marker limit, no marker row is read (a cold dense
            # tile's marker query was most of its cost).
            counted = tile_queries.counted_groups(conn, filters, where, _group_degrees(where))
            crowded = (
                counted.inner > MAX_TILE_MARKERS
                if counted is not None
                else _surely_crowded(conn, where, filters)
            )
            rows = (
                []
                if crowded
                else tile_queries.marker_rows(conn, filters, where, MAX_TILE_MARKERS + 1)
            )
        if not crowded and len(rows) <= MAX_TILE_MARKERS:
            # Sorted here, not in SQL: the same content (so ETag) whatever plan found the rows.
            markers = sorted(
                [sid, round(lat, 6), round(long, 6), status, dataset, code, requested, address]
                for sid, lat, long, status, dataset, code, requested, address in rows
            )
            return _json({**head, "kind": "markers", "fields": MARKER_FIELDS, "markers": markers})
    clusters = (
        cluster_entries(counted.rows, membership(where))
        if counted is not None
        else _cells(ctx, where, filters)
    )
    return _json(
        {
            **head,
            "kind": "clusters",
            "total": sum(c[2] for c in clusters),
            "fields": CLUSTER_FIELDS,
            "clusters": clusters,
        }
    )


def _surely_crowded(conn: Connection, where: Tile, filters: RequestFilters) -> bool:
    """Whether the counted cells alone show more requests in the tile than it may send as
    markers (tiles whose groups the counted cells do not make: finer than zoom-16 cells)."""
    if not aggregates.serves_cells(filters):
        return False
    box = BBox(where.west, where.south, where.east, where.north)
    return aggregates.inner_count(conn, filters, box) > MAX_TILE_MARKERS


def _group_degrees(where: Tile) -> float:
    return 360.0 / (where.n * CELLS_PER_TILE)


def _cells(ctx: AppContext, where: Tile, filters: RequestFilters) -> list[list[Any]]:
    """The grid groups whose centre of mass lies in the tile (each group in one tile only),
    from the city's cached groups (zoomed out) or a query over the tile's requests."""
    cell = _group_degrees(where)
    display_zoom = where.z + DISPLAY_ZOOMS_ABOVE

    def compute(f: RequestFilters) -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            return queries.clusters(conn, f, cell)

    if display_zoom <= CACHED_MAX_DISPLAY_ZOOM:
        # The same whole-city aggregation (and cache key) /api/requests/clusters uses.
        cells: list[dict[str, Any]] = ctx.cache.get(
            ("clusters", display_zoom, filters), lambda: compute(filters)
        )
    else:
        box = BBox(where.west, where.south, where.east, where.north)
        cells = compute(replace(filters, bbox=box))
    holds = membership(where)
    return [
        [round(c["lat"], 6), round(c["long"], 6), c["count"], c["by_status"], c["by_dataset"]]
        for c in cells
        if holds(c["lat"], c["long"])
    ]


def _json(content: dict[str, Any]) -> bytes:
    # pydantic-core's encoder (FastAPI's own dependency): ~6x the stdlib's speed on a tile.
    # The same JSON values (numbers below 1e-4 are written without an exponent); no NaN or
    # infinity reaches it (connect311_contracts.request refuses such coordinates).
    return to_json(content)


def install(app: FastAPI, ctx: AppContext) -> None:
    """Add the tile route and its answer cache (rendered, and compressed when asked)."""
    app.state.tile_answers = AnswerCache(ctx.settings.tile_max_age_s)
    app.include_router(router)
