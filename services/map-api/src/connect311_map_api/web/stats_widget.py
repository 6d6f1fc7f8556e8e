"""The stats widget (`/embed/stats`): one department's opened vs resolved, for an iframe.

Rendered on the server from the department view's numbers (the same function the page and
the CSV use), with no script at all, so it is small, works in any iframe and is cacheable:
the numbers are measured to the minute, so within a minute the same URL gives the same bytes
and the same ETag. Numbers and the time are written in the page's language with Babel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_skeleton
from babel.numbers import format_decimal, format_percent

from connect311_map_api.core.departments import ALL_DEPARTMENTS
from connect311_map_api.core.filters import RequestFilters

__all__ = ["widget_context"]


def widget_context(
    view: dict[str, Any], filters: RequestFilters, locale: str, zone_name: str
) -> dict[str, Any]:
    """What embed_stats.html shows: the filtered total, worded for `locale`."""
    total = view["total"]
    share = total["share_within_target_pct"]
    as_of = datetime.fromisoformat(view["as_of"].replace("Z", "+00:00")).astimezone(UTC)
    query = {
        "period": view["period"]["name"],
        "agency": ",".join(filters.agencies),
        "dataset": ",".join(filters.datasets),
    }
    return {
        # One department: its name; several or none: "All departments" (translated there).
        "department": ", ".join(filters.agencies) if filters.agencies else None,
        "all_departments": ALL_DEPARTMENTS,
        "datasets": ", ".join(filters.datasets),
        "period_label": view["period"]["label"],
        "numbers": {
            key: format_decimal(total[key], locale=locale)
            for key in ("opened", "closed", "open", "overdue")
        },
        "share": None if share is None else format_percent(share / 100, "#,##0.0%", locale=locale),
        "as_of": view["as_of"],
        "as_of_text": _when(as_of, ZoneInfo(zone_name), locale),
        "details_href": "/stats/departments?" + urlencode({k: v for k, v in query.items() if v}),
    }


def _when(moment: datetime, zone: ZoneInfo, locale: str) -> str:
    """The city's time with its zone named, as the pages write it (Dec 4, 2025, 10:04 AM EST)."""
    day = format_skeleton("yMMMd", moment, tzinfo=zone, locale=locale)
    clock = format_skeleton("hm", moment, tzinfo=zone, locale=locale)
    return f"{day}, {clock} {format_datetime(moment, 'zzz', tzinfo=zone, locale=locale)}"
