"""Department statistics from small pre-aggregated rows (pure: no database here).

Durations are counted in seconds, never rounded to whole hours or days: a request closed
25 minutes after it was reported counts as 25 minutes. Times to close are kept to the minute
under two days and to the hour beyond (`close_bucket_minutes`), which is finer than the
page shows them (minutes under an hour, tenths of an hour under two days, tenths of a day
beyond), so grouping them never changes a number a person reads.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum

__all__ = [
    "EXACT_MINUTES_BELOW_S",
    "UNKNOWN_AGENCY",
    "Interval",
    "backlog",
    "close_bucket_minutes",
    "group_histograms",
    "opened_resolved",
    "percentile",
    "period_start",
    "seconds_between",
    "time_to_close",
]

UNKNOWN_AGENCY = "(unknown)"
EXACT_MINUTES_BELOW_S = 2 * 86_400
"""Times to close shorter than this are counted to the minute; longer ones to the hour."""


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


def seconds_between(start: datetime, end: datetime) -> int:
    """Whole seconds from `start` to `end`, each truncated to its second first.

    The same rule the SQL recount uses (SQLite's strftime('%s') truncates), so the
    aggregate tables and a direct query always put a request in the same bucket.
    """
    return int((end.replace(microsecond=0) - start.replace(microsecond=0)).total_seconds())


def close_bucket_minutes(seconds: int) -> int:
    """The counted time to close: whole minutes under two days, whole hours (as minutes) beyond."""
    if seconds < EXACT_MINUTES_BELOW_S:
        return seconds // 60
    return seconds // 3600 * 60


def time_to_close(rows: Iterable[tuple[str | None, int, int]]) -> list[dict[str, object]]:
    """Median and p90 seconds to close per agency from (agency, bucket minutes, count) rows."""
    out: list[dict[str, object]] = []
    for agency, hist in sorted(group_histograms(rows).items()):
        median, p90 = percentile(hist, 0.5), percentile(hist, 0.9)
        out.append(
            {
                "agency": agency,
                "closed": sum(c for _, c in hist),
                "median_seconds": None if median is None else median * 60,
                "p90_seconds": None if p90 is None else p90 * 60,
            }
        )
    return out


def backlog(
    rows: Iterable[tuple[str | None, datetime, int]], now: datetime
) -> list[dict[str, object]]:
    """Open count and age (seconds) per agency from (agency, opened at, count) rows.

    A request dated after `now` (a feed whose clock runs ahead, or a replay that moved its
    times forward) has no age yet: it is counted in `dated_in_future`, never as a negative
    age, and left out of the percentiles.
    """
    ages: dict[str, list[tuple[int, int]]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # open, dated in future
    for agency, opened, count in rows:
        name = agency or UNKNOWN_AGENCY
        counts[name][0] += count
        age = seconds_between(opened, now)
        if age < 0:
            counts[name][1] += count
        else:
            ages[name].append((age, count))
    return [
        {
            "agency": agency,
            "open": total,
            "dated_in_future": future,
            "median_age_seconds": percentile(ages[agency], 0.5),
            "p90_age_seconds": percentile(ages[agency], 0.9),
            "oldest_age_seconds": max((v for v, _ in ages[agency]), default=None),
        }
        for agency, (total, future) in sorted(counts.items())
    ]
