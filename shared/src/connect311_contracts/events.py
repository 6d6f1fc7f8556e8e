"""Request events: what happened to a service request, each with a full snapshot."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, model_validator

from connect311_contracts.envelope import Envelope
from connect311_contracts.request import RequestStatus, ServiceRequest, UtcDatetime
from connect311_contracts.service_levels import Target

__all__ = [
    "REQUEST_EVENT_ADAPTER",
    "EventKind",
    "RequestClosed",
    "RequestEvent",
    "RequestOpened",
    "RequestOverdue",
    "RequestReopened",
    "RequestUpdated",
]


class EventKind(StrEnum):
    """The kinds of change a subscriber can choose to hear about.

    OVERDUE is asked for, never implied: an empty `event_kinds` filter means the four
    changes (a followed request hears of it too; see the matcher's rules).
    """

    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"
    REOPENED = "reopened"
    OVERDUE = "overdue"


class _RequestEvent(Envelope):
    event_type: str
    request: ServiceRequest
    previous_status: RequestStatus | None = None
    changed_fields: tuple[str, ...] = Field(
        default=(), description="Canonical fields that differ from the previous snapshot"
    )
    backfill: bool = Field(
        default=False, description="From a first import of history: never alert on it"
    )

    @property
    def kind(self) -> EventKind:
        """The subscriber-facing kind of this event."""
        return EventKind(self.event_type.removeprefix("request."))


class RequestOpened(_RequestEvent):
    """A request the system had not seen before."""

    event_type: Literal["request.opened"] = "request.opened"


class RequestUpdated(_RequestEvent):
    """A known request changed (status short of closed, notes, location, ...)."""

    event_type: Literal["request.updated"] = "request.updated"


class RequestClosed(_RequestEvent):
    """A request moved to closed."""

    event_type: Literal["request.closed"] = "request.closed"


class RequestReopened(_RequestEvent):
    """A closed request became open again."""

    event_type: Literal["request.reopened"] = "request.reopened"


class RequestOverdue(_RequestEvent):
    """A request passed its due time while still open (published by the ingestor's clock).

    Once per request per due date, and never if it closed first; its id is derived from
    (request id, due time), so a re-publish or a second instance carries the same id and
    consumers de-duplicate it. `request` is the snapshot it was judged on (where, category,
    department: what matching and the email need); it changes no state. `backfill` marks
    one noticed long after the due time (the ingestor was off, or history was imported): it
    is recorded, never alerted on.
    """

    event_type: Literal["request.overdue"] = "request.overdue"
    service_request_id: str = Field(min_length=3, max_length=300)
    due_datetime: UtcDatetime
    due_source: Literal["feed", "service_level"] = Field(
        description="The feed's own expected_datetime, or the operator's service level"
    )
    target: Target | None = Field(
        default=None, description="The service level missed (None when the feed set the date)"
    )
    overdue_by_s: int = Field(ge=0, description="Whole seconds past due when published")

    @model_validator(mode="after")
    def _same_request(self) -> RequestOverdue:
        if self.service_request_id != self.request.service_request_id:
            raise ValueError("service_request_id must be the snapshot's")
        if (self.due_source == "service_level") != (self.target is not None):
            raise ValueError("a target comes with a service-level due date, and only then")
        return self


RequestEvent = Annotated[
    RequestOpened | RequestUpdated | RequestClosed | RequestReopened | RequestOverdue,
    Field(discriminator="event_type"),
]
REQUEST_EVENT_ADAPTER: TypeAdapter[RequestEvent] = TypeAdapter(RequestEvent)
