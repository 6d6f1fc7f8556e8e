"""A department's daily digest, pure: which day it is for, and what it lists (no I/O).

A digest day starts at the configured local hour in the city's zone and lasts until the
next day's: each department digest subscription gets one digest per digest day, at its
start, or (the day it is confirmed) as soon as it is active. The lists are the department's
overdue requests, most late first, and its oldest open requests, oldest first (ties by id),
judged by the one due-date rule every service shares (`connect311_contracts.due`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from connect311_contracts.digests import DigestEntry
from connect311_contracts.due import DueInput, DueStatus, due_status, seconds_between
from connect311_contracts.service_levels import ServiceLevels

__all__ = ["DigestContent", "OpenRequest", "digest_content", "digest_day", "next_digest_start"]


@dataclass(frozen=True)
class OpenRequest:
    """An open request as the digest reads it (naive UTC times, like the stored rows)."""

    service_request_id: str
    service_name: str | None
    address: str | None
    due: DueInput


@dataclass(frozen=True)
class DigestContent:
    """The counts and the two lists, in the order the email shows them."""

    open_count: int
    overdue_count: int
    overdue: tuple[DigestEntry, ...]
    oldest_open: tuple[DigestEntry, ...]


def _start_of(day: date, tz: ZoneInfo, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)


def digest_day(now: datetime, tz: ZoneInfo, hour: int) -> date:
    """The local day whose digest is owed at `now` (aware): the latest start at or before it."""
    day = now.astimezone(tz).date()
    return day if _start_of(day, tz, hour) <= now else day - timedelta(days=1)


def next_digest_start(now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The next digest day's start strictly after `now` (aware UTC)."""
    return _start_of(digest_day(now, tz, hour) + timedelta(days=1), tz, hour)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def digest_content(
    rows: Iterable[OpenRequest], levels: ServiceLevels, now: datetime, items: int
) -> DigestContent:
    """Count the open requests and list the `items` most late and the `items` oldest.

    `now` is naive UTC. Closed rows are ignored (the caller asks for open ones only).
    """
    judged = [(row, due_status(row.due, levels, now)) for row in rows if row.due.is_open]
    late = [j for j in judged if j[1].overdue_seconds is not None]
    late.sort(key=lambda j: (-(j[1].overdue_seconds or 0), j[0].service_request_id))
    judged.sort(key=lambda j: (j[0].due.requested_at, j[0].service_request_id))
    # Only the listed ones become entries: a department may have tens of thousands open.
    return DigestContent(
        open_count=len(judged),
        overdue_count=len(late),
        overdue=tuple(_entry(row, status, now) for row, status in late[:items]),
        oldest_open=tuple(_entry(row, status, now) for row, status in judged[:items]),
    )


def _entry(row: OpenRequest, status: DueStatus, now: datetime) -> DigestEntry:
    due = status.due
    return DigestEntry(
        service_request_id=row.service_request_id,
        service_name=row.service_name,
        address=row.address,
        requested_datetime=_aware(row.due.requested_at),
        age_s=max(0, seconds_between(row.due.requested_at, now)),
        due_datetime=_aware(due.at) if due.at else None,
        due_source=due.source.value if due.source else None,
        target=due.target,
        overdue_by_s=status.overdue_seconds,
    )
