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
from collections.abc import Callable, Iterable
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
    open_days: Iterable[tuple[str | None, str, int]],
    times_of: Callable[[str | None, str], list[datetime]],
    now: datetime,
) -> list[dict[str, object]]:
    """Open count and exact age (seconds) per agency.

    `open_days` are (agency, ISO day opened, count) rows of open requests (small: from the
    aggregate tables); `times_of(agency, day)` gives the exact times one day's open requests
    were made. Only the days holding the median, the 90th percentile and the oldest request,
    and the days from `now`'s day on, are read exactly, so ages are true to the second without
    reading the whole backlog. A request dated after `now` (a feed whose clock runs ahead, or
    a replay that moved its times forward) has no age yet: it is counted in `dated_in_future`,
    never as a negative age, and left out of the percentiles.
    """
    days_of: dict[str | None, dict[str, int]] = defaultdict(dict)
    for agency, day, count in open_days:
        if count:
            days_of[agency][day] = days_of[agency].get(day, 0) + count
    out = {
        agency or UNKNOWN_AGENCY: _agency_backlog(agency, counts, times_of, now)
        for agency, counts in days_of.items()  # one of "" or None per answer, never both
    }
    return [out[name] for name in sorted(out)]


def _agency_backlog(
    agency: str | None,
    counts: dict[str, int],
    times_of: Callable[[str | None, str], list[datetime]],
    now: datetime,
) -> dict[str, object]:
    cache: dict[str, list[int]] = {}

    def ages(day: str) -> list[int]:
        if day not in cache:
            cache[day] = sorted(seconds_between(t, now) for t in times_of(agency, day))
        return cache[day]

    today = now.date().isoformat()
    days = sorted(counts, reverse=True)  # youngest first: ages ascend day by day
    recent = sorted(a for day in days if day >= today for a in ages(day))
    future = sum(1 for a in recent if a < 0)
    recent = [a for a in recent if a >= 0]
    older = [day for day in days if day < today]  # every age there is positive
    valid = len(recent) + sum(counts[day] for day in older)

    def age_at(rank: int) -> int:
        """The rank-th smallest age (1-based), reading only the day that holds it."""
        if rank <= len(recent):
            return recent[rank - 1]
        rank -= len(recent)
        for day in older:
            if rank <= counts[day]:
                return ages(day)[rank - 1]
            rank -= counts[day]
        raise LookupError("the aggregate counts and the stored requests disagree")

    def at(fraction: float) -> int | None:
        return age_at(max(1, math.ceil(fraction * valid))) if valid else None

    return {
        "agency": agency or UNKNOWN_AGENCY,
        "open": sum(counts.values()),
        "dated_in_future": future,
        "median_age_seconds": at(0.5),
        "p90_age_seconds": at(0.9),
        "oldest_age_seconds": at(1.0),
    }
