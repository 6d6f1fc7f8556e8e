"""Webhooks at sign-up and manage: URLs checked as the notifier checks them, the secret shown
once (derived, never stored or published), rotation behind the manage link, and a webhook
the notifier turned off marked off without stopping the alert's emails, and the notifier's
word that a webhook works (WebhookVerified) kept for the manage page."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import ConsumerRecord
from fastapi.testclient import TestClient
from sqlalchemy import Column, Engine, MetaData, Table, func, inspect, select

from connect311_bus.kafka import encode
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import (
    SubscriptionBounced,
    SubscriptionStatus,
    WebhookVerified,
)
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_contracts.webhooks import webhook_secret
from connect311_map_api.consumers import FeedbackConsumer
from connect311_map_api.db import subscription_store as store
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.tables import dead_letters, subscriptions
from connect311_map_api.metrics import Metrics
from tests.unit.map_api.conftest import SECRET, make_client
from tests.unit.map_api.factories import RecordingPublisher, record
from tests.unit.notifier.factories import subscription, with_webhook

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
        "verified_at": None,
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


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return record("subscriptions.feedback.v1", offset, value)


def test_the_feedback_consumer_keeps_the_latest_check_of_the_current_secret(
    client: TestClient, publisher: RecordingPublisher, engine: Engine
) -> None:
    sign_up(client, webhook={"url": HOOK, "format": "slack"})
    sid = publisher.changed[-1].subscription_id
    service = client.app.state.ctx.service  # type: ignore[attr-defined]
    metrics = Metrics()
    feedback = FeedbackConsumer(
        KafkaSettings(), "g", engine=engine, publisher=publisher, metrics=metrics, service=service
    )
    manage = "/api/subscriptions/manage"

    def seen() -> object:
        listed = client.get(manage, params={"token": manage_token(sid)}).json()
        return listed["subscriptions"][0]["webhook"]["verified_at"]

    def feed(*values: bytes) -> None:
        asyncio.run(feedback._handle([_record(i, v) for i, v in enumerate(values)]))

    def check(version: int, at: datetime) -> bytes:
        return encode(WebhookVerified(subscription_id=sid, secret_version=version, occurred_at=at))

    assert seen() is None  # not checked yet
    first = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    bounce = SubscriptionBounced(
        subscription_id="someone-else", reason="x", permanent=False, disable=False
    )
    nobody = WebhookVerified(subscription_id="no-such-subscription", secret_version=1)
    feed(
        check(1, first),
        b'{"event_type": "subscription.webhook_verified", "subscription_id": "'
        + sid.encode()
        + b'"}',
        b'{"event_type": "subscription.renamed", "subscription_id": "s"}',
        check(1, first - timedelta(hours=1)),  # a redelivered older one: the latest is kept
        encode(bounce),
        encode(nobody),
    )
    assert seen() == "2026-03-01T12:30:00Z"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dead_letters)).scalar() == 2
    assert [letter.offset for letter in publisher.letters] == [1, 2]
    verified = metrics.feedback.labels("verified")._value.get()  # type: ignore[attr-defined]
    assert verified == 1

    # A rotation: the new secret is unchecked, and a check of the old one (read late) is stale.
    rotate = "/api/subscriptions/webhook/rotate"
    answer = client.post(rotate, params={"token": manage_token(sid)}, json={"subscription_id": sid})
    assert answer.status_code == 200 and seen() is None
    feed(check(1, first + timedelta(days=1)))
    assert seen() is None
    feed(check(2, first + timedelta(days=2)))
    assert seen() == "2026-03-03T12:30:00Z"
    # The check is the map API's own record: nothing is published about it.
    assert len(publisher.changed) == 2  # the sign-up and the rotation only


def test_a_database_from_before_the_checks_gains_their_columns(sqlite_url: str) -> None:
    older = MetaData()
    kept = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in subscriptions.columns
        if not c.name.startswith("webhook_verified")
    ]
    old_table = Table("subscriptions", older, *kept)
    engine = make_engine(sqlite_url)
    older.create_all(engine)
    sub = with_webhook(subscription(), HOOK)
    with engine.begin() as conn:
        conn.execute(old_table.insert(), store.to_row(sub))
    create_schema(engine)  # what the map API runs at start-up
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with engine.begin() as conn:
        present = {c["name"] for c in inspect(conn).get_columns("subscriptions")}
        assert {"webhook_verified_at", "webhook_verified_version"} <= present
        assert store.webhook_checks(conn, [sub]) == {}  # the old row: not checked yet
        assert store.record_webhook_check(conn, sub.subscription_id, 1, at)
        assert store.webhook_checks(conn, [sub]) == {sub.subscription_id: at}
    engine.dispose()
