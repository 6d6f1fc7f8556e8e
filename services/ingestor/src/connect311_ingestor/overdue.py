"""Overdue requests (pure): which stored requests passed their due time, and their events.

The rule is the one every service uses (`connect311_contracts.due`); this module only reads
what it needs from the ingestor's stored snapshots and builds `RequestOverdue` events. The
event id is derived from (request id, due time): a re-publish after a crash, or a second
instance sweeping the same database, carries the same id, and consumers de-duplicate it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connect311_contracts.due import (
    DueInput,
    DueSource,
    DueStatus,
    due_status,
    naive_utc,
    overdue_event_id,
    seconds_between,
)
from connect311_contracts.events import RequestOverdue
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.service_levels import ServiceLevels

__all__ = [
    "Late",
    "due_input",
    "due_input_from_json",
    "late",
    "overdue_event",
    "overdue_event_id",
]


@dataclass(frozen=True)
class Late:
    """An open request past its due time (naive UTC `due_at`, the due rule's convention)."""

    service_request_id: str
    due_at: datetime

    @property
    def key(self) -> tuple[str, datetime]:
        """What `ingestor_overdue_published` records: once per request per due time."""
        return self.service_request_id, self.due_at


def due_input(request: ServiceRequest) -> DueInput:
    """What the due rule reads from a snapshot."""
    return DueInput(
        requested_at=naive_utc(request.requested_datetime),
        expected_at=naive_utc(request.expected_datetime) if request.expected_datetime else None,
        service_code=request.service_code,
        service_name=request.service_name,
        agency=request.agency_responsible,
        is_open=request.status is not RequestStatus.CLOSED,
        closed_at=naive_utc(request.closed_datetime) if request.closed_datetime else None,
    )


def _when(data: Mapping[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    return naive_utc(datetime.fromisoformat(value)) if isinstance(value, str) else None


def due_input_from_json(snapshot: str) -> DueInput:
    """`due_input` of a stored snapshot's JSON, without validating the whole request (a sweep
    reads every open request; the few that are late are validated in full before publishing).
    Raises ValueError (or KeyError) for a snapshot that is not one."""
    data = json.loads(snapshot)
    requested = _when(data, "requested_datetime")
    if requested is None:
        raise ValueError("snapshot without requested_datetime")
    return DueInput(
        requested_at=requested,
        expected_at=_when(data, "expected_datetime"),
        service_code=data.get("service_code"),
        service_name=data.get("service_name"),
        agency=data.get("agency_responsible"),
        is_open=data["status"] != RequestStatus.CLOSED.value,
        closed_at=_when(data, "closed_datetime"),
    )


def late(
    service_request_id: str, item: DueInput, levels: ServiceLevels, now: datetime
) -> tuple[Late, DueStatus] | None:
    """The request's due time and status when it is open and past due at `now`, else None."""
    status = due_status(item, levels, naive_utc(now))
    if not status.overdue or status.due.at is None:
        return None
    return Late(service_request_id, status.due.at), status


def overdue_event(
    request: ServiceRequest, status: DueStatus, now: datetime, alert_window: timedelta
) -> RequestOverdue:
    """The event for a request found late at `now` (aware UTC).

    Noticed more than `alert_window` after its due time (the ingestor was off for long, or
    the request came from imported history), it is published as backfill: on the record,
    never alerted on, since "3 months overdue" is not news to anyone.
    """
    due = status.due
    assert due.at is not None and due.source is not None  # `late` found it past due
    event_id = overdue_event_id(request.service_request_id, due.at)
    late_by = seconds_between(due.at, naive_utc(now))
    return RequestOverdue(
        event_id=event_id,
        occurred_at=now,
        trace_id=uuid.UUID(event_id).hex,  # the same for a re-publish, like the id
        request=request,
        service_request_id=request.service_request_id,
        due_datetime=due.at.replace(tzinfo=UTC),
        due_source="feed" if due.source is DueSource.FEED else "service_level",
        target=due.target,
        overdue_by_s=max(0, late_by),
        backfill=late_by > alert_window.total_seconds(),
    )
