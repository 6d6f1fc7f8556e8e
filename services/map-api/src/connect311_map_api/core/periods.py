"""The reporting periods of the department view, and the period each is compared with.

A period is a half-open window [start, end) of naive UTC times. Rolling periods end at `now`;
calendar months follow the city's zone (a month starts at local midnight on the 1st). The
trend compares with the window of equal length just before (`previous_start` to `start`),
so "this month so far" (4 days) is compared with the 4 days before the 1st, never with a
whole month: the same number of days on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["PERIODS", "Period", "PeriodError", "resolve_period"]

ROLLING = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
PERIODS: dict[str, str] = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "365d": "Last 365 days",
    "month": "This month so far",
    "last-month": "Last month",
}
_MONTH = re.compile(r"\A(\d{4})-(\d{2})\Z")  # no nested quantifiers: linear time


class PeriodError(ValueError):
    """A period name the view does not know (the message lists the ones it does)."""


@dataclass(frozen=True)
class Period:
    """A reporting window and the equal-length window before it (naive UTC)."""

    name: str
    label: str
    start: datetime
    end: datetime

    @property
    def previous_start(self) -> datetime:
        """Start of the comparison window (it ends where this one starts)."""
        return self.start - (self.end - self.start)


def resolve_period(name: str, now: datetime, zone: tzinfo = UTC) -> Period:
    """The window `name` means at `now` (naive UTC) in the city's zone."""
    if name in ROLLING:
        return Period(name, PERIODS[name], now - timedelta(days=ROLLING[name]), now)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    if name == "month":
        return Period(name, PERIODS[name], _utc(local.year, local.month, zone), now)
    if name == "last-month":
        year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
        return _month(name, PERIODS[name], year, month, zone)
    match = _MONTH.match(name)
    if match and 1 <= int(match[2]) <= 12 and int(match[1]) >= 1970:
        year, month = int(match[1]), int(match[2])
        label = datetime(year, month, 1).strftime("%B %Y")
        period = _month(name, label, year, month, zone)
        if period.start >= now:
            raise PeriodError(f"{name} has not started yet")
        # The current month counts up to now: the comparison window is as long as it.
        return Period(name, label, period.start, min(period.end, now))
    raise PeriodError(f"unknown period {name!r}; use {', '.join(PERIODS)} or a month like 2024-05")


def _month(name: str, label: str, year: int, month: int, zone: tzinfo) -> Period:
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return Period(name, label, _utc(year, month, zone), _utc(*following, zone))


def _utc(year: int, month: int, zone: tzinfo) -> datetime:
    """Local midnight on the 1st of the month, as naive UTC."""
    return datetime(year, month, 1, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
