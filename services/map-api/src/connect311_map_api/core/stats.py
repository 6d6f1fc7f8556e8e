"""Department statistics from small pre-aggregated rows (pure: no database here)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from enum import StrEnum

UNKNOWN_AGENCY = "(unknown)"


class Interval(StrEnum):
    """Period length for opened-vs-resolved series."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_start(day: date, interval: Interval) -> date:
    """The first day of the period containing `day` (weeks start on Monday)."""
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    if interval is Interval.MONTH:
        return day.replace(day=1)
    return day


def opened_resolved(
    opened: Iterable[tuple[str | None, str, int]],
    resolved: Iterable[tuple[str | None, str, int]],
    interval: Interval,
) -> list[dict[str, object]]:
    """Roll (agency, ISO day, count) rows up to per-agency periods, sorted by period."""
    acc: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    starts: dict[str, date] = {}  # thousands of rows share a few hundred days
    for index, rows in enumerate((opened, resolved)):
        for agency, day, count in rows:
            start = starts.get(day)
            if start is None:
                start = starts[day] = period_start(date.fromisoformat(day), interval)
            acc[agency or UNKNOWN_AGENCY, start][index] += count
    return [
        {"period": start.isoformat(), "agency": agency, "opened": o, "resolved": r}
        for (agency, start), (o, r) in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def percentile(histogram: Iterable[tuple[int, int]], fraction: float) -> int | None:
    """Nearest-rank percentile of values given as (value, count) pairs; None when empty."""
    pairs = sorted(histogram)
    total = sum(count for _, count in pairs)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value, count in pairs:
        seen += count
        if seen >= rank:
            return value
    return pairs[-1][0]


def group_histograms(
    rows: Iterable[tuple[str | None, int, int]],
) -> dict[str, list[tuple[int, int]]]:
    """(agency, value, count) rows as a histogram per agency."""
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for agency, value, count in rows:
        out[agency or UNKNOWN_AGENCY].append((value, count))
    return dict(out)


def time_to_close(rows: Iterable[tuple[str | None, int, int]]) -> list[dict[str, object]]:
    """Median and p90 hours to close per agency from (agency, hours, count) rows."""
    return [
        {
            "agency": agency,
            "closed": sum(c for _, c in hist),
            "median_hours": percentile(hist, 0.5),
            "p90_hours": percentile(hist, 0.9),
        }
        for agency, hist in sorted(group_histograms(rows).items())
    ]


def backlog(rows: Iterable[tuple[str | None, str, int]], today: date) -> list[dict[str, object]]:
    """Open count and age (days) per agency from (agency, ISO day opened, count) rows."""
    rows = list(rows)
    days = {day: (today - date.fromisoformat(day)).days for day in {day for _, day, _ in rows}}
    ages = group_histograms((agency, days[day], count) for agency, day, count in rows)
    return [
        {
            "agency": agency,
            "open": sum(c for _, c in hist),
            "median_age_days": percentile(hist, 0.5),
            "p90_age_days": percentile(hist, 0.9),
            "oldest_age_days": max(v for v, _ in hist),
        }
        for agency, hist in sorted(ages.items())
    ]
