"""Due dates: when a request should be closed, and whether (and how long) it is overdue.

Pure (no I/O): the operator's service levels arrive parsed (`service_levels`), the clock as
an argument. One rule for every service (the map API's department view and request detail,
the ingestor's `RequestOverdue` events), so a request is "overdue" by the same test
everywhere:

- The feed's own `expected_datetime` wins when present (Open311's word on the city's
  promise). A feed date before the request was made is a data error: it is ignored (counted
  as `feed_date_ignored`) and the service levels answer instead.
- Otherwise the most specific service level: `service_code`, then `service_name`, then
  `agency`, then `default`; names are matched ignoring case and surrounding spaces.
- Day targets count in the city's zone, on the wall clock (3 days from 4:10 PM is 4:10 PM
  three days later, across a DST change too). With `business_days` only Monday to Friday
  (minus `holidays`) count, and a request made on a non-working day starts the next working
  day at 00:00. Hour targets are elapsed hours.
- Open and `now` later than the due time: overdue, by `now - due` (whole seconds, truncated
  like every other duration here). A closed request met its target when it closed at or
  before the due time.

Datetimes are naive UTC, the map API's storage convention (`naive_utc` converts).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from connect311_contracts.service_levels import ServiceLevels, Target

__all__ = [
    "Due",
    "DueInput",
    "DueSource",
    "DueStatus",
    "due_date",
    "due_status",
    "naive_utc",
    "overdue_event_id",
    "seconds_between",
]


class DueSource(StrEnum):
    """Where a due date came from."""

    FEED = "feed"
    SERVICE_LEVEL = "service_level"


@dataclass(frozen=True)
class DueInput:
    """What the due-date rule reads from a stored request (naive UTC datetimes)."""

    requested_at: datetime
    expected_at: datetime | None
    service_code: str | None
    service_name: str | None
    agency: str | None
    is_open: bool
    closed_at: datetime | None = None


@dataclass(frozen=True)
class Due:
    """A request's due time and its origin; `at` None when no target applies."""

    at: datetime | None
    source: DueSource | None
    target: Target | None = None
    feed_date_ignored: bool = False  # the feed's date was before the request was made


def naive_utc(value: datetime) -> datetime:
    """A datetime as naive UTC (aware ones converted, naive ones taken as UTC already)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


OVERDUE_NAMESPACE = uuid.UUID("8a3d6c0e-2f4b-5e7a-9c1d-311d0e0ad0e0")
"""uuid5 namespace for overdue event ids (fixed forever: ids must be reproducible)."""


def overdue_event_id(service_request_id: str, due_at: datetime) -> str:
    """The one id of a request's overdue event for one due time: the ingestor's event and
    the map API's private-feed entry name the same moment alike."""
    moment = naive_utc(due_at).isoformat(timespec="microseconds")
    return str(uuid.uuid5(OVERDUE_NAMESPACE, f"{service_request_id}\n{moment}"))


def seconds_between(start: datetime, end: datetime) -> int:
    """Whole seconds from `start` to `end`, each truncated to its second first.

    The same rule the map API's SQL recount uses (SQLite's strftime('%s') truncates), so the
    aggregate tables and a direct query always put a request in the same bucket.
    """
    return int((end.replace(microsecond=0) - start.replace(microsecond=0)).total_seconds())


def due_date(item: DueInput, levels: ServiceLevels) -> Due:
    """When the request is due (see the module notes for the order of the rules)."""
    ignored = False
    if item.expected_at is not None:
        if item.expected_at >= item.requested_at:
            return Due(item.expected_at, DueSource.FEED)
        ignored = True
    target = levels.target_for(item.service_code, item.service_name, item.agency)
    if target is None:
        return Due(None, None, None, ignored)
    at = _add(item.requested_at, target, levels)
    return Due(at, DueSource.SERVICE_LEVEL, target, ignored)


@dataclass(frozen=True)
class DueStatus:
    """A request's due date seen from `now`."""

    due: Due
    overdue: bool
    overdue_seconds: int | None  # open and late: how late (else None)
    within_target: bool | None  # closed with a known close time and a target (else None)


def due_status(item: DueInput, levels: ServiceLevels, now: datetime) -> DueStatus:
    """Due date, whether overdue now and by how much, and whether a close met its target."""
    due = due_date(item, levels)
    late: int | None = None
    within: bool | None = None
    if due.at is not None:
        if item.is_open and now > due.at:
            late = seconds_between(due.at, now)
        if not item.is_open and item.closed_at is not None:
            within = item.closed_at <= due.at
    return DueStatus(due, late is not None, late, within)


def _add(requested_at: datetime, target: Target, levels: ServiceLevels) -> datetime:
    if target.hours is not None:
        return requested_at + timedelta(hours=target.hours)
    assert target.days is not None
    local = requested_at.replace(tzinfo=UTC).astimezone(levels.zone).replace(tzinfo=None)
    if target.business_days:
        local = _add_business_days(local, target.days, levels.holidays)
    else:
        local += timedelta(days=target.days)  # wall clock: naive local arithmetic
    return local.replace(tzinfo=levels.zone).astimezone(UTC).replace(tzinfo=None)


def _working(day: date, holidays: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def _add_business_days(local: datetime, days: int, holidays: frozenset[date]) -> datetime:
    day, restarted = _business_day(local.date(), days, holidays)
    return datetime.combine(day, time() if restarted else local.time())


@functools.lru_cache(maxsize=8_192)
def _business_day(start: date, days: int, holidays: frozenset[date]) -> tuple[date, bool]:
    """The date `days` working days after `start`, and whether counting began at the next
    working day's midnight (`start` was a weekend or holiday). Cached: a city's requests
    share a few hundred dates, and a page counts tens of thousands of them."""
    day, restarted = start, False
    while not _working(day, holidays):
        day += timedelta(days=1)
        restarted = True
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if _working(day, holidays):
            counted += 1
    return day, restarted
