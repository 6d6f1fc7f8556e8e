"""Counts by type and by time, for records with no lifecycle (crime incidents) (pure).

Crime has no "opened vs resolved" and no time to close: what a resident asks is what happens,
and when. The database counts per type and per UTC hour; this turns the hours into the city's
days of the week, hours of the day and dates. A UTC hour is placed by the local time at its
start, which is exact for every zone whose offset is whole hours (all of the US); in a zone
with a half-hour offset an incident can land in the neighbouring local hour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["MAX_TYPES", "UNKNOWN_TYPE", "WEEKDAYS", "breakdown"]

MAX_TYPES = 25
"""Types listed one by one; the rest are summed as 'other types' (crime has ~300)."""
UNKNOWN_TYPE = "(no type given)"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def breakdown(
    by_type: Iterable[tuple[str | None, int]],
    by_utc_hour: Iterable[tuple[datetime, int]],
    zone: ZoneInfo,
) -> dict[str, Any]:
    """Counts by type (largest first), by local weekday, by local hour and per local day.

    `by_utc_hour`: (start of a UTC hour, naive or aware, count) rows.
    """
    types: Counter[str] = Counter()
    for name, count in by_type:
        types[name or UNKNOWN_TYPE] += count
    ranked = sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))
    weekdays = [0] * 7
    hours = [0] * 24
    days: Counter[str] = Counter()
    for start, count in by_utc_hour:
        aware = start.replace(tzinfo=UTC) if start.tzinfo is None else start
        local = aware.astimezone(zone)
        weekdays[local.weekday()] += count
        hours[local.hour] += count
        days[local.date().isoformat()] += count
    return {
        "time_zone": zone.key,
        "total": sum(types.values()),
        "by_type": [{"type": t, "count": n} for t, n in ranked[:MAX_TYPES]],
        "other_types": sum(n for _, n in ranked[MAX_TYPES:]),
        "type_count": len(ranked),
        "by_weekday": [{"day": d, "count": weekdays[i]} for i, d in enumerate(WEEKDAYS)],
        "by_hour": [{"hour": h, "count": hours[h]} for h in range(24)],
        "per_day": [{"day": d, "count": days[d]} for d in sorted(days)],
    }
