"""What a feed entry says about a request or one change of it (pure).

Allow-list: category, department, dataset, address, status, the city's notes and dates.
Never the reporter's description, contact details or photo, and never a subscriber's
address or label: the author of every entry is the city.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from connect311_contracts.status_words import STATUS_WORDS, resident_status
from connect311_map_api.core.atom import Entry, tag_uri

__all__ = [
    "EVENT_WORDS",
    "NOTES_MAX",
    "FeedSite",
    "event_entry",
    "request_entry",
    "title_of",
    "what_of",
]

EVENT_WORDS = {
    "request.opened": "New request",
    "request.updated": "Updated",
    "request.closed": "Closed",
    "request.reopened": "Reopened",
    "request.overdue": "Overdue",
}
"""The words alert emails use for each kind of change."""
NOTES_MAX = 500
"""Longest city's notes an entry carries (as digests clip theirs)."""


@dataclass(frozen=True)
class FeedSite:
    """Where the feeds live and who speaks in them."""

    base_url: str
    author: str
    time_zone: ZoneInfo

    @property
    def authority(self) -> str:
        """The host of the public base URL: the tag URIs' authority."""
        rest = self.base_url.split("://", 1)[-1]
        return rest.split("/", 1)[0].split(":", 1)[0] or "localhost"

    def url(self, path: str) -> str:
        """An absolute URL on the public site (never built from the request's Host header)."""
        return self.base_url.rstrip("/") + path

    def request_url(self, service_request_id: str) -> str:
        """The request's page, as alert emails link it."""
        return self.url(f"/requests/{quote(service_request_id, safe='')}")

    def local(self, moment: datetime | None) -> str | None:
        """A stored (naive UTC) time in the city's zone, as pages and emails show it."""
        if moment is None:
            return None
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return aware.astimezone(self.time_zone).strftime("%a %d %b %Y, %H:%M %Z")

    def local_day(self, moment: datetime) -> str:
        """The day of a stored (naive UTC) time in the city's zone: 'Mon 02 Dec 2024'."""
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return aware.astimezone(self.time_zone).strftime("%a %d %b %Y")


def _clip(text: str | None) -> str | None:
    if not text:
        return None
    text = " ".join(text.split())
    return text if len(text) <= NOTES_MAX else text[: NOTES_MAX - 1].rstrip() + "…"


def what_of(m: Mapping[str, Any]) -> str:
    """What a request is: its category, else its code, else "Service request"."""
    return str(m["service_name"] or m["service_code"] or "Service request")


def title_of(m: Mapping[str, Any]) -> str:
    """'Pothole at 100 Main St' (the category alone without an address)."""
    address = m["address"]
    return f"{what_of(m)} at {address}" if address else what_of(m)


def _rows(pairs: list[tuple[str, str | None]]) -> tuple[tuple[str, str], ...]:
    return tuple((label, value) for label, value in pairs if value)


def request_entry(site: FeedSite, m: Mapping[str, Any]) -> Entry:
    """A request's current state; a new id for every change (request + change time)."""
    srid = m["service_request_id"]
    changed: datetime = m["rank_source_at"]
    status = resident_status(m["status"], m["closed_reason"], m["raw_status"])
    reported = site.local(m["requested_datetime"])
    summary = f"{status}. Reported {reported}; last changed {site.local(changed)}."
    details = _rows(
        [
            ("Status", status),
            ("Category", what_of(m)),
            ("Department", m["agency_responsible"]),
            ("Dataset", m["dataset"]),
            ("Address", m["address"]),
            ("City's notes", _clip(m["status_notes"])),
            ("Reported", reported),
            ("Closed", site.local(m["closed_datetime"])),
            ("Expected", site.local(m["expected_datetime"])),
            ("Request", srid),
        ]
    )
    return Entry(
        id=tag_uri(site.authority, "request", srid, changed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        title=title_of(m),
        updated=changed,
        published=m["requested_datetime"],
        link=site.request_url(srid),
        summary=summary,
        details=details,
        categories=tuple(c for c in (m["service_name"], m["agency_responsible"]) if c),
    )


def event_entry(site: FeedSite, m: Mapping[str, Any]) -> Entry:
    """One recorded change (a history row joined with its request), id from the event id.

    Event ids are reproducible (the ingestor derives them from the request and its version),
    so a replayed or re-ingested change keeps its entry id.
    """
    srid = m["service_request_id"]
    kind = EVENT_WORDS.get(m["event_type"], "Changed")
    status = STATUS_WORDS.get(m["status"], str(m["status"]).replace("_", " ").capitalize())
    previous = m["previous_status"]
    moved = f"{STATUS_WORDS.get(previous, previous)} → {status}" if previous else status
    notes = _clip(m["status_notes"])
    summary = f"{kind}: {moved}." + (f" City's notes: {notes}" if notes else "")
    details = _rows(
        [
            ("Change", kind),
            ("Status", moved),
            ("City's notes", notes),
            ("Category", what_of(m)),
            ("Department", m["agency_responsible"]),
            ("Address", m["address"]),
            ("Changed", site.local(m["source_at"])),
            ("Reported", site.local(m["requested_datetime"])),
            ("Request", srid),
        ]
    )
    return Entry(
        id=tag_uri(site.authority, "event", m["event_id"]),
        title=f"{kind}: {title_of(m)}",
        updated=m["source_at"],
        link=site.request_url(srid),
        summary=summary,
        details=details,
        categories=tuple(c for c in (m["service_name"], m["agency_responsible"]) if c),
    )
