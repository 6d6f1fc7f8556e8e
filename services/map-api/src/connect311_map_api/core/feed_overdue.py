"""Overdue entries of a private feed (pure): which stored requests went overdue, when, with
which id, and what their entry says.

The map API stores no `request.overdue` events (the ingestor's clock publishes them), so the
feed derives them from the stored state by the rule every service shares
(`connect311_contracts.due`): a request went overdue at its due time when it was still open
then (open now, or closed later than that). The entry id is the ingestor's event id for the
same request and due time (uuid5, the same namespace), so a re-ingest, a restart or a second
instance gives the same entry, and it is the id the alert email's event carried.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connect311_contracts.due import DueSource, due_date, overdue_event_id
from connect311_contracts.service_levels import ServiceLevels, Target
from connect311_map_api.core.atom import Entry, tag_uri
from connect311_map_api.core.feed_entries import FeedSite, title_of, what_of
from connect311_map_api.core.stored_due import due_input

__all__ = [
    "Late",
    "longest_target",
    "overdue_entry",
    "went_overdue",
]


@dataclass(frozen=True)
class Late:
    """A request that went overdue at `due_at` (naive UTC), with the stored row it came from."""

    due_at: datetime
    event_id: str
    target: Target | None  # None: the feed's own expected date
    row: Mapping[str, Any]

    @property
    def key(self) -> tuple[datetime, str]:
        """Its place in a feed's newest-first order (the cursor's time and key)."""
        return self.due_at, self.event_id

    @property
    def appeared_at(self) -> datetime:
        """When the entry could first be seen: its due time, or the stored change that
        made an already-passed due time known (a late ingest, a new expected date)."""
        stored: datetime = self.row["rank_source_at"]
        return max(self.due_at, stored)


def went_overdue(
    row: Mapping[str, Any], levels: ServiceLevels, until: datetime, since: datetime | None
) -> Late | None:
    """The request's overdue event when its due time is in [since, until) and it was open
    then; None otherwise. `until` is now (or a page's cursor): a due time not yet passed is
    no entry. A closed request counts only with a close time after its due time."""
    due = due_date(due_input(row), levels)
    at = due.at
    if at is None or at >= until or (since is not None and at < since):
        return None
    closed = row["closed_datetime"]
    if row["status"] == "closed" and (closed is None or closed <= at):
        return None
    target = due.target if due.source is DueSource.SERVICE_LEVEL else None
    return Late(at, overdue_event_id(row["service_request_id"], at), target, row)


def longest_target(levels: ServiceLevels) -> timedelta | None:
    """An upper bound of `due - requested` for any due time the service levels give (None:
    the levels give none). Lets a walk by request time stop once no older request can be
    due later than what it has found.

    Business days: N working days span at most 7 * ceil((N + holidays) / 5) + 7 calendar
    days (each full week holds 5 weekdays, every holiday may take one), plus a day for the
    request's time of day, the zone and a clock change.
    """
    targets = [*levels.by_code.values(), *levels.by_name.values(), *levels.by_agency.values()]
    if levels.default is not None:
        targets.append(levels.default)
    longest: timedelta | None = None
    for t in targets:
        if t.hours is not None:
            span = timedelta(hours=t.hours)
        elif t.business_days:
            weeks = math.ceil(((t.days or 0) + len(levels.holidays)) / 5)
            span = timedelta(days=7 * weeks + 8)
        else:
            span = timedelta(days=(t.days or 0) + 1)
        longest = span if longest is None or span > longest else longest
    return longest


def _target_words(target: Target) -> str:
    """'5 days', '3 business days', '4 hours': the email's words for a service level."""
    if target.days is not None:
        unit = "business day" if target.business_days else "day"
        return f"{target.days} {unit}{'' if target.days == 1 else 's'}"
    hours = target.hours or 0.0
    shown = f"{hours:g}"
    return f"{shown} hour{'' if hours == 1 else 's'}"


def overdue_entry(site: FeedSite, late: Late) -> Entry:
    """'Overdue: Pothole at 100 Main St, due Mon 02 Dec 2024', as the overdue email words it:
    what was promised and when. Allow-listed fields only (the request's category, department,
    address and dates), like every other entry."""
    m = late.row
    srid = m["service_request_id"]
    # A day target names the due day; an hour target or the city's own date the time too.
    by_day = late.target is not None and late.target.days is not None
    due = site.local_day(late.due_at) if by_day else site.local(late.due_at)
    named = title_of(m)
    if late.target is not None:
        promise = f"the city's target was {_target_words(late.target)} (due {due})"
    else:
        promise = f"the city expected it done by {due}"
    details = tuple(
        (label, value)
        for label, value in (
            ("Change", "Overdue"),
            ("Due", site.local(late.due_at)),
            ("Target", _target_words(late.target) if late.target else "The city's own date"),
            ("Category", what_of(m)),
            ("Department", m["agency_responsible"]),
            ("Address", m["address"]),
            ("Reported", site.local(m["requested_datetime"])),
            ("Request", srid),
        )
        if value
    )
    return Entry(
        id=tag_uri(site.authority, "event", late.event_id),
        title=f"Overdue: {named}, due {due}",
        updated=late.due_at,
        link=site.request_url(srid),
        summary=f"{named} is now overdue: {promise}.",
        details=details,
        categories=tuple(c for c in (m["service_name"], m["agency_responsible"]) if c),
    )
