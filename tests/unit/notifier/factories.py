"""Builders for notifier tests: subscriptions, request events and commands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from connect311_contracts.events import RequestClosed, RequestEvent, RequestOpened, RequestUpdated
from connect311_contracts.notifications import ConfirmationRequested, SubscriberMatched
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.subscriptions import (
    CircleTarget,
    Delivery,
    FollowTarget,
    Subscription,
    SubscriptionStatus,
)
from connect311_contracts.webhooks import WebhookChannel, WebhookFormat

T0 = datetime(2024, 5, 6, 14, 30, tzinfo=UTC)


def subscription(
    *,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    delivery: Delivery = Delivery.INSTANT,
    follow: str | None = None,
    email: str | None = None,
    label: str | None = "Home",
    subscription_id: str | None = None,
) -> Subscription:
    target: Any = (
        FollowTarget(service_request_id=follow)
        if follow
        else CircleTarget(lat=27.77, long=-82.64, radius_m=500)
    )
    sub_id = subscription_id or f"sub-{uuid.uuid4().hex[:10]}"
    return Subscription(
        subscription_id=sub_id,
        email=email or f"{sub_id}@example.org",
        label=label,
        target=target,
        delivery=delivery,
        status=status,
        created_at=T0 - timedelta(days=3),
        confirmed_at=None if status is SubscriptionStatus.PENDING else T0 - timedelta(days=2),
    )


def request(
    source_id: str | None = None,
    *,
    status: RequestStatus = RequestStatus.OPEN,
    description: str | None = "Pothole in the right lane",
    notes: str | None = None,
    agency: str | None = "Public Works",
    address: str | None = "100 Central Ave",
) -> ServiceRequest:
    sid = source_id or uuid.uuid4().hex[:12]
    return ServiceRequest(
        service_request_id=f"stpete:{sid}",
        source="stpete",
        source_request_id=sid,
        service_code="POT",
        service_name="Pothole",
        agency_responsible=agency,
        status=status,
        raw_status=status.value,
        status_notes=notes,
        description=description,
        address=address,
        lat=27.771,
        long=-82.641,
        requested_datetime=T0,
        updated_datetime=T0 + timedelta(hours=1),
        closed_datetime=T0 + timedelta(hours=2) if status is RequestStatus.CLOSED else None,
    )


def event(
    req: ServiceRequest, kind: str = "opened", previous: RequestStatus | None = None, **kw: Any
) -> RequestEvent:
    cls = {"opened": RequestOpened, "updated": RequestUpdated, "closed": RequestClosed}[kind]
    event_id = kw.pop("event_id", f"ev-{uuid.uuid4().hex[:12]}")
    return cls(request=req, previous_status=previous, event_id=event_id, **kw)  # type: ignore[no-any-return]


def matched(
    sub: Subscription | None = None,
    ev: RequestEvent | None = None,
    *,
    distance_m: float | None = 230.0,
    rule: str = "within 500 m of Home",
) -> SubscriberMatched:
    return SubscriberMatched(
        subscription=sub or subscription(),
        request_event=ev or event(request()),
        distance_m=distance_m,
        matched_rule=rule,
    )


def confirmation(
    sub: Subscription | None = None, *, expires_in: timedelta = timedelta(hours=48)
) -> ConfirmationRequested:
    sub = sub or subscription(status=SubscriptionStatus.PENDING)
    return ConfirmationRequested(
        subscription=sub,
        confirm_url=f"http://localhost:8000/api/subscriptions/confirm?token=tok-{sub.subscription_id}",
        expires_at=(datetime.now(UTC) + expires_in).isoformat(),
    )


def with_webhook(
    sub: Subscription, url: str, *, email_alerts: bool = True, fmt: str = "standard"
) -> Subscription:
    """The subscription with a webhook channel (and, optionally, no email alerts)."""
    channel = WebhookChannel(url=url, format=WebhookFormat(fmt))
    return sub.model_copy(update={"webhook": channel, "email_alerts": email_alerts})
