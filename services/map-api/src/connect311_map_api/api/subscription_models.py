"""Subscription request and response bodies (sign-up, preview, webhook secret, manage), so the
OpenAPI document says exactly what comes back. Request, stats and ops bodies: `models`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from connect311_contracts.subscriptions import (
    LANGUAGE_PATTERN,
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    AreaTarget,
    Delivery,
    SubscriptionFilters,
    SubscriptionStatus,
    SubscriptionTarget,
)
from connect311_contracts.webhook_url import MAX_URL_CHARS
from connect311_contracts.webhooks import WebhookChannel, WebhookFormat

GEOMETRY_KEYS = frozenset({"type", "coordinates"})
"""The only members an area's GeoJSON geometry may have (an allow-list: nothing else is kept)."""


def plain_geometry(target: SubscriptionTarget) -> SubscriptionTarget:
    """Refuse an area whose geometry carries members besides type and coordinates."""
    if isinstance(target, AreaTarget):
        unknown = sorted(str(key) for key in set(target.geometry) - GEOMETRY_KEYS)
        if unknown:
            raise ValueError(
                f"target.geometry has an unknown member {unknown[0]!r}; send only "
                "'type' and 'coordinates' of a GeoJSON Polygon or MultiPolygon"
            )
    return target


class WebhookSignup(BaseModel):
    """Where a subscription's alerts are POSTed (docs/webhooks.md: payloads, signatures)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=8,
        max_length=MAX_URL_CHARS,
        description="https:// to a public host, port 443 (the receiver's own endpoint)",
    )
    format: WebhookFormat = Field(
        default=WebhookFormat.STANDARD,
        description="`standard` (our signed JSON), or `slack` / `teams` incoming-webhook messages",
    )


class SignupBody(BaseModel):
    """A new subscription; it stays pending until its confirmation link is opened."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    target: SubscriptionTarget
    filters: SubscriptionFilters = SubscriptionFilters()
    delivery: Delivery = Delivery.INSTANT
    label: str | None = Field(default=None, max_length=200)
    language: str | None = Field(
        default=None,
        min_length=2,
        max_length=12,
        pattern=LANGUAGE_PATTERN,
        description="The page's language ('en', 'es'): the emails are written in it. Without "
        "it (or for a language the site lacks) the request's cookie or Accept-Language decides",
    )
    webhook: WebhookSignup | None = Field(
        default=None, description="Also POST each alert, signed, to this receiver"
    )
    email_alerts: bool = Field(
        default=True,
        description="False: alerts go to the webhook only (the confirmation is still emailed)",
    )

    _plain_geometry = field_validator("target")(plain_geometry)


class WebhookRotate(BaseModel):
    """Which of the manage link owner's subscriptions gets a new webhook secret."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=100)


class WebhookSecret(BaseModel):
    """A webhook's signing secret: shown in this answer only, never again (rotate to replace)."""

    subscription_id: str
    secret: str = Field(description="`whsec_...`: verify `webhook-signature` with it")
    secret_version: int


class Accepted(BaseModel):
    """The same answer for every accepted sign-up (plus its webhook's secret, if it has one)."""

    message: str
    webhook: WebhookSecret | None = None


class ManagedWebhook(BaseModel):
    """A subscription's webhook, as its owner sees it (never its secret)."""

    url: str
    format: WebhookFormat
    enabled: bool = Field(description="False once turned off after repeated failures or a 410")
    secret_version: int
    verified_at: datetime | None = Field(
        default=None,
        description="When the notifier last saw it work with the current secret (a standard "
        "webhook's verification handshake, a Slack or Teams webhook's first delivered alert); "
        "null: not checked yet (it is checked before its first alert, and after a rotation)",
    )

    @classmethod
    def seen(
        cls, hook: WebhookChannel | None, verified_at: datetime | None = None
    ) -> ManagedWebhook | None:
        """What the manage page may see of a webhook: its origin, never the path or query (a
        Slack or Teams URL is itself the secret that lets anyone post to the channel)."""
        if hook is None:
            return None
        parts = urlsplit(hook.url)
        return cls(
            url=f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/",
            format=hook.format,
            enabled=hook.enabled,
            secret_version=hook.secret_version,
            verified_at=verified_at,
        )


class PreviewBody(BaseModel):
    """A proposed subscription's target and filters."""

    model_config = ConfigDict(extra="forbid")

    target: SubscriptionTarget
    filters: SubscriptionFilters = SubscriptionFilters()

    _plain_geometry = field_validator("target")(plain_geometry)


class WeekCount(BaseModel):
    """Alerts in one week (starting Monday)."""

    week: str
    alerts: int


class Preview(BaseModel):
    """How many alerts the subscription would have produced over the data present (<= 90 days)."""

    days: int = Field(description="The longest history a preview looks at (90 days)")
    history_days: float = Field(
        description="Days of data actually counted: from the city's first request, at most 90"
    )
    short_history: bool = Field(description="True when fewer than 90 days of data exist")
    since: str | None
    until: str | None
    total: int
    per_week_average: float
    weeks: list[WeekCount]


class FollowedRequest(BaseModel):
    """The request a follow alert names, as a person recognises it (no reporter data)."""

    service_request_id: str
    service_name: str | None
    address: str | None
    status: str


class ManagedSubscription(BaseModel):
    """One of the token owner's subscriptions (no address shown)."""

    subscription_id: str
    label: str | None
    target: SubscriptionTarget
    filters: SubscriptionFilters
    delivery: Delivery
    status: SubscriptionStatus
    created_at: datetime
    confirmed_at: datetime | None
    followed: FollowedRequest | None = Field(
        default=None, description="For a followed request: what and where it is"
    )
    webhook: ManagedWebhook | None = None
    email_alerts: bool = True


class ManageList(BaseModel):
    """The subscriptions of the address a manage link belongs to."""

    subscriptions: list[ManagedSubscription]


class ManageAction(BaseModel):
    """A change to one of the owner's subscriptions."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=100)
    action: Literal["set_delivery", "unsubscribe", "resume", "edit", "delete"] = Field(
        description="`unsubscribe` pauses (no emails) and `resume` turns it back on; `edit` "
        "changes the place (`lat` and `long`) and `radius_m` of a circle alert and/or `filters`"
    )
    delivery: Delivery | None = None
    radius_m: float | None = Field(
        default=None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M, description="New radius (edit)"
    )
    filters: SubscriptionFilters | None = Field(default=None, description="New filters (edit)")
    lat: float | None = Field(
        default=None, ge=-90, le=90, description="New place (edit a circle alert; with `long`)"
    )
    long: float | None = Field(
        default=None, ge=-180, le=180, description="New place (edit a circle alert; with `lat`)"
    )
