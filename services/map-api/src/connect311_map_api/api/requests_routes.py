"""Requests on the map: GeoJSON pages, clusters, one request, stats and lists."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from connect311_contracts.media import public_media_url
from connect311_contracts.status_words import resident_status
from connect311_map_api.api.json_pieces import compact_json_bytes
from connect311_map_api.api.models import (
    Agency,
    Category,
    ClusterCollection,
    Dataset,
    RequestCollection,
    RequestDetail,
    RequestMatches,
    Stats,
)
from connect311_map_api.api.params import request_filters, service_levels, unprocessable
from connect311_map_api.cache import HEAVY_ROWS
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import grid_range
from connect311_map_api.core.state import feature, iso
from connect311_map_api.core.stats import Interval
from connect311_map_api.db import aggregates, lookup, queries
from connect311_map_api.db.overdue_queries import overdue_page
from connect311_map_api.departments import minute_end
from connect311_map_api.due_dates import due_fields
from connect311_map_api.heavy_work import HEAVY

router = APIRouter(prefix="/api", tags=["requests"])
Filters = Annotated[RequestFilters, Depends(request_filters)]
CELLS_PER_TILE = 4  # four grid cells across a 256-pixel tile: ~64 px per cluster
CACHED_MAX_ZOOM = 12  # up to here a whole-city aggregation has few enough cells to keep
MAX_LIMIT = 1_000  # the map asks for 1,000 a page; 5,000 slowed every other caller (issue 12)


@router.get(
    "/requests",
    response_model=RequestCollection,
    summary="Requests as GeoJSON",
    dependencies=[HEAVY],
)
def list_requests(
    ctx: Ctx,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Features per page")] = 500,
    cursor: Annotated[
        str | None, Query(max_length=20, description="next_cursor of the previous page")
    ] = None,
    overdue: Annotated[
        bool,
        Query(
            description="Only open requests past their due date (the feed's, else the "
            "service level), judged at the end of the current minute like /api/stats/departments"
        ),
    ] = False,
) -> Response:
    """Requests matching the filters, in pages (keyset pagination with `next_cursor`)."""
    after = None
    if cursor is not None:
        if not cursor.isdigit():
            raise unprocessable("cursor must be the next_cursor value of a previous page")
        after = int(cursor)
    moment = minute_end() if overdue else None
    zone = ctx.settings.display_timezone
    key = ("requests", filters, limit, after, moment)
    body = ctx.answers.lookup(key)
    if body is None:
        with ctx.engine.connect() as conn:
            if moment is not None:
                levels = service_levels(ctx.settings.service_levels_file, zone)
                rows, next_pk = overdue_page(conn, filters, levels, moment, limit, after)
            else:
                rows, next_pk = queries.request_page(conn, filters, limit, after)
        # Built from our own rows, so returned directly: re-validating up to 1,000 features
        # against the response model would cost more than the query (see bench/map_api.py).
        body = compact_json_bytes(
            {
                "type": "FeatureCollection",
                "features": [feature(row) for row in rows],
                "next_cursor": str(next_pk) if next_pk is not None else None,
            }
        )
        if len(rows) >= HEAVY_ROWS:  # the same heavy page asked again is only sent again
            ctx.answers.keep(key, body)
    return Response(body, media_type="application/json")


@router.get(
    "/requests/clusters",
    response_model=ClusterCollection,
    summary="Grid aggregation",
    dependencies=[HEAVY],
)
def request_clusters(
    ctx: Ctx,
    filters: Filters,
    zoom: Annotated[int, Query(ge=0, le=22, description="Web-map zoom level")],
) -> dict[str, Any]:
    """Counts by dataset and by status per grid cell sized for the zoom level (for low zoom
    levels); `by_status` leaves out records without a status (crime incidents)."""
    cell = 360.0 / (2**zoom * CELLS_PER_TILE)
    cells = _cells(ctx, filters, zoom, cell)
    return {
        "type": "FeatureCollection",
        "zoom": zoom,
        "cell_degrees": cell,
        "total": sum(c["count"] for c in cells),
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [c["long"], c["lat"]]},
                "properties": {
                    "count": c["count"],
                    "by_status": c["by_status"],
                    "by_dataset": c["by_dataset"],
                    "bounds": c["bounds"],
                },
            }
            for c in cells
        ],
    }


def _cells(ctx: AppContext, filters: RequestFilters, zoom: int, cell: float) -> list[Any]:
    def compute(f: RequestFilters) -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            return queries.clusters(conn, f, cell)

    if zoom > CACHED_MAX_ZOOM:
        return compute(filters)
    # Low zoom: one whole-city aggregation per filter set serves every viewport.
    everywhere = replace(filters, bbox=None)
    cells: list[dict[str, Any]] = ctx.cache.get(
        ("clusters", zoom, everywhere), lambda: compute(everywhere)
    )
    if filters.bbox is None:
        return cells
    x0, y0, x1, y1 = grid_range(filters.bbox, cell)
    return [c for c in cells if x0 <= c["cell"][0] <= x1 and y0 <= c["cell"][1] <= y1]


@router.get(
    "/requests/lookup",
    response_model=RequestMatches,
    summary="Find requests by the city's number or the prefixed id",
)
def lookup_requests(
    ctx: Ctx,
    number: Annotated[
        str,
        Query(
            min_length=1,
            max_length=300,
            description="The city's own request number (e.g. 56922334) or `source:id`",
        ),
    ],
) -> dict[str, Any]:
    """Requests a resident's number names; several when more than one feed uses it."""
    # People copy numbers as "#56922334" or with spaces around them.
    wanted = number.strip().lstrip("#").strip()
    if not wanted:
        raise unprocessable("number must contain the request number, e.g. 56922334")
    with ctx.engine.connect() as conn:
        rows = lookup.by_number(conn, wanted)
    return {
        "number": wanted,
        "matches": [
            {
                "service_request_id": row.service_request_id,
                "source": row.source,
                "dataset": row.dataset,
                "service_name": row.service_name,
                "agency_responsible": row.agency_responsible,
                "address": row.address,
                "status": row.status,
                "requested_datetime": iso(row.requested_datetime),
            }
            for row in rows
        ],
    }


@router.get(
    "/requests/{service_request_id:path}",
    response_model=RequestDetail,
    summary="One request with its timeline",
    responses={404: {"description": "No such request"}},
)
def one_request(ctx: Ctx, service_request_id: str) -> dict[str, Any]:
    """The current state of a request and every recorded change, oldest first."""
    with ctx.engine.connect() as conn:
        row = queries.one_request(conn, service_request_id)
        if row is None:
            raise HTTPException(404, detail="no request with this service_request_id")
        events = queries.timeline(conn, service_request_id)
    detail = feature(row)
    detail.update(
        status_notes=row.status_notes,
        status_text=resident_status(row.status, row.closed_reason, row.raw_status),
        closed_reason=row.closed_reason,
        raw_status=row.raw_status,
        closed_datetime=iso(row.closed_datetime),
        expected_datetime=iso(row.expected_datetime),
        **due_fields(ctx.settings, row),
        media_url=public_media_url(row.media_url),
        timeline=[
            {
                "occurred_at": iso(e.occurred_at),
                "source_at": iso(e.source_at),
                "event_type": e.event_type,
                "status": e.status,
                "previous_status": e.previous_status,
                "status_notes": e.status_notes,
            }
            for e in events
        ],
    )
    return detail


@router.get("/stats", response_model=Stats, summary="Department statistics", dependencies=[HEAVY])
def stats(
    ctx: Ctx,
    filters: Filters,
    interval: Annotated[Interval, Query(description="Period of the series")] = Interval.WEEK,
) -> dict[str, Any]:
    """Opened vs resolved per agency per period, open backlog and age, time to close."""

    def compute() -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            return queries.stats(conn, filters, interval)

    result: dict[str, Any] = ctx.cache.get(("stats", filters, interval), compute)
    return result


@router.get("/categories", response_model=list[Category], summary="Service types present")
def categories(ctx: Ctx, response: Response) -> list[dict[str, Any]]:
    """Every service code in the data with its name, request count and datasets."""
    # Every page load asks for these lists: browsers and the proxy keep them like tiles.
    response.headers["Cache-Control"] = ctx.settings.map_data_cache_control()
    with ctx.engine.connect() as conn:
        rows = aggregates.kind_counts(conn, "service_code", "service_name", "dataset")
    merged: dict[str, dict[str, Any]] = {}
    for code, name, dataset, count in rows:
        entry = merged.setdefault(
            code, {"service_code": code, "service_name": name, "count": 0, "datasets": []}
        )
        entry["count"] += count
        if dataset not in entry["datasets"]:
            entry["datasets"].append(dataset)
    return list(merged.values())


@router.get("/agencies", response_model=list[Agency], summary="Departments present")
def agencies(ctx: Ctx, response: Response) -> list[dict[str, Any]]:
    """Every responsible agency in the data with its request count."""
    response.headers["Cache-Control"] = ctx.settings.map_data_cache_control()
    with ctx.engine.connect() as conn:
        rows = aggregates.kind_counts(conn, "agency")
    return [{"agency": a, "count": n} for a, n in rows]


@router.get("/datasets", response_model=list[Dataset], summary="Datasets present")
def datasets(ctx: Ctx, response: Response) -> list[dict[str, Any]]:
    """Every dataset in the data with its request count."""
    response.headers["Cache-Control"] = ctx.settings.map_data_cache_control()
    with ctx.engine.connect() as conn:
        rows = aggregates.kind_counts(conn, "dataset")
    return [{"dataset": d, "count": n} for d, n in rows]
