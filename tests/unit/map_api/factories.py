"""Builders for request events and a recording publisher used by map API tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord

from connect311_contracts.events import (
    RequestClosed,
    RequestEvent,
    RequestOpened,
    RequestReopened,
    RequestUpdated,
)
from connect311_contracts.notifications import ConfirmationRequested
from connect311_contracts.rejects import MessageDeadLettered
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.subscriptions import Subscription
from tests.kafka_records import fetched

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EVENT_TYPES = {
    "opened": RequestOpened,
    "updated": RequestUpdated,
    "closed": RequestClosed,
    "reopened": RequestReopened,
}


def snapshot(
    source_id: str,
    *,
    status: RequestStatus = RequestStatus.OPEN,
    lat: float = 27.77,
    long: float = -82.64,
    opened: datetime = T0,
    updated: datetime | None = None,
    notes: str | None = None,
    code: str | None = "POT",
    name: str | None = "Pothole",
    agency: str = "Streets",
    dataset: str = "311",
    description: str | None = "A hole in the road",
    source: str = "test",
) -> ServiceRequest:
    """A valid request snapshot."""
    closed = (updated or opened) if status is RequestStatus.CLOSED else None
    return ServiceRequest(
        service_request_id=f"{source}:{source_id}",
        source=source,
        source_request_id=source_id,
        dataset=dataset,
        service_code=code,
        service_name=name,
        agency_responsible=agency,
        status=status,
        raw_status=status.value.upper(),
        status_notes=notes,
        description=description,
        address="100 Central Ave",
        lat=lat,
        long=long,
        requested_datetime=opened,
        updated_datetime=updated,
        closed_datetime=closed,
    )


def event(
    kind: str,
    request: ServiceRequest,
    *,
    occurred: datetime | None = None,
    event_id: str | None = None,
    previous: RequestStatus | None = None,
) -> RequestEvent:
    """A request event of the given kind (opened/updated/closed/reopened)."""
    kwargs: dict[str, Any] = {"request": request, "previous_status": previous}
    if occurred is not None:
        kwargs["occurred_at"] = occurred
    if event_id is not None:
        kwargs["event_id"] = event_id
    result: RequestEvent = EVENT_TYPES[kind](**kwargs)
    return result


def lifecycle(source_id: str, **kw: Any) -> list[RequestEvent]:
    """Opened, updated (in progress, with notes) and closed events of one request."""
    opened = event("opened", snapshot(source_id, **kw), occurred=T0)
    progress = snapshot(
        source_id,
        status=RequestStatus.IN_PROGRESS,
        updated=T0 + timedelta(days=1),
        notes="Crew assigned",
        **kw,
    )
    updated = event(
        "updated", progress, occurred=T0 + timedelta(days=1), previous=RequestStatus.OPEN
    )
    done = snapshot(
        source_id,
        status=RequestStatus.CLOSED,
        updated=T0 + timedelta(days=2, hours=5),
        notes="Filled",
        **kw,
    )
    closed = event(
        "closed",
        done,
        occurred=T0 + timedelta(days=2, hours=5),
        previous=RequestStatus.IN_PROGRESS,
    )
    return [opened, updated, closed]


@dataclass
class RecordingPublisher:
    """Stands in for the Kafka publisher in API tests (one integration test uses Kafka)."""

    changed: list[Subscription] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    confirmations: list[ConfirmationRequested] = field(default_factory=list)
    letters: list[MessageDeadLettered] = field(default_factory=list)

    async def subscription_changed(self, sub: Subscription) -> None:
        self.changed.append(sub)

    async def subscription_deleted(self, subscription_id: str) -> None:
        self.deleted.append(subscription_id)

    async def confirmation_requested(self, command: ConfirmationRequested) -> None:
        self.confirmations.append(command)

    async def dead_letter(self, letter: MessageDeadLettered) -> None:
        self.letters.append(letter)

    async def healthy(self) -> bool:
        return True


def record(topic: str, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    """A fetched record of partition 0, as a consumer's handler gets it."""
    return fetched(topic, 0, offset, value)
