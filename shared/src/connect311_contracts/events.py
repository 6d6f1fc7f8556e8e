"""Request events: what happened to a service request, each with a full snapshot."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from connect311_contracts.envelope import Envelope
from connect311_contracts.request import RequestStatus, ServiceRequest

__all__ = [
    "REQUEST_EVENT_ADAPTER",
    "EventKind",
    "RequestClosed",
    "RequestEvent",
    "RequestOpened",
    "RequestReopened",
    "RequestUpdated",
]


class EventKind(StrEnum):
    """The kinds of change a subscriber can choose to hear about."""

    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"
    REOPENED = "reopened"


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


RequestEvent = Annotated[
    RequestOpened | RequestUpdated | RequestClosed | RequestReopened,
    Field(discriminator="event_type"),
]
REQUEST_EVENT_ADAPTER: TypeAdapter[RequestEvent] = TypeAdapter(RequestEvent)
