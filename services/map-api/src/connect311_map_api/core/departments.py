"""The department view's numbers from stored requests (pure: the rows arrive as DueInput).

For each department, over a period [start, end) and the equal-length period before it:
requests opened, requests closed (status closed now, with a close time in the window), the
share of those closes that met their target (of the closes that had one), and the median and
90th percentile time to close, counted as `core.stats` counts it (minutes under two days,
hours beyond) with its nearest-rank percentile. As of `now`: the open backlog by age in whole
days (0-7, 8-30, 31-90, over 90), how many are overdue, and how many are dated after `now`
(a feed whose clock runs ahead: counted open, given no age, as on the stats page).

Every number is over the stored state (the highest-ranked snapshot of each request), so a
reopened request is open again and its earlier close counts nowhere, and a late, older
snapshot changes nothing. Departments are ranked by share closed within target (highest
first; none after), then by median time to close (fastest first), then by closes, then name.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from connect311_contracts.due import DueInput, DueSource, due_status
from connect311_contracts.service_levels import ServiceLevels
from connect311_map_api.core.periods import Period
from connect311_map_api.core.stats import (
    UNKNOWN_AGENCY,
    close_bucket_minutes,
    percentile,
    seconds_between,
)

__all__ = ["AGE_BUCKETS", "ALL_DEPARTMENTS", "department_report"]

DAY_S = 86_400
ALL_DEPARTMENTS = "All departments"
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("age_0_7", 0, 7),  # whole days of age, both ends included
    ("age_8_30", 8, 30),
    ("age_31_90", 31, 90),
    ("age_over_90", 91, None),
)


@dataclass
class _Window:
    opened: int = 0
    closed: int = 0
    with_target: int = 0
    within_target: int = 0
    minutes: Counter[int] = field(default_factory=Counter)  # counted minutes to close

    def share(self) -> Fraction | None:
        return Fraction(self.within_target, self.with_target) if self.with_target else None

    def as_dict(self) -> dict[str, Any]:
        share = self.share()
        median = percentile(self.minutes.items(), 0.5)
        p90 = percentile(self.minutes.items(), 0.9)
        return {
            "opened": self.opened,
            "closed": self.closed,
            "closed_with_target": self.with_target,
            "closed_within_target": self.within_target,
            "share_within_target_pct": None if share is None else _tenths(100 * share),
            "median_close_seconds": None if median is None else median * 60,
            "p90_close_seconds": None if p90 is None else p90 * 60,
        }


@dataclass
class _Tally:
    current: _Window = field(default_factory=_Window)
    previous: _Window = field(default_factory=_Window)
    open: int = 0
    ages: Counter[str] = field(default_factory=Counter)
    overdue: int = 0
    dated_in_future: int = 0

    def row(self, agency: str) -> dict[str, Any]:
        now_share, before = self.current.share(), self.previous.share()
        change = None
        if now_share is not None and before is not None:
            change = _tenths(100 * (now_share - before))
        return {
            "agency": agency,
            **self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "share_change_pts": change,
            "open": self.open,
            **{name: self.ages[name] for name, _, _ in AGE_BUCKETS},
            "overdue": self.overdue,
            "dated_in_future": self.dated_in_future,
        }


def _tenths(value: Fraction) -> float:
    """To one decimal, halves away from zero (as people round: 12.25 -> 12.3), computed on
    the exact fraction so no binary rounding decides a displayed digit."""
    tenths = math.floor(abs(value) * 10 + Fraction(1, 2))
    return math.copysign(tenths / 10, value) if tenths else 0.0


def _bucket(age_s: int) -> str:
    days = age_s // DAY_S
    for name, _low, high in AGE_BUCKETS:
        if high is None or days <= high:
            return name
    raise AssertionError("the last bucket has no upper end")


def department_report(
    items: Iterable[DueInput], levels: ServiceLevels, period: Period, now: datetime
) -> dict[str, Any]:
    """Ranked department rows, the all-departments row, and where due dates came from."""
    tallies: dict[str, _Tally] = {}
    total = _Tally()
    sources: Counter[str] = Counter()
    windows = ((period.start, period.end), (period.previous_start, period.start))
    for item in items:
        name = item.agency or UNKNOWN_AGENCY
        tally = tallies.get(name) or tallies.setdefault(name, _Tally())
        made = item.requested_at
        opened_in = [start <= made < end for start, end in windows]
        closed_at = None if item.is_open else item.closed_at
        closed_in = [closed_at is not None and start <= closed_at < end for start, end in windows]
        # The due date matters only for the open (overdue) and the closed in a window.
        status = due_status(item, levels, now) if item.is_open or any(closed_in) else None
        bucket = None
        if closed_at is not None and any(closed_in):
            bucket = close_bucket_minutes(seconds_between(made, closed_at))
        age = seconds_between(made, now) if item.is_open else 0
        for side in (tally, total):
            for window, opened, closed in zip(
                (side.current, side.previous), opened_in, closed_in, strict=True
            ):
                window.opened += opened
                if closed and status is not None and bucket is not None:
                    window.closed += 1
                    window.minutes[bucket] += 1
                    if status.within_target is not None:
                        window.with_target += 1
                        window.within_target += status.within_target
            if item.is_open and status is not None:
                side.open += 1
                if age < 0:
                    side.dated_in_future += 1
                else:
                    side.ages[_bucket(age)] += 1
                side.overdue += status.overdue
        if status is not None and (item.is_open or closed_in[0]):
            sources[status.due.source.value if status.due.source else "no_target"] += 1
            sources["feed_date_ignored"] += status.due.feed_date_ignored
        if not item.is_open and item.closed_at is None:
            sources["closed_without_date"] += opened_in[0]
    rows = [tallies[name].row(name) for name in tallies if _present(tallies[name])]
    rows.sort(key=_rank_key)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {
        "departments": rows,
        "total": total.row(ALL_DEPARTMENTS),
        "due_dates": {
            key: sources[key]
            for key in (
                DueSource.FEED.value,
                DueSource.SERVICE_LEVEL.value,
                "no_target",
                "feed_date_ignored",
                "closed_without_date",
            )
        },
    }


def _present(tally: _Tally) -> bool:
    """Shown when anything about it is in the period (either window) or still open."""
    windows = (tally.current, tally.previous)
    return tally.open > 0 or any(w.opened or w.closed for w in windows)


def _rank_key(row: dict[str, Any]) -> tuple[Any, ...]:
    with_target, within = row["closed_with_target"], row["closed_within_target"]
    median = row["median_close_seconds"]
    return (
        with_target == 0,
        # Exact fractions, not the rounded percentages: 83.33% and 83.34% are not a tie.
        -Fraction(within, with_target) if with_target else 0,
        median is None,
        median or 0,
        -row["closed"],
        row["agency"],
    )
