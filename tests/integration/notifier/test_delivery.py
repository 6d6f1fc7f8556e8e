"""The notifier end to end: real broker, real SMTP server (aiosmtpd), SQLite ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from connect311_bus.kafka import encode
from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_contracts.topics import (
    DEAD_LETTERS,
    NOTIFICATIONS,
    NOTIFICATIONS_DEAD,
    SUBSCRIPTION_FEEDBACK,
)
from connect311_local.broker import free_port
from connect311_notifier.ledger import Ledger, bounces, commands, emails
from tests.integration.notifier.conftest import (
    StartNotifier,
    addressed_to,
    eventually,
    metric_reaches,
    publish,
    read_topic,
)
from tests.support.smtp import SmtpSink, start_smtp_sink
from tests.unit.notifier.factories import confirmation, matched, subscription


def statuses(ledger: Ledger, subscription_ids: Iterable[str]) -> list[str]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.status).where(emails.c.subscription_id.in_(list(subscription_ids)))
        )
        return sorted(r.status for r in rows)


def sentinel(email: str) -> SubscriberMatched:
    """A command for the same address: same key, same partition, so it is consumed after
    everything published for that address before it (other tests share the topic)."""
    return matched(subscription(email=email))


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from /metrics text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_confirmation_and_alert_once_nothing_to_pending_replays_ignored(
    kafka_settings, smtp_sink: SmtpSink, start_notifier: StartNotifier
) -> None:
    pending = subscription(status=SubscriptionStatus.PENDING)
    active = subscription()
    confirm, alert, too_early = confirmation(pending), matched(active), matched(pending)
    notifier = await start_notifier(smtp_sink.port)  # type: ignore[attr-defined]
    after = [sentinel(pending.email), sentinel(active.email)]
    await publish(kafka_settings, [confirm, alert, too_early, alert, confirm, *after])
    recipients = [pending.email, active.email]
    await eventually(
        lambda: (
            statuses(notifier.ledger, [s.subscription.subscription_id for s in after])
            == ["sent", "sent"]
        ),
        what="the sentinels, published last",
    )

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{notifier.http}/healthz") as response:
            assert response.status == 200 and (await response.json())["status"] == "ok"
        async with http.get(f"{notifier.http}/metrics") as response:
            text = await response.text()
    assert metric(text, "notifier_commands_deduplicated_total", kind="alert") >= 1
    assert metric(text, "notifier_commands_deduplicated_total", kind="confirmation") >= 1
    skipped = {"reason": "subscription_pending", "route": "skip"}
    assert metric(text, "notifier_commands_total", **skipped) >= 1
    assert metric(text, "notifier_emails_sent_total", kind="alert") >= 2
    assert metric(text, "notifier_command_to_smtp_seconds_count", kind="confirmation") >= 1

    # Exactly one email per subscription: the replays and the pending alert sent nothing.
    ids = [pending.subscription_id, active.subscription_id]
    assert statuses(notifier.ledger, ids) == ["sent", "sent"]
    got = addressed_to(smtp_sink, recipients)
    assert len(got) == 4  # the two above and the two sentinels
    to_pending = [m for m in got if m["To"] == pending.email and "confirm" in m["Subject"].lower()]
    assert len(to_pending) == 1
    body = to_pending[0].get_body(("plain",))
    assert body is not None and confirm.confirm_url in body.get_content()
    to_active = [m for m in got if m["To"] == active.email]
    assert to_active[0]["List-Unsubscribe"].startswith(
        "<http://map.test/api/subscriptions/unsubscribe?"
    )


async def test_unusable_commands_are_dead_lettered_and_the_partition_moves_on(
    kafka_settings, smtp_sink: SmtpSink, start_notifier: StartNotifier
) -> None:
    from aiokafka import AIOKafkaProducer

    await start_notifier(smtp_sink.port)  # type: ignore[attr-defined]
    after = subscription()
    key = recipient_key(after.email)  # one key: poison, bad command and the next share a partition
    bad_expiry = confirmation(subscription(status=SubscriptionStatus.PENDING, email=after.email))
    bad_expiry = bad_expiry.model_copy(update={"expires_at": "tomorrow"})
    prod = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await prod.start()
    try:
        await prod.send_and_wait(
            NOTIFICATIONS.name, b'{"event_type": "nonsense"}', key=key.encode()
        )
        await prod.send_and_wait(NOTIFICATIONS.name, encode(bad_expiry), key=key.encode())
    finally:
        await prod.stop()
    await publish(kafka_settings, [matched(after)])
    await eventually(lambda: len(addressed_to(smtp_sink, [after.email])) == 1, what="next email")

    letters = await read_topic(
        kafka_settings, DEAD_LETTERS.name, lambda r: json.loads(r.value).get("key") == key
    )
    reasons = sorted(json.loads(r.value)["reason"] for r in letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("expires_at is not an ISO-8601 time: 'tomorrow'")
    assert "event_type" in reasons[1]
    letter = json.loads(letters[0].value)
    assert letter["service"] == "notifier" and letter["topic"] == NOTIFICATIONS.name


async def test_550_is_dead_lettered_with_reason_and_bounce_disables(
    kafka_settings, smtp_sink: SmtpSink, start_notifier: StartNotifier
) -> None:
    sub = subscription()
    smtp_sink.fail_with = "550 5.1.1 Recipient address rejected: no such user"
    notifier = await start_notifier(smtp_sink.port, hard_bounce_threshold=1)  # type: ignore[attr-defined]
    command = matched(sub)
    await publish(kafka_settings, [command])
    await eventually(lambda: statuses(notifier.ledger, [sub.subscription_id]) == ["dead"])

    letters = await read_topic(
        kafka_settings,
        NOTIFICATIONS_DEAD.name,
        lambda r: json.loads(r.value)["subscription_id"] == sub.subscription_id,
    )
    letter = json.loads(letters[0].value)
    assert letter["smtp_code"] == 550 and "no such user" in letter["reason"]
    assert letter["commands"][0]["event_id"] == command.event_id  # the command itself is kept
    bounces = await read_topic(
        kafka_settings,
        SUBSCRIPTION_FEEDBACK.name,
        lambda r: r.key == sub.subscription_id.encode(),
    )
    bounce = json.loads(bounces[0].value)
    assert bounce["permanent"] is True and bounce["disable"] is True
    assert "hard bounce 1/1" in bounce["reason"]

    # Disabled: the next alert for that subscription is not even attempted.
    smtp_sink.fail_with = None
    await publish(kafka_settings, [matched(sub)])
    await eventually(lambda: _skipped(notifier.ledger, sub.subscription_id) == 1, what="a skip")
    assert addressed_to(smtp_sink, [sub.email]) == []
    # It started from the group's committed offsets: only this test's commands were read.
    with notifier.ledger.engine.connect() as conn:
        seen = set(conn.execute(sa.select(commands.c.subscription_id)).scalars())
    assert seen == {sub.subscription_id}


def _skipped(ledger: Ledger, subscription_id: str) -> int:
    with ledger.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    commands.c.subscription_id == subscription_id, commands.c.route == "skip"
                )
            ).scalar_one()
        )


async def test_repeated_4xx_gives_up_after_max_attempts(
    kafka_settings, smtp_sink: SmtpSink, start_notifier: StartNotifier
) -> None:
    sub = subscription()
    smtp_sink.fail_with = "452 4.2.2 Mailbox full"
    notifier = await start_notifier(smtp_sink.port, max_attempts=3)  # type: ignore[attr-defined]
    await publish(kafka_settings, [matched(sub)])
    await eventually(lambda: statuses(notifier.ledger, [sub.subscription_id]) == ["dead"])
    letters = await read_topic(
        kafka_settings,
        NOTIFICATIONS_DEAD.name,
        lambda r: json.loads(r.value)["subscription_id"] == sub.subscription_id,
    )
    letter = json.loads(letters[0].value)
    assert letter["attempts"] == 3 and letter["smtp_code"] == 452
    assert letter["reason"].startswith("gave up after 3 attempts: 452")
    # Not a hard bounce: the subscription is not reported.
    with notifier.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(bounces)).scalar_one() == 0


async def test_smtp_down_then_up_every_message_arrives_once(
    kafka_settings, start_notifier: StartNotifier
) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    subs = [subscription() for _ in range(6)]
    # max_attempts=1: a relay that is down is not the recipient's fault, so it never gives up.
    notifier = await start_notifier(port, max_attempts=1)
    await publish(kafka_settings, [matched(s) for s in subs])

    ids = [s.subscription_id for s in subs]
    await eventually(lambda: statuses(notifier.ledger, ids) == ["pending"] * 6, what="queued")
    await metric_reaches(notifier, "notifier_smtp_probes_total", 'result="unreachable"', 1)
    controller, sink = start_smtp_sink(port)
    try:
        recipients = [s.email for s in subs]
        await eventually(
            lambda: statuses(notifier.ledger, [s.subscription_id for s in subs]) == ["sent"] * 6,
            what="all sent",
        )
        got = addressed_to(sink, recipients)
        assert sorted(m["To"] for m in got) == sorted(recipients)
        assert len({m["Message-ID"] for m in got}) == 6
    finally:
        controller.stop()


async def test_postgres_ledger_makes_replays_no_ops(
    postgres_database: str, kafka_settings, smtp_sink: SmtpSink, start_notifier: StartNotifier
) -> None:
    # postgres_database comes first so it is dropped after the notifier has stopped.
    sub = subscription()
    alert = matched(sub)
    notifier = await start_notifier(smtp_sink.port, database_url=postgres_database)  # type: ignore[attr-defined]
    await publish(kafka_settings, [alert])
    await eventually(lambda: statuses(notifier.ledger, [sub.subscription_id]) == ["sent"])
    last = sentinel(sub.email)
    await publish(kafka_settings, [alert, alert, last])  # replayed after it was sent
    await eventually(
        lambda: statuses(notifier.ledger, [last.subscription.subscription_id]) == ["sent"],
        what="the sentinel, published after the replays",
    )
    assert statuses(notifier.ledger, [sub.subscription_id]) == ["sent"]
    assert len(addressed_to(smtp_sink, [sub.email])) == 2  # the alert once, and the sentinel


class GreylistingSink(SmtpSink):
    """Answers 450 to chosen recipients (as a greylisting server does), accepts the rest."""

    busy: frozenset[str] = frozenset()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.busy:
            return "450 4.2.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_temporarily_failing_recipient_does_not_hold_up_the_others(
    kafka_settings, start_notifier: StartNotifier
) -> None:
    from aiosmtpd.controller import Controller

    slow, *others = [subscription() for _ in range(4)]
    sink = GreylistingSink()
    sink.busy = frozenset({slow.email})
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        notifier = await start_notifier(port, retry_base_s=30.0, retry_max_s=60.0)
        await publish(kafka_settings, [matched(slow), *[matched(s) for s in others]])

        def slow_row() -> Any:
            with notifier.ledger.engine.connect() as conn:
                return conn.execute(
                    sa.select(emails).where(emails.c.subscription_id == slow.subscription_id)
                ).one_or_none()

        def settled() -> bool:
            row = slow_row()
            delivered = len(addressed_to(sink, [s.email for s in others])) == 3
            return delivered and row is not None and row.attempts >= 1

        await eventually(settled, what="the others delivered and the busy one tried")
        row = slow_row()
        # The busy one waits for its back-off (at least 15 s) while the others went out.
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error.startswith("450") and row.next_attempt_at > time.time() + 5
        assert addressed_to(sink, [slow.email]) == []
    finally:
        controller.stop()
