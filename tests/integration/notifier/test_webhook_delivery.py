"""Webhooks through the notifier's ledger, to a real receiver that verifies every signature.

Once per event in effect across a kill -9 (a webhook caught mid-POST is sent again with the
same webhook-id, which the receiver de-duplicates on); a retry after a 5xx; a dead letter
after the last try; and a webhook turned off after repeated failures (or a 410), with an
email to its owner and SubscriptionBounced(channel="webhook") for the map API, which also
hears once that each webhook passed its handshake (WebhookVerified, for the manage page).
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from connect311_contracts.notifications import NOTIFICATION_DEAD_LETTER_ADAPTER, SubscriberMatched
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import (
    SUBSCRIPTION_FEEDBACK_ADAPTER,
    SubscriptionBounced,
    WebhookVerified,
)
from connect311_contracts.topics import NOTIFICATIONS_DEAD, SUBSCRIPTION_FEEDBACK
from connect311_notifier.ledger import Ledger, create_engine, emails
from connect311_notifier.webhook_payload import webhook_id
from tests.integration.notifier.conftest import (
    SECRET,
    StartNotifier,
    addressed_to,
    eventually,
    publish,
    read_topic,
    skip_to_end,
    spawn,
)
from tests.support.smtp import SmtpSink
from tests.support.webhook_receiver import WebhookReceiver, serve_receiver
from tests.unit.notifier.factories import event, matched, request, subscription, with_webhook

ALLOW = '["127.0.0.1:*"]'


def hooked(receiver: WebhookReceiver, email_alerts: bool = False) -> SubscriberMatched:
    """A matched event for a fresh subscription whose webhook is this receiver."""
    sub = subscription()
    sub = with_webhook(sub, receiver.url(sub.subscription_id), email_alerts=email_alerts)
    return matched(sub)


def statuses(ledger: Ledger, ids: list[str]) -> Counter[str]:
    """Webhook rows of these subscriptions by status."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.status).where(
                emails.c.subscription_id.in_(ids), emails.c.kind == "webhook"
            )
        )
        return Counter(rows.scalars())


async def test_a_kill_9_mid_post_still_delivers_each_event_once_in_effect(
    kafka_settings: KafkaSettings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    n = 24
    db = tmp_path / "notifier.db"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "CONNECT311_SECRET_KEY": SECRET,
        "NOTIFIER_SMTP_PORT": str(smtp_sink.port),  # type: ignore[attr-defined]
        "NOTIFIER_DATABASE_URL": f"sqlite:///{db}",
        "NOTIFIER_GROUP_ID": f"hook-kill-{uuid.uuid4().hex[:8]}",
        "NOTIFIER_INSTANCE_ID": f"hook-kill-{uuid.uuid4().hex[:8]}",
        "NOTIFIER_WEBHOOK_ALLOW": ALLOW,
        "NOTIFIER_WEBHOOK_CONNECTIONS": "2",
    }
    await skip_to_end(kafka_settings, env["NOTIFIER_GROUP_ID"])
    log = tmp_path / "notifier.log"
    async with serve_receiver(WebhookReceiver(SECRET, hold_delivery=n // 2)) as receiver:
        queue = [hooked(receiver) for _ in range(n)]
        ids = [c.subscription.subscription_id for c in queue]
        await publish(kafka_settings, queue)
        first = spawn(env, log)
        try:
            await eventually(receiver.holding.is_set, timeout_s=30, what="a delivery mid-POST")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        receiver.released.set()
        ledger = Ledger(create_engine(f"sqlite:///{db}"))
        left = statuses(ledger, ids)
        assert left["sent"] < n and left["sending"] >= 1, left  # the held one, at least

        second = spawn(env, log)
        try:
            await eventually(
                lambda: statuses(ledger, ids)["sent"] == n, timeout_s=30, what="all sent"
            )
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0, log.read_text()[-3000:]
        finally:
            if second.poll() is None:
                second.kill()
            ledger.engine.dispose()

    hits = [h for h in receiver.deliveries() if h.subscription_id in ids]
    assert all(h.verified for h in receiver.hits), "every request carries a valid signature"
    # Once in effect: every event arrived, under its one webhook-id; the copies are the
    # POSTs the kill caught in flight, sent again with the same id (the receiver drops them).
    assert {h.webhook_id for h in hits} == {webhook_id(c) for c in queue}
    assert {h.event_id for h in hits} == {c.request_event.event_id for c in queue}
    copies = len(hits) - n
    assert 1 <= copies <= 2, copies  # at most one per lane was mid-POST
    assert addressed_to(smtp_sink, [c.subscription.email for c in queue]) == []  # webhook only


async def test_retry_dead_letter_and_turning_off_with_an_email_to_the_owner(
    kafka_settings: KafkaSettings, smtp_sink: SmtpSink, start_notifier: StartNotifier
) -> None:
    async with serve_receiver(WebhookReceiver(SECRET)) as receiver:
        flaky, failing, dying, gone = (hooked(receiver) for _ in range(4))
        # The dying webhook's subscription fails twice in a row more, on a second event.
        dying_again = matched(dying.subscription, event(request()))
        sub_of = {c: c.subscription.subscription_id for c in (flaky, failing, dying, gone)}
        receiver.script[sub_of[flaky]] = [503]
        for name in (failing, dying):
            receiver.script[sub_of[name]] = [500] * 10
        receiver.script[sub_of[gone]] = [410]
        notifier = await start_notifier(
            smtp_sink.port,  # type: ignore[attr-defined]
            webhook_allow=["127.0.0.1:*"],
            max_attempts=3,
            webhook_disable_after=5,
        )
        await publish(kafka_settings, [flaky, failing, dying, dying_again, gone])
        owners = [dying.subscription.email, gone.subscription.email]
        await eventually(
            lambda: len(addressed_to(smtp_sink, owners)) == 2,
            timeout_s=30,
            what="two owners told their webhook is off",
        )
        # Each webhook retries on its own clock: the owners' emails may come before the
        # other webhooks' last tries, so wait for those tries rather than race them.
        await eventually(
            lambda: (
                len(receiver.deliveries(sub_of[failing])) >= 3
                and len(receiver.deliveries(sub_of[flaky])) >= 2
            ),
            timeout_s=30,
            what="the failing webhook tried three times and the flaky one twice",
        )

        # A 5xx, then delivered on the retry: one webhook-id, twice, the second accepted.
        tries = receiver.deliveries(sub_of[flaky])
        assert [h.status for h in tries] == [503, 204]
        assert len({h.webhook_id for h in tries}) == 1
        # The last try failed: the event is dead-lettered (the webhook stays on: 3 < 5).
        assert [h.status for h in receiver.deliveries(sub_of[failing])] == [500] * 3
        # Five failures in a row (3 on the first event, 2 on the second): turned off.
        assert len(receiver.deliveries(sub_of[dying])) == 5
        assert [h.status for h in receiver.deliveries(sub_of[gone])] == [410]
        assert all(h.verified for h in receiver.hits)

    letters = await read_topic(
        kafka_settings,
        NOTIFICATIONS_DEAD.name,
        lambda r: (
            NOTIFICATION_DEAD_LETTER_ADAPTER.validate_json(r.value).subscription_id
            in set(sub_of.values())
        ),
    )
    dead = Counter(
        NOTIFICATION_DEAD_LETTER_ADAPTER.validate_json(r.value).subscription_id for r in letters
    )
    assert dead == {sub_of[failing]: 1, sub_of[dying]: 2, sub_of[gone]: 1}
    bounced = await read_topic(
        kafka_settings, SUBSCRIPTION_FEEDBACK.name, lambda r: _about(r.value, set(sub_of.values()))
    )
    feedback = [SUBSCRIPTION_FEEDBACK_ADAPTER.validate_json(r.value) for r in bounced]
    offs = [m for m in feedback if isinstance(m, SubscriptionBounced)]
    assert {(b.subscription_id, b.channel, b.disable) for b in offs} == {
        (sub_of[dying], "webhook", True),
        (sub_of[gone], "webhook", True),
    }
    # Every receiver answered the handshake: each webhook is told verified once (the dying
    # one's second event finds it verified), keyed by its subscription, without its URL.
    checks = [
        (r, m) for r, m in zip(bounced, feedback, strict=True) if isinstance(m, WebhookVerified)
    ]
    assert Counter(m.subscription_id for _, m in checks) == {sid: 1 for sid in sub_of.values()}
    assert all(r.key == m.subscription_id.encode() for r, m in checks)
    assert all(m.secret_version == 1 and b"/hook/" not in r.value for r, m in checks)
    (told,) = addressed_to(smtp_sink, [dying.subscription.email])
    text = told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert told["Subject"] == "Your webhook to 127.0.0.1 is turned off"
    assert "5 deliveries in a row" in text and "/hook/" not in text  # the host, never the URL
    (gone_told,) = addressed_to(smtp_sink, [gone.subscription.email])
    assert "410 Gone" in gone_told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert notifier.task.done() is False


def _about(value: bytes | None, subscription_ids: set[str]) -> bool:
    """Whether a record names one of these subscriptions; the shared topic also holds other
    tests' deliberately broken records, which are simply not ours."""
    try:
        data = json.loads(value or b"")
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("subscription_id") in subscription_ids
