"""Webhooks at sign-up and manage: URLs checked as the notifier checks them, the secret shown
once (derived, never stored or published), rotation behind the manage link, and a webhook
the notifier turned off marked off without stopping the alert's emails."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from connect311_contracts.subscriptions import SubscriptionBounced, SubscriptionStatus
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_contracts.webhooks import webhook_secret
from connect311_map_api.db.tables import subscriptions
from tests.unit.map_api.conftest import SECRET, make_client
from tests.unit.map_api.factories import RecordingPublisher

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
HOOK = "https://hooks.example.com/in/T000/B000"


def sign_up(client: TestClient, email: str = "ann@example.com", **extra: object):
    return client.post("/api/subscriptions", json={"email": email, "target": CIRCLE, **extra})


def manage_token(sid: str) -> str:
    return sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)


def test_the_secret_is_shown_once_and_never_published_or_stored(
    client: TestClient, publisher: RecordingPublisher, engine: Engine
) -> None:
    answer = sign_up(client, webhook={"url": HOOK, "format": "slack"}, email_alerts=False)
    assert answer.status_code == 202 and answer.headers["Cache-Control"] == "no-store"
    shown = answer.json()["webhook"]
    (pending,) = publisher.changed
    sid = pending.subscription_id
    assert shown == {
        "subscription_id": sid,
        "secret": webhook_secret(SECRET, sid, 1),
        "secret_version": 1,
    }
    assert pending.webhook is not None and pending.webhook.url == HOOK
    assert pending.webhook.format == "slack" and pending.email_alerts is False
    published = [s.model_dump_json() for s in publisher.changed] + [
        c.model_dump_json() for c in publisher.confirmations
    ]
    with engine.connect() as conn:
        stored = json.dumps([list(r) for r in conn.execute(select(subscriptions))], default=str)
    assert all(shown["secret"] not in text for text in [*published, stored])
    assert "secret" not in sign_up(client, "bob@example.com").json()["message"]
    assert sign_up(client, "bob@example.com").json()["webhook"] is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/in", "scheme"),
        ("https://127.0.0.1/in", "loopback"),
        ("https://10.1.2.3/in", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://localhost/in", "single_label_host"),
        ("https://2130706433/", "non_canonical_ip"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com:8443/", "port_not_allowed"),
    ],
)
def test_a_webhook_url_the_notifier_would_refuse_is_refused_at_sign_up(
    client: TestClient, publisher: RecordingPublisher, url: str, reason: str
) -> None:
    answer = sign_up(client, webhook={"url": url})
    assert answer.status_code == 422 and f"({reason})" in answer.json()["detail"]
    assert publisher.changed == [] and publisher.confirmations == []


def test_webhook_only_alerts_need_a_webhook(client: TestClient) -> None:
    answer = sign_up(client, email_alerts=False)
    assert answer.status_code == 422 and "needs a webhook" in answer.json()["detail"]


def test_the_allow_list_lets_a_local_receiver_in(tmp_path, publisher, signing) -> None:
    url = f"sqlite:///{tmp_path / 'allow.db'}"
    with make_client(url, publisher, signing, webhook_allow=["127.0.0.1:*"]) as client:
        assert sign_up(client, webhook={"url": "http://127.0.0.1:9999/in"}).status_code == 202
        assert sign_up(client, webhook={"url": "http://10.0.0.1:9999/in"}).status_code == 422


def test_rotation_shows_a_new_secret_and_turns_the_webhook_back_on(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    sign_up(client, webhook={"url": HOOK})
    sign_up(client, "zed@example.com")
    mine, theirs = publisher.changed
    sid = mine.subscription_id
    off = SubscriptionBounced(
        subscription_id=sid, reason="410", permanent=True, disable=True, channel="webhook"
    )
    asyncio.run(client.app.state.ctx.service.bounced(off))  # type: ignore[attr-defined]
    turned_off = publisher.changed[-1]
    assert turned_off.webhook is not None and turned_off.webhook.enabled is False
    assert turned_off.status is SubscriptionStatus.PENDING  # the emails are not stopped

    rotate = "/api/subscriptions/webhook/rotate"
    answer = client.post(rotate, params={"token": manage_token(sid)}, json={"subscription_id": sid})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.json() == {
        "subscription_id": sid,
        "secret": webhook_secret(SECRET, sid, 2),
        "secret_version": 2,
    }
    rotated = publisher.changed[-1].webhook
    assert rotated is not None and rotated.enabled and rotated.rotated_at is not None
    listed = client.get("/api/subscriptions/manage", params={"token": manage_token(sid)}).json()
    assert listed["subscriptions"][0]["webhook"] == {
        "url": "https://hooks.example.com/",  # the origin: a Slack-like path is a secret
        "format": "standard",
        "enabled": True,
        "secret_version": 2,
    }
    assert HOOK.endswith("/in/T000/B000") and "/in/T000" not in json.dumps(listed)
    assert "whsec_" not in json.dumps(listed)
    other = {"subscription_id": theirs.subscription_id}
    assert client.post(rotate, params={"token": manage_token(sid)}, json=other).status_code == 403
    no_hook = {"subscription_id": theirs.subscription_id}
    token = manage_token(theirs.subscription_id)
    assert client.post(rotate, params={"token": token}, json=no_hook).status_code == 403
    bad = client.post(rotate, params={"token": "x" * 20}, json={"subscription_id": sid})
    assert bad.status_code == 400
