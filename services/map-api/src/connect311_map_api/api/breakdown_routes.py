"""Counts by type and time (/api/stats/breakdown): the statistics of records with no
lifecycle, such as crime incidents, where "opened vs resolved" and time to close mean nothing."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends

from connect311_map_api.api.models import Breakdown
from connect311_map_api.api.params import request_filters
from connect311_map_api.context import Ctx
from connect311_map_api.core.breakdown import breakdown
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.db.breakdown import breakdown_rows
from connect311_map_api.heavy_work import HEAVY

router = APIRouter(prefix="/api/stats", tags=["requests"])
Filters = Annotated[RequestFilters, Depends(request_filters)]


@router.get(
    "/breakdown",
    response_model=Breakdown,
    summary="Counts by type and by time",
    dependencies=[HEAVY],
)
def stats_breakdown(ctx: Ctx, filters: Filters) -> dict[str, Any]:
    """How many records match the filters, by type, by day of the week, by hour of the day
    and per day, in the city's time zone (MAP_API_DISPLAY_TIMEZONE), by the time each was
    reported (a crime incident's time). Use `dataset=crime` for crime statistics."""
    zone = ZoneInfo(str(ctx.settings.display_timezone))

    def compute() -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            by_type, by_hour = breakdown_rows(conn, filters)
        return breakdown(by_type, by_hour, zone)

    result: dict[str, Any] = ctx.cache.get(("breakdown", filters), compute)
    return result
