"""Builders of contract objects for matcher tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from connect311_contracts.events import (
    RequestClosed,
    RequestEvent,
    RequestOpened,
    RequestReopened,
    RequestUpdated,
)
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import Subscription, SubscriptionStatus

CONFIRMED = datetime(2024, 1, 1, tzinfo=UTC)
LATER = datetime(2024, 6, 1, tzinfo=UTC)
_ids = itertools.count()

EVENT_TYPES: dict[str, type[RequestEvent]] = {  # type: ignore[valid-type]
    "opened": RequestOpened,
    "updated": RequestUpdated,
    "closed": RequestClosed,
    "reopened": RequestReopened,
}


def subscription(target: dict[str, Any], **fields: Any) -> Subscription:
    """An ACTIVE subscription confirmed on CONFIRMED, unless fields say otherwise."""
    values: dict[str, Any] = {
        "subscription_id": f"sub-{next(_ids)}",
        "email": "resident@example.org",
        "target": target,
        "status": SubscriptionStatus.ACTIVE,
        "created_at": CONFIRMED,
        "confirmed_at": CONFIRMED,
    }
    values.update(fields)
    return Subscription.model_validate(values)


def circle(lat: float, lon: float, radius_m: float, **fields: Any) -> Subscription:
    """A circle subscription."""
    return subscription({"kind": "circle", "lat": lat, "long": lon, "radius_m": radius_m}, **fields)


def request(lat: float, lon: float, source_id: str = "1", **fields: Any) -> ServiceRequest:
    """A request made on LATER at a point."""
    values: dict[str, Any] = {
        "service_request_id": f"test:{source_id}",
        "source": "test",
        "source_request_id": source_id,
        "status": "open",
        "raw_status": "Open",
        "lat": lat,
        "long": lon,
        "requested_datetime": LATER,
    }
    values.update(fields)
    return ServiceRequest.model_validate(values)


def event(req: ServiceRequest, kind: str = "opened", **fields: Any) -> RequestEvent:
    """A request event of one kind."""
    cls: Any = EVENT_TYPES[kind]
    result: RequestEvent = cls(request=req, **fields)
    return result
