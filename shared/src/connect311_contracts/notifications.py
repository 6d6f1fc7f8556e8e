"""Commands for the notifier: what to send to whom, and why."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from connect311_contracts.digests import DepartmentDigestRequested
from connect311_contracts.envelope import Envelope
from connect311_contracts.events import RequestEvent
from connect311_contracts.subscriptions import Subscription

__all__ = [
    "NOTIFICATION_ADAPTER",
    "NOTIFICATION_DEAD_LETTER_ADAPTER",
    "AlsoMatched",
    "ConfirmationRequested",
    "DepartmentDigestRequested",
    "NotificationCommand",
    "NotificationDeadLettered",
    "SubscriberMatched",
    "recipient_key",
]

MAX_ALSO_MATCHED = 50
"""More subscriptions of one person matching one event than this is abuse, not a use case."""


class AlsoMatched(BaseModel):
    """Another subscription of the same person that the same event matched, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subscription: Subscription
    distance_m: float | None = Field(default=None, ge=0)
    matched_rule: str = Field(max_length=500)


class SubscriberMatched(Envelope):
    """The matcher found that a request event concerns a subscription: alert its owner.

    One command per (request event, recipient): `subscription` is the primary match (its
    List-Unsubscribe), `also` the same person's other subscriptions the event matched, so
    the person gets one email listing every reason (empty from older matchers).
    """

    event_type: Literal["subscriber.matched"] = "subscriber.matched"
    subscription: Subscription
    request_event: RequestEvent
    distance_m: float | None = Field(
        default=None, ge=0, description="From the subscriber's place, where it has one"
    )
    matched_rule: str = Field(
        max_length=500, description="Human-readable reason, e.g. 'within 500 m of Home'"
    )
    also: tuple[AlsoMatched, ...] = Field(
        default=(),
        max_length=MAX_ALSO_MATCHED,
        description="The same recipient's other subscriptions this event matched",
    )

    @model_serializer(mode="wrap")
    def _omit_empty_also(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A single match serializes exactly as before the field existed, so notifiers not
        # yet upgraded still read it (they reject only merged commands: upgrade them first).
        data = handler(self)
        if not self.also and isinstance(data, dict):
            data.pop("also", None)
        return data

    def parts(self) -> list[SubscriberMatched]:
        """One single-subscription command per match, primary first (same event_id)."""
        if not self.also:
            return [self]
        first = self.model_copy(update={"also": ()})
        return [first] + [
            first.model_copy(
                update={
                    "subscription": a.subscription,
                    "distance_m": a.distance_m,
                    "matched_rule": a.matched_rule,
                }
            )
            for a in self.also
        ]


class ConfirmationRequested(Envelope):
    """A new subscription waits for double opt-in: send its confirmation email."""

    event_type: Literal["subscription.confirmation_requested"] = (
        "subscription.confirmation_requested"
    )
    subscription: Subscription
    confirm_url: str = Field(max_length=2000)
    expires_at: str = Field(description="ISO-8601 UTC time the link stops working")


NotificationCommand = Annotated[
    SubscriberMatched | ConfirmationRequested | DepartmentDigestRequested,
    Field(discriminator="event_type"),
]
NOTIFICATION_ADAPTER: TypeAdapter[NotificationCommand] = TypeAdapter(NotificationCommand)


class NotificationDeadLettered(Envelope):
    """Value on notifications.deadletter.v1 (key: recipient_key): never delivered, and why."""

    event_type: Literal["notification.dead_lettered"] = "notification.dead_lettered"
    email_kind: str
    subscription_id: str
    reason: str = Field(max_length=2000)
    smtp_code: int | None = None
    attempts: int
    commands: list[NotificationCommand]


NOTIFICATION_DEAD_LETTER_ADAPTER: TypeAdapter[NotificationDeadLettered] = TypeAdapter(
    NotificationDeadLettered
)


def recipient_key(email: str) -> str:
    """The Kafka key for one recipient: a hash, so addresses never appear in keys or logs."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
