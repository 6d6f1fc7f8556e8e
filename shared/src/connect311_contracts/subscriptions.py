"""Subscriptions: who wants to hear about what, and the events that change them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
    model_validator,
)

from connect311_contracts.envelope import Envelope
from connect311_contracts.events import EventKind
from connect311_contracts.request import Latitude, Longitude, UtcDatetime
from connect311_contracts.webhooks import WebhookChannel

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGE_PATTERN",
    "MAX_CORRIDOR_WIDTH_M",
    "MAX_GEOMETRY_VERTICES",
    "MAX_RADIUS_M",
    "MIN_RADIUS_M",
    "SUBSCRIPTION_BOUNCED_ADAPTER",
    "SUBSCRIPTION_CHANGED_ADAPTER",
    "SUBSCRIPTION_FEEDBACK_ADAPTER",
    "AreaTarget",
    "CircleTarget",
    "CityWideTarget",
    "CorridorTarget",
    "Delivery",
    "DepartmentDigestTarget",
    "FollowTarget",
    "Subscription",
    "SubscriptionBounced",
    "SubscriptionChanged",
    "SubscriptionFeedback",
    "SubscriptionFilters",
    "SubscriptionStatus",
    "SubscriptionTarget",
    "WebhookVerified",
]

MIN_RADIUS_M = 50.0
MAX_RADIUS_M = 10_000.0
MAX_CORRIDOR_WIDTH_M = 2_000.0
MAX_GEOMETRY_VERTICES = 5_000
DEFAULT_LANGUAGE = "en"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Z]{2}|-[0-9]{3})?$"
"""A language tag: 'en', 'es', 'es-US' or 'es-419' (BCP 47 language and optional region).
Which languages exist is the services' business (a catalog each); unknown ones read English."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CircleTarget(_Frozen):
    """Everything reported within `radius_m` metres of a point."""

    kind: Literal["circle"] = "circle"
    lat: Latitude
    long: Longitude
    radius_m: float = Field(ge=MIN_RADIUS_M, le=MAX_RADIUS_M)


class AreaTarget(_Frozen):
    """Everything reported inside a GeoJSON Polygon or MultiPolygon (holes respected)."""

    kind: Literal["area"] = "area"
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, WGS84")

    @model_validator(mode="after")
    def _polygonal(self) -> AreaTarget:
        if self.geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError("area geometry must be a GeoJSON Polygon or MultiPolygon")
        return self


class CorridorTarget(_Frozen):
    """Everything reported within `width_m` metres of a line (a walk, a street)."""

    kind: Literal["corridor"] = "corridor"
    coordinates: tuple[tuple[Longitude, Latitude], ...] = Field(
        min_length=2, max_length=MAX_GEOMETRY_VERTICES, description="GeoJSON order: [long, lat]"
    )
    width_m: float = Field(gt=0, le=MAX_CORRIDOR_WIDTH_M)


class FollowTarget(_Frozen):
    """One request, followed by id (a resident tracking their own report)."""

    kind: Literal["follow"] = "follow"
    service_request_id: str = Field(min_length=3, max_length=300)


class CityWideTarget(_Frozen):
    """Everything in the city that passes the filters (a department's own feed)."""

    kind: Literal["citywide"] = "citywide"


class DepartmentDigestTarget(_Frozen):
    """One department's daily digest of its overdue and oldest open requests.

    Never matched against events: the map API (which holds every request's state) sends it
    once a day as a `DepartmentDigestRequested` command (see docs/architecture.md).
    """

    kind: Literal["department_digest"] = "department_digest"
    agency: str = Field(min_length=1, max_length=200, description="agency_responsible, exactly")


SubscriptionTarget = Annotated[
    CircleTarget
    | AreaTarget
    | CorridorTarget
    | FollowTarget
    | CityWideTarget
    | DepartmentDigestTarget,
    Field(discriminator="kind"),
]


class Delivery(StrEnum):
    """How often a subscriber wants mail."""

    INSTANT = "instant"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriptionStatus(StrEnum):
    """Only ACTIVE subscriptions are ever matched."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    DISABLED = "disabled"


class SubscriptionFilters(_Frozen):
    """Optional narrowing; an empty tuple means 'any'."""

    service_codes: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    event_kinds: tuple[EventKind, ...] = ()


class Subscription(_Frozen):
    """The full current state of one subscription (internal: carries the email address)."""

    subscription_id: str = Field(min_length=1, max_length=100)
    email: str = Field(min_length=3, max_length=320)
    label: str | None = Field(default=None, max_length=200, description="e.g. 'Home'")
    target: SubscriptionTarget
    filters: SubscriptionFilters = SubscriptionFilters()
    delivery: Delivery = Delivery.INSTANT
    status: SubscriptionStatus = SubscriptionStatus.PENDING
    created_at: UtcDatetime
    confirmed_at: UtcDatetime | None = None
    language: str = Field(
        default=DEFAULT_LANGUAGE,
        min_length=2,
        max_length=12,
        pattern=LANGUAGE_PATTERN,
        description="The language the person signed up in: their emails are written in it",
    )
    webhook: WebhookChannel | None = Field(
        default=None, description="Also (or only) POST each alert to this signed webhook"
    )
    email_alerts: bool = Field(
        default=True,
        description="False: alerts go to the webhook only (the confirmation is always emailed)",
    )

    @model_validator(mode="after")
    def _citywide_needs_a_filter(self) -> Subscription:
        f = self.filters
        if self.target.kind == "citywide" and not (f.service_codes or f.agencies or f.datasets):
            raise ValueError("a city-wide subscription needs a category, agency or dataset filter")
        if self.target.kind == "department_digest" and self.delivery is not Delivery.DAILY:
            raise ValueError("a department digest is sent daily: its delivery must be 'daily'")
        if self.target.kind == "department_digest" and self.webhook is not None:
            raise ValueError("a department digest is an email: it takes no webhook")
        if not self.email_alerts and self.webhook is None:
            raise ValueError("a subscription without email alerts needs a webhook")
        return self

    @model_serializer(mode="wrap")
    def _omit_default_language(self, handler: SerializerFunctionWrapHandler) -> Any:
        # English serializes exactly as before the field existed, so a service not yet
        # upgraded (its models forbid unknown fields) still reads every English subscription.
        data = handler(self)
        if self.language == DEFAULT_LANGUAGE and isinstance(data, dict):
            data.pop("language", None)
        # Likewise a subscription without a webhook (the channels came later).
        if isinstance(data, dict):
            if self.webhook is None:
                data.pop("webhook", None)
            if self.email_alerts:
                data.pop("email_alerts", None)
        return data


class SubscriptionChanged(Envelope):
    """The new full state of a subscription (value on the compacted subscriptions topic).

    Deletion is a tombstone (null value) for the same key.
    """

    event_type: Literal["subscription.changed"] = "subscription.changed"
    subscription: Subscription


class SubscriptionBounced(Envelope):
    """The notifier could not deliver to a subscription's address."""

    event_type: Literal["subscription.bounced"] = "subscription.bounced"
    subscription_id: str
    reason: str = Field(max_length=2000)
    permanent: bool
    disable: bool = Field(description="True once hard bounces pass the threshold")
    channel: Literal["email", "webhook"] = Field(
        default="email",
        description="What failed: 'webhook' disables only the subscription's webhook",
    )

    @model_serializer(mode="wrap")
    def _omit_email_channel(self, handler: SerializerFunctionWrapHandler) -> Any:
        # An email bounce serializes as before the field existed (older map APIs forbid it).
        data = handler(self)
        if self.channel == "email" and isinstance(data, dict):
            data.pop("channel", None)
        return data


class WebhookVerified(Envelope):
    """The notifier saw a subscription's webhook work, at `occurred_at`: a standard webhook
    answered the verification handshake, or a Slack or Teams one took its first alert.

    Published once per URL and secret version (again after a rotation), keyed by subscription
    id like a bounce; a redelivery or a restart may publish it again, so a reader keeps the
    latest time. Never the URL (a Slack or Teams URL is itself a secret) nor the secret.
    """

    event_type: Literal["subscription.webhook_verified"] = "subscription.webhook_verified"
    subscription_id: str = Field(min_length=1, max_length=100)
    secret_version: int = Field(
        ge=1, description="The secret it was checked with: a rotation makes an older check stale"
    )


SubscriptionFeedback = Annotated[
    SubscriptionBounced | WebhookVerified, Field(discriminator="event_type")
]
"""What the notifier tells the map API about subscriptions (subscriptions.feedback.v1)."""

SUBSCRIPTION_CHANGED_ADAPTER: TypeAdapter[SubscriptionChanged] = TypeAdapter(SubscriptionChanged)
SUBSCRIPTION_BOUNCED_ADAPTER: TypeAdapter[SubscriptionBounced] = TypeAdapter(SubscriptionBounced)
SUBSCRIPTION_FEEDBACK_ADAPTER: TypeAdapter[SubscriptionFeedback] = TypeAdapter(SubscriptionFeedback)
