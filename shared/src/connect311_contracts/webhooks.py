"""A subscription's webhook channel, and its signing secret derived from the server's key.

No secret travels on Kafka or sits in a database: the secret of one subscription's webhook
is HMAC-SHA256(server key, subscription id + secret version), computed by the map API (to
show it to its owner once) and by the notifier (to sign), both from the shared
CONNECT311_SECRET_KEY. Rotating a secret raises `secret_version`; for a grace period after
the rotation the notifier signs with the old secret too (Standard Webhooks carries several
signatures), so a receiver can switch over without losing deliveries. Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from connect311_contracts.request import UtcDatetime
from connect311_contracts.webhook_url import MAX_URL_CHARS

__all__ = [
    "ROTATION_GRACE",
    "SECRET_PREFIX",
    "WebhookChannel",
    "WebhookFormat",
    "signing_secrets",
    "url_key",
    "webhook_secret",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the Standard Webhooks format's marker, not a secret
ROTATION_GRACE = timedelta(hours=24)
"""How long the previous secret keeps signing after a rotation (then only the new one)."""
_CONTEXT = b"connect311.webhook-secret"
"""Domain separation: no other HMAC of the server key (link tokens) equals a webhook secret."""


class WebhookFormat(StrEnum):
    """What the receiver understands: our versioned JSON, or a chat app's incoming webhook."""

    STANDARD = "standard"
    SLACK = "slack"
    TEAMS = "teams"


class WebhookChannel(BaseModel):
    """Where a subscription's alerts are POSTed, besides or instead of its emails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=8, max_length=MAX_URL_CHARS, description="https:// receiver")
    format: WebhookFormat = WebhookFormat.STANDARD
    enabled: bool = Field(
        default=True, description="False once the notifier turned it off (410, repeated failures)"
    )
    secret_version: int = Field(default=1, ge=1, description="Raised by each secret rotation")
    rotated_at: UtcDatetime | None = Field(
        default=None, description="When the secret was last rotated (the old one's grace period)"
    )


def webhook_secret(server_key: str, subscription_id: str, version: int) -> str:
    """The `whsec_` secret of one subscription's webhook at one version (32 bytes)."""
    message = b"\x1f".join((_CONTEXT, subscription_id.encode(), str(version).encode()))
    digest = hmac.new(server_key.encode(), message, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode("ascii")


def signing_secrets(
    server_key: str, subscription_id: str, channel: WebhookChannel, now: datetime
) -> list[str]:
    """The secrets to sign with now: the current one, and the previous one in its grace."""
    current = channel.secret_version
    found = [webhook_secret(server_key, subscription_id, current)]
    rotated = channel.rotated_at
    if current > 1 and rotated is not None and now - rotated < ROTATION_GRACE:
        found.append(webhook_secret(server_key, subscription_id, current - 1))
    return found


def url_key(channel: WebhookChannel) -> str:
    """Names one (URL, secret version): verification and failure counts belong to it, so a
    new URL or a rotated secret starts afresh (verified again, no failures)."""
    text = f"{channel.url}\x1f{channel.secret_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]
