"""The department view's answer: targets, stored rows and the pure count, put together.

One function serves the JSON, the CSV and the stats widget, so all three show the same
numbers for the same filters and minute. The numbers are measured at the end of the current
minute (`as_of`, at most a minute ahead of the clock): within a minute every answer (and so
its ETag) is the same, which makes the answers cacheable by browsers and proxies, and every
request made so far is counted as made by then. Measuring at the minute's start instead
would show a busy city's requests of the last seconds as "dated ahead" of the numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connect311_contracts.service_levels import load
from connect311_map_api.context import AppContext
from connect311_map_api.core.departments import department_report
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.periods import Period, resolve_period
from connect311_map_api.core.state import iso
from connect311_map_api.db.department_queries import department_rows
from connect311_map_api.db.queries import with_lifecycle

__all__ = ["department_view", "minute_end"]


def minute_end() -> datetime:
    """The end of the current minute, naive UTC: the moment the numbers are measured at."""
    start = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    return start + timedelta(minutes=1)


def department_view(
    ctx: AppContext, filters: RequestFilters, period_name: str, now: datetime | None = None
) -> dict[str, Any]:
    """The numbers for one filter set and period (PeriodError, ServiceLevelsError: say why)."""
    moment = now or minute_end()
    settings = ctx.settings
    zone_name = settings.display_timezone
    period = resolve_period(period_name, moment, ZoneInfo(zone_name))
    levels = load(settings.service_levels_file, zone_name)

    def compute() -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            # Without a dataset filter, crime incidents (closed when they happen) stay out.
            rows = department_rows(conn, with_lifecycle(conn, filters), period.previous_start)
            report = department_report(rows, levels, period, moment)
        return {
            "as_of": iso(moment),
            "period": _period(period),
            "filters": {"agency": list(filters.agencies), "dataset": list(filters.datasets)},
            "service_levels": {"configured": levels.rules > 0, "rules": levels.rules},
            **report,
        }

    # The levels object is part of the key: an edited file is never answered from before.
    key = ("departments", filters, period_name, moment, id(levels))
    result: dict[str, Any] = ctx.cache.get(key, compute)
    return result


def _period(period: Period) -> dict[str, Any]:
    return {
        "name": period.name,
        "label": period.label,
        "start": iso(period.start),
        "end": iso(period.end),
        "previous_start": iso(period.previous_start),
    }
