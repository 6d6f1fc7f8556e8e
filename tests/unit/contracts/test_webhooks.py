"""The webhook channel in the subscription contract, and its derived signing secrets."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from connect311_contracts.subscriptions import (
    SUBSCRIPTION_FEEDBACK_ADAPTER,
    Subscription,
    SubscriptionBounced,
    WebhookVerified,
)
from connect311_contracts.webhooks import (
    ROTATION_GRACE,
    WebhookChannel,
    signing_secrets,
    url_key,
    webhook_secret,
)
from connect311_notifier.webhook_signing import sign, verify
from tests.unit.notifier.factories import subscription, with_webhook

NOW = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def test_a_secret_is_derived_per_subscription_and_version_and_signs() -> None:
    secret = webhook_secret("key", "sub-1", 1)
    assert secret == webhook_secret("key", "sub-1", 1)  # the map API and notifier agree
    others = {
        webhook_secret("key", "sub-1", 2),
        webhook_secret("key", "sub-2", 1),
        webhook_secret("other-key", "sub-1", 1),
    }
    assert secret not in others and len(others) == 3
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}
    headers["webhook-signature"] = sign(secret, "msg_1", 1700000000, b"{}")
    assert verify(secret, headers, b"{}", now=1700000000) == "msg_1"


def test_the_old_secret_signs_too_during_the_grace_period_only() -> None:
    rotated = WebhookChannel(url="https://h.example.com/", secret_version=3, rotated_at=NOW)
    new, old = webhook_secret("k", "s", 3), webhook_secret("k", "s", 2)
    assert signing_secrets("k", "s", rotated, NOW + timedelta(hours=1)) == [new, old]
    assert signing_secrets("k", "s", rotated, NOW + ROTATION_GRACE) == [new]
    assert signing_secrets("k", "s", WebhookChannel(url="https://h.example.com/"), NOW) == [
        webhook_secret("k", "s", 1)
    ]


def test_a_new_url_or_secret_version_is_a_new_url_key() -> None:
    channel = WebhookChannel(url="https://h.example.com/a")
    assert url_key(channel) == url_key(channel.model_copy())
    assert url_key(channel) != url_key(
        channel.model_copy(update={"url": "https://h.example.com/b"})
    )
    assert url_key(channel) != url_key(channel.model_copy(update={"secret_version": 2}))


def test_a_subscription_without_a_webhook_serializes_as_before() -> None:
    plain = json.loads(subscription().model_dump_json())
    assert "webhook" not in plain and "email_alerts" not in plain
    hooked = with_webhook(subscription(), "https://h.example.com/in", email_alerts=False)
    data = json.loads(hooked.model_dump_json())
    assert data["webhook"]["url"] == "https://h.example.com/in" and data["email_alerts"] is False
    assert Subscription.model_validate_json(hooked.model_dump_json()) == hooked
    assert "whsec_" not in json.dumps(data)  # the secret is derived, never carried


def test_alerts_need_somewhere_to_go() -> None:
    data = json.loads(subscription().model_dump_json()) | {"email_alerts": False}
    with pytest.raises(ValidationError, match="needs a webhook"):
        Subscription.model_validate(data)


def test_an_email_bounce_serializes_as_before_and_a_webhook_one_names_its_channel() -> None:
    email = SubscriptionBounced(subscription_id="s", reason="550", permanent=True, disable=True)
    assert "channel" not in json.loads(email.model_dump_json())
    hook = email.model_copy(update={"channel": "webhook"})
    again = SubscriptionBounced.model_validate_json(hook.model_dump_json())
    assert again.channel == "webhook"


def test_a_verified_webhook_round_trips_on_the_feedback_topic_without_its_url() -> None:
    sub = with_webhook(subscription(), "https://hooks.example.com/in/T000/B000", fmt="slack")
    checked = WebhookVerified(subscription_id=sub.subscription_id, secret_version=2)
    wire = checked.model_dump_json()
    data = json.loads(wire)
    assert data["event_type"] == "subscription.webhook_verified" and data["schema_version"] == 1
    assert data["occurred_at"].endswith("Z") and data["secret_version"] == 2
    assert "hooks.example.com" not in wire and "url" not in data and "secret" not in data
    again = SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(wire)
    assert isinstance(again, WebhookVerified) and again == checked
    assert again.occurred_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError):  # frozen
        again.secret_version = 3  # type: ignore[misc]
    # A bounce still reads as a bounce through the same adapter; anything else is refused.
    bounce = SubscriptionBounced(subscription_id="s", reason="550", permanent=True, disable=True)
    assert SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(bounce.model_dump_json()) == bounce
    with pytest.raises(ValidationError):
        SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(json.dumps(data | {"url": "https://x/"}))
    with pytest.raises(ValidationError):
        SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(json.dumps(data | {"event_type": "nope"}))
    with pytest.raises(ValidationError):  # a time without its zone is not UTC
        naive = data | {"occurred_at": "2024-05-06T12:00:00"}
        SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(json.dumps(naive))
