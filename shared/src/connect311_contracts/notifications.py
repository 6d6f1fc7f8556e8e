"""Commands for the notifier: what to send to whom, and why."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from connect311_contracts.envelope import Envelope
from connect311_contracts.events import RequestEvent
from connect311_contracts.subscriptions import Subscription


class SubscriberMatched(Envelope):
    """The matcher found that a request event concerns a subscription: alert its owner."""

    event_type: Literal["subscriber.matched"] = "subscriber.matched"
    subscription: Subscription
    request_event: RequestEvent
    distance_m: float | None = Field(
        default=None, ge=0, description="From the subscriber's place, where it has one"
    )
    matched_rule: str = Field(
        max_length=500, description="Human-readable reason, e.g. 'within 500 m of Home'"
    )


class ConfirmationRequested(Envelope):
    """A new subscription waits for double opt-in: send its confirmation email."""

    event_type: Literal["subscription.confirmation_requested"] = (
        "subscription.confirmation_requested"
    )
    subscription: Subscription
    confirm_url: str = Field(max_length=2000)
    expires_at: str = Field(description="ISO-8601 UTC time the link stops working")


NotificationCommand = Annotated[
    SubscriberMatched | ConfirmationRequested, Field(discriminator="event_type")
]
NOTIFICATION_ADAPTER: TypeAdapter[NotificationCommand] = TypeAdapter(NotificationCommand)


def recipient_key(email: str) -> str:
    """The Kafka key for one recipient: a hash, so addresses never appear in keys or logs."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
