"""The webhook loop's decisions, with a scripted client: the handshake before a URL's first
delivery, secrets derived per subscription, the payload's shape, and turning a webhook off
(410) with its dead letter, SubscriptionBounced and the owner's email. One case uses the
real client, to show a URL whose name now points inside is refused at send time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from connect311_contracts.notifications import (
    NOTIFICATION_DEAD_LETTER_ADAPTER,
    NotificationCommand,
    recipient_key,
)
from connect311_contracts.subscriptions import (
    SUBSCRIPTION_BOUNCED_ADAPTER,
    SUBSCRIPTION_FEEDBACK_ADAPTER,
    WebhookVerified,
)
from connect311_contracts.topics import NOTIFICATIONS_DEAD, SUBSCRIPTION_FEEDBACK
from connect311_contracts.webhooks import url_key, webhook_secret
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine, emails
from connect311_notifier.links import LinkBuilder
from connect311_notifier.metrics import Metrics
from connect311_notifier.outcome import Outcome
from connect311_notifier.policy import Channel
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.webhook_client import WebhookClient
from connect311_notifier.webhook_outcome import HookResult, classify_status
from connect311_notifier.webhook_payload import VERIFICATION_TYPE, webhook_id
from connect311_notifier.webhook_sender import WebhookSender
from connect311_notifier.webhook_target import TargetPolicy
from tests.unit.notifier.factories import matched, subscription, with_webhook

KEY = "server-key"
URL = "https://hooks.example.com/in"
SETTINGS = NotifierSettings(webhook_disable_after=3)


@dataclass
class Call:
    url: str
    msg_id: str
    body: dict
    secrets: list[str]
    challenge: str | None


@dataclass
class ScriptedClient:
    """Answers each delivery with the next status (handshakes echo their challenge)."""

    statuses: list[int] = field(default_factory=list)
    handshake: HookResult = field(default_factory=lambda: classify_status(200))
    calls: list[Call] = field(default_factory=list)

    async def deliver(
        self,
        url: str,
        msg_id: str,
        body: bytes,
        secrets: Sequence[str | bytes],
        *,
        challenge: str | None = None,
    ) -> HookResult:
        self.calls.append(Call(url, msg_id, json.loads(body), [str(s) for s in secrets], challenge))
        if challenge is not None:
            return self.handshake
        return classify_status(self.statuses.pop(0) if self.statuses else 204)


@dataclass
class Producer:
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    down: bool = False

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        if self.down:
            raise ConnectionError("broker unavailable")
        self.sent.append((topic, value))
        self.keys.append(key)

    def verified(self) -> list[WebhookVerified]:
        feedback = [v for topic, v in self.sent if topic == SUBSCRIPTION_FEEDBACK.name]
        found = [SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(v) for v in feedback]
        return [m for m in found if isinstance(m, WebhookVerified)]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    engine = create_engine(f"sqlite:///{tmp_path / 'notifier.db'}")
    ledger = Ledger(engine)
    ledger.create_schema()
    yield ledger
    engine.dispose()


def queue(ledger: Ledger, *commands: NotificationCommand) -> None:
    now = time.time()
    plan = make_planner(SETTINGS, lambda: datetime.now(UTC))
    batch = [Incoming(c, recipient_key(c.subscription.email), now) for c in commands]
    ledger.record(batch, plan, now)


def sender(ledger: Ledger, client: object, producer: Producer, woken: list[int]) -> WebhookSender:
    links = LinkBuilder("https://alerts.example.city", KEY)
    return WebhookSender(
        SETTINGS,
        ledger,
        client,  # type: ignore[arg-type]
        links,
        producer,  # type: ignore[arg-type]
        Metrics(),
        KEY,
        on_email=lambda: woken.append(1),
    )


async def deliver_all(ledger: Ledger, hooks: WebhookSender) -> list[bool]:
    done = []
    while batch := ledger.claim("me", time.time() + 3600, 10, Channel.WEBHOOK):
        done += [await hooks.deliver(row) for row in batch]
    return done


def statuses(ledger: Ledger) -> list[tuple[str, str]]:
    with ledger.engine.connect() as conn:
        found = conn.execute(sa.select(emails.c.kind, emails.c.status).order_by(emails.c.id))
        return [(k, s) for k, s in found]


async def test_a_url_is_verified_once_then_each_event_is_signed_with_its_secret(
    ledger: Ledger,
) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    first, second = matched(sub), matched(sub)
    queue(ledger, first, second)
    client, producer = ScriptedClient(), Producer()
    assert await deliver_all(ledger, sender(ledger, client, producer, [])) == [True, True]
    hello, one, two = client.calls
    assert hello.body["type"] == VERIFICATION_TYPE and hello.challenge
    assert hello.body["challenge"] == hello.challenge
    assert [one.msg_id, two.msg_id] == [webhook_id(first), webhook_id(second)]
    assert one.body["event_id"] == first.request_event.event_id
    assert "email" not in json.dumps(one.body)  # no personal data in the payload
    secret = webhook_secret(KEY, sub.subscription_id, 1)
    assert {tuple(c.secrets) for c in client.calls} == {(secret,)}
    assert statuses(ledger) == [("webhook", "sent")] * 2
    # The map API is told once that it works (no URL, no secret), keyed like a bounce.
    ((topic, _),) = producer.sent
    (told,) = producer.verified()
    assert topic == SUBSCRIPTION_FEEDBACK.name and producer.keys == [sub.subscription_id.encode()]
    assert (told.subscription_id, told.secret_version) == (sub.subscription_id, 1)
    assert URL not in producer.sent[0][1].decode() and secret not in producer.sent[0][1].decode()
    assert ledger.webhooks.state(sub.subscription_id, url_key(sub.webhook)).verified  # type: ignore[arg-type]


async def test_a_rotated_secret_is_verified_and_told_again(ledger: Ledger) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    assert sub.webhook is not None
    rotated = sub.model_copy(
        update={"webhook": sub.webhook.model_copy(update={"secret_version": 2})}
    )
    queue(ledger, matched(sub), matched(rotated))
    client, producer = ScriptedClient(), Producer()
    assert await deliver_all(ledger, sender(ledger, client, producer, [])) == [True, True]
    assert [c.challenge is not None for c in client.calls] == [True, False, True, False]
    assert [m.secret_version for m in producer.verified()] == [1, 2]


async def test_a_check_kafka_did_not_take_is_not_recorded_so_it_is_told_later(
    ledger: Ledger,
) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    queue(ledger, matched(sub))
    client, producer = ScriptedClient(), Producer(down=True)
    assert await deliver_all(ledger, sender(ledger, client, producer, [])) == [True]
    assert statuses(ledger) == [("webhook", "sent")]  # the alert was not held back
    key = url_key(sub.webhook)  # type: ignore[arg-type]
    assert not ledger.webhooks.state(sub.subscription_id, key).verified
    producer.down = False
    queue(ledger, matched(sub))
    assert await deliver_all(ledger, sender(ledger, client, producer, [])) == [True]
    assert (
        len(producer.verified()) == 1 and ledger.webhooks.state(sub.subscription_id, key).verified
    )


async def test_a_slack_webhook_gets_a_slack_message_without_a_handshake(ledger: Ledger) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False, fmt="slack")
    queue(ledger, matched(sub), matched(sub), matched(sub))
    client, producer = ScriptedClient(statuses=[503]), Producer()
    await deliver_all(ledger, sender(ledger, client, producer, []))
    call = client.calls[0]
    assert call.challenge is None and "blocks" in call.body and "text" in call.body
    # Its check is its first delivered alert (not the 503): told once, then known.
    assert [c.challenge for c in client.calls] == [None] * 4
    (told,) = producer.verified()
    assert told.subscription_id == sub.subscription_id


async def test_a_failed_handshake_counts_and_the_event_waits_for_its_retry(
    ledger: Ledger,
) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    queue(ledger, matched(sub))
    client = ScriptedClient(handshake=HookResult(Outcome.TEMPORARY, "timeout", reason="timed out"))
    hooks = sender(ledger, client, Producer(), [])
    (row,) = ledger.claim("me", time.time(), 10, Channel.WEBHOOK)
    assert await hooks.deliver(row) is False
    assert [c.challenge is not None for c in client.calls] == [True]  # no delivery unverified
    assert statuses(ledger) == [("webhook", "pending")]
    state = ledger.webhooks.state(sub.subscription_id, url_key(sub.webhook))  # type: ignore[arg-type]
    assert state.failures == 1 and not state.verified


async def test_a_410_turns_the_webhook_off_and_tells_the_map_api_and_the_owner(
    ledger: Ledger,
) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    queue(ledger, matched(sub), matched(sub))
    client, producer, woken = ScriptedClient(statuses=[410]), Producer(), []
    assert await deliver_all(ledger, sender(ledger, client, producer, woken)) == [True, True]
    topics = [topic for topic, _ in producer.sent]
    assert topics == [SUBSCRIPTION_FEEDBACK.name, NOTIFICATIONS_DEAD.name] * 2
    assert len(producer.verified()) == 1  # the handshake passed before the 410
    off = SUBSCRIPTION_BOUNCED_ADAPTER.validate_json(producer.sent[2][1])
    assert (off.channel, off.disable, off.subscription_id) == ("webhook", True, sub.subscription_id)
    later = NOTIFICATION_DEAD_LETTER_ADAPTER.validate_json(producer.sent[3][1])
    assert later.reason == "the webhook is turned off"  # not sent, not counted
    assert len([c for c in client.calls if c.challenge is None]) == 1
    assert statuses(ledger) == [
        ("webhook", "dead"),
        ("webhook", "dead"),
        ("webhook_disabled", "pending"),
    ]
    assert woken == [1]


async def test_a_name_that_now_points_inside_is_refused_at_send_time(ledger: Ledger) -> None:
    async def rebound(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]  # public when signed up, private now

    sub = with_webhook(subscription(), URL, email_alerts=False)
    queue(ledger, matched(sub))
    producer = Producer()
    async with WebhookClient(TargetPolicy(), lookup=rebound) as client:
        assert await deliver_all(ledger, sender(ledger, client, producer, [])) == [True]
    (letter,) = [NOTIFICATION_DEAD_LETTER_ADAPTER.validate_json(v) for _, v in producer.sent]
    assert letter.reason == "target refused: private" and letter.email_kind == "webhook"
    state = ledger.webhooks.state(sub.subscription_id, url_key(sub.webhook))  # type: ignore[arg-type]
    assert state.failures == 1 and not state.verified  # counted against the webhook
