"""Change detection (pure): did a request really change, and which event says so?

A fingerprint covers the fields that matter to people. Given what we stored last and a new
snapshot, `decide` returns the event to publish (if any) and the state to store after it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connect311_contracts.events import (
    RequestClosed,
    RequestEvent,
    RequestOpened,
    RequestReopened,
    RequestUpdated,
)
from connect311_contracts.request import RequestStatus, ServiceRequest

FINGERPRINT_FIELDS: tuple[str, ...] = (
    "status",
    "raw_status",
    "closed_reason",
    "status_notes",
    "description",
    "address",
    "zipcode",
    "lat",
    "long",
    "dataset",
    "service_code",
    "service_name",
    "agency_responsible",
    "closed_datetime",
    "expected_datetime",
    "media_url",
)
"""Canonical fields whose change is news; `updated_datetime` alone is not."""

EVENT_NAMESPACE = uuid.UUID("6f1c3e5a-3b9e-5d1c-9a43-311c0e7e4e11")
"""uuid5 namespace for request event ids (fixed forever: ids must be reproducible)."""


@dataclass(frozen=True)
class StoredState:
    """What the ingestor remembers about one request after publishing its last event."""

    snapshot: ServiceRequest
    fingerprint: str
    version: int

    @property
    def service_request_id(self) -> str:
        """The request's system-wide id."""
        return self.snapshot.service_request_id


@dataclass(frozen=True)
class Decision:
    """What to do with a snapshot: publish `event` (if any), then store `state` (if any)."""

    event: RequestEvent | None
    state: StoredState | None


NOTHING = Decision(None, None)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        # Coordinates beyond ~1 cm are noise from re-serialisation, not a move.
        return round(value, 7)
    return value


def significant_fields(request: ServiceRequest) -> dict[str, Any]:
    """The fingerprinted fields of a request, in comparable form."""
    return {name: _canonical(getattr(request, name)) for name in FINGERPRINT_FIELDS}


def fingerprint(request: ServiceRequest) -> str:
    """A stable hash of the fields that matter to people."""
    text = json.dumps(significant_fields(request), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def as_of(request: ServiceRequest) -> datetime:
    """When the source last described this request (for ordering out-of-order feeds)."""
    if request.updated_datetime is not None:
        return request.updated_datetime
    return max(request.requested_datetime, request.closed_datetime or request.requested_datetime)


def changed_fields(old: ServiceRequest, new: ServiceRequest) -> tuple[str, ...]:
    """Fingerprinted fields whose values differ, in a fixed order."""
    before, after = significant_fields(old), significant_fields(new)
    return tuple(name for name in FINGERPRINT_FIELDS if before[name] != after[name])


def event_id(service_request_id: str, version: int, print_: str) -> str:
    """A reproducible event id: a re-publish after a crash carries the same id.

    The version (how many events this request had before) keeps a return to an
    earlier state (A -> B -> A) from colliding with the first A.
    """
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{service_request_id}\n{version}\n{print_}"))


def _event_class(
    previous: StoredState | None, new: ServiceRequest
) -> type[RequestOpened | RequestUpdated | RequestClosed | RequestReopened]:
    if previous is None:
        return RequestOpened
    was_closed = previous.snapshot.status is RequestStatus.CLOSED
    is_closed = new.status is RequestStatus.CLOSED
    if is_closed and not was_closed:
        return RequestClosed
    if was_closed and not is_closed:
        return RequestReopened
    return RequestUpdated


def decide(
    previous: StoredState | None,
    new: ServiceRequest,
    *,
    backfill: bool,
    now: datetime,
    trace_id: str | None = None,
    news: bool = False,
) -> Decision:
    """The event (if any) a new snapshot causes, and the state to store once it is published.

    Older snapshots than the stored one are ignored (out-of-order feeds); a newer snapshot
    with the same fingerprint is stored silently so later comparisons use the latest times,
    unless it is `news` (a comment, which is its own timeline entry even if its text
    repeats the previous one; the version keeps its event id distinct).
    """
    print_ = fingerprint(new)
    if previous is not None:
        if as_of(new) < as_of(previous.snapshot):
            return NOTHING
        if print_ == previous.fingerprint and not news:
            if as_of(new) > as_of(previous.snapshot):
                return Decision(None, StoredState(new, print_, previous.version))
            return NOTHING
    version = previous.version if previous else 0
    cls = _event_class(previous, new)
    event = cls(
        event_id=event_id(new.service_request_id, version, print_),
        occurred_at=now,
        trace_id=trace_id,
        request=new,
        previous_status=previous.snapshot.status if previous else None,
        changed_fields=changed_fields(previous.snapshot, new) if previous else (),
        backfill=backfill,
    )
    return Decision(event, StoredState(new, print_, version + 1))
