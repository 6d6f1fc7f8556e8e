"""The department view's numbers as JSON and as CSV (same filters, same numbers)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from connect311_contracts.service_levels import ServiceLevelsError
from connect311_map_api.api.department_models import DepartmentStats
from connect311_map_api.api.params import request_filters, unprocessable
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core.department_csv import department_csv
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.periods import PERIODS, PeriodError
from connect311_map_api.departments import department_view
from connect311_map_api.heavy_work import HEAVY
from connect311_map_api.http_cache import cacheable

__all__ = ["PeriodParam", "department_filters", "router", "view_or_error"]

router = APIRouter(prefix="/api", tags=["requests"])
PeriodParam = Annotated[
    str,
    Query(
        max_length=20,
        description=f"One of {', '.join(PERIODS)}, or a month like 2024-05 (city time zone)",
    ),
]
CACHED: dict[int | str, dict[str, Any]] = {
    200: {"description": "The numbers, with ETag and Cache-Control"},
    304: {"description": "Unchanged since the ETag sent in If-None-Match"},
    422: {"description": "Unknown period or bad filter"},
    503: {"description": "The service-levels file cannot be used (the reason is given)"},
}


async def department_filters(
    agency: Annotated[
        str | None, Query(description="Comma-separated departments", max_length=2000)
    ] = None,
    dataset: Annotated[
        str | None, Query(description="Comma-separated datasets", max_length=500)
    ] = None,
) -> RequestFilters:
    """The view's filters, checked as every other view checks them."""
    return await request_filters(agency=agency, dataset=dataset)


Filters = Annotated[RequestFilters, Depends(department_filters)]


def view_or_error(ctx: AppContext, filters: RequestFilters, period: str) -> dict[str, Any]:
    """The department numbers, or the HTTP error that says why there are none."""
    try:
        return department_view(ctx, filters, period)
    except PeriodError as exc:
        raise unprocessable(str(exc)) from exc
    except ServiceLevelsError as exc:
        raise HTTPException(503, detail=f"service levels unusable: {exc}") from exc


@router.get(
    "/stats/departments",
    response_model=DepartmentStats,
    summary="Departments compared: due dates, backlog by age, trend",
    responses=CACHED,
    dependencies=[HEAVY],
)
def departments(request: Request, ctx: Ctx, filters: Filters, period: PeriodParam = "30d") -> Any:
    """Per department for the period and the one before it: opened, closed, share closed
    within target, time to close (median, 90th percentile, seconds); and now: the open
    backlog by age (0-7, 8-30, 31-90, over 90 days) and overdue requests. Ranked."""
    view = view_or_error(ctx, filters, period)
    body = json.dumps(view, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return cacheable(
        request, body.encode("utf-8"), "application/json", ctx.settings.stats_max_age_s
    )


@router.get(
    "/stats/departments.csv",
    summary="The department numbers as CSV",
    response_class=Response,
    dependencies=[HEAVY],
    responses={**CACHED, 200: {"content": {"text/csv": {}}, "description": "One row a department"}},
)
def departments_csv(
    request: Request, ctx: Ctx, filters: Filters, period: PeriodParam = "30d"
) -> Response:
    """The numbers of /api/stats/departments, one row per department in rank order, then
    all departments; durations in seconds, shares in percent."""
    view = view_or_error(ctx, filters, period)
    name = f"departments-{view['period']['name']}-{view['as_of'][:16].replace(':', '')}.csv"
    return cacheable(
        request,
        department_csv(view).encode("utf-8"),
        "text/csv; charset=utf-8",
        ctx.settings.stats_max_age_s,
        {"Content-Disposition": f'attachment; filename="{name}"'},
    )
