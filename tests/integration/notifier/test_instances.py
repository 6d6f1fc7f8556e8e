"""Two notifier instances, one consumer group, one PostgreSQL ledger, through a rebalance.

Commands keep arriving while a second instance joins (partitions move to it) and the first
stops (they all move back); every email must arrive exactly once, and each recipient's in
the order queued, whichever instance sent it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_contracts.settings import KafkaSettings
from connect311_local.broker import free_port, port_answers
from connect311_notifier.ledger import Ledger, emails
from connect311_notifier.sender import TRACE_HEADER
from tests.integration.notifier.conftest import (
    StartNotifier,
    addressed_to,
    eventually,
    publish,
    skip_to_end,
    spawn,
)
from tests.support.smtp import SmtpSink, start_smtp_sink
from tests.unit.notifier.factories import matched, subscription

RECIPIENTS = 60
PER_RECIPIENT = 4
N = RECIPIENTS * PER_RECIPIENT
RATE_PER_S = 60.0  # per instance: slow enough that both are still at work at each step


def commands(run: str, recipients: int = RECIPIENTS) -> list[SubscriberMatched]:
    """Everyone's first alert, then everyone's second, ...; trace ids name each one's place."""
    subs = [subscription(email=f"multi-{run}-{r}@example.org") for r in range(recipients)]
    return [
        matched(sub).model_copy(update={"trace_id": f"{run}-{r:02d}-{i}"})
        for i in range(PER_RECIPIENT)
        for r, sub in enumerate(subs)
    ]


async def publish_slowly(kafka: KafkaSettings, queue: list[SubscriberMatched]) -> None:
    """In small groups over a few seconds, so commands arrive during both rebalances."""
    for start in range(0, len(queue), 20):
        await publish(kafka, queue[start : start + 20])
        await asyncio.sleep(0.3)


def by_status_and_sender(ledger: Ledger, keys: list[str]) -> Counter[tuple[str, str | None]]:
    """How many of these recipients' emails are in which state, and which instance had them."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.status, emails.c.claimed_by).where(emails.c.recipient_key.in_(keys))
        )
        return Counter((r.status, r.claimed_by) for r in rows)


async def test_two_instances_rebalancing_send_each_email_once_and_in_order(
    postgres_database: str,
    kafka_settings: KafkaSettings,
    smtp_sink: SmtpSink,
    start_notifier: StartNotifier,
) -> None:
    # postgres_database comes first so it is dropped after the notifiers have stopped.
    run = uuid.uuid4().hex[:6]
    queue = commands(run)
    addresses = sorted({c.subscription.email for c in queue})
    keys = [recipient_key(a) for a in addresses]
    shared = {
        "database_url": postgres_database,
        "group_id": f"test-notifier-multi-{run}",
        "global_rate_per_s": RATE_PER_S,
    }
    port = smtp_sink.port  # type: ignore[attr-defined]
    first = await start_notifier(port, **shared)
    feeding = asyncio.create_task(publish_slowly(kafka_settings, queue))

    def sent() -> int:
        return len(addressed_to(smtp_sink, addresses))

    await eventually(lambda: sent() >= 20, what="the first instance at work")
    second = await start_notifier(port, join=True, **shared)
    await eventually(lambda: sent() >= N // 2, timeout_s=60, what="half the emails")
    first.stop.set()
    await asyncio.wait_for(first.task, timeout=30)
    await feeding

    def all_sent() -> bool:
        counts = by_status_and_sender(second.ledger, keys)
        return sum(n for (status, _), n in counts.items() if status == "sent") == N

    await eventually(all_sent, timeout_s=120, what="every email recorded as sent")
    # Once all are 'sent' nothing is left to send: the sink holds everything it will get.
    assert_each_once_in_queue_order(smtp_sink, queue, addresses)
    senders = {who for (_, who) in by_status_and_sender(second.ledger, keys)}
    assert senders == {first.settings.instance_id, second.settings.instance_id}


def assert_each_once_in_queue_order(
    sink: SmtpSink, queue: list[SubscriberMatched], addresses: list[str]
) -> None:
    got = addressed_to(sink, addresses)
    counts = Counter(str(m[TRACE_HEADER]) for m in got)
    assert len(got) == len(queue) and sorted(counts) == sorted(c.trace_id or "" for c in queue)
    for address in addresses:
        arrived = [str(m[TRACE_HEADER]) for m in got if m["To"] == address]
        assert arrived == sorted(arrived), address  # trace ids end in the queue position


async def test_an_instance_killed_for_good_has_its_rows_taken_over_once(
    postgres_database: str,
    kafka_settings: KafkaSettings,
    smtp_sink: SmtpSink,
    start_notifier: StartNotifier,
    tmp_path: Path,
) -> None:
    """kill -9 of one instance that never comes back: the other takes over its claimed rows
    (and the recipients queued behind them) once the lease runs out, sending each once.

    The doomed instance mails through its own SMTP server (same message list as the
    survivor's, so arrival order is kept), which parks its next message unanswered: the kill
    lands mid-send, after the row was marked sending and before any 250, every time."""
    run = uuid.uuid4().hex[:6]
    queue = commands(run, recipients=10)  # 40 emails, 4 per recipient
    addresses = sorted({c.subscription.email for c in queue})
    keys = [recipient_key(a) for a in addresses]
    group = f"test-notifier-killed-{run}"
    lease_s = 3.0
    await skip_to_end(kafka_settings, group)
    doomed_port = free_port()
    doomed_smtp, doomed_sink = start_smtp_sink(
        doomed_port,
        SmtpSink(messages=smtp_sink.messages, envelopes=smtp_sink.envelopes, lock=smtp_sink.lock),
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "NOTIFIER_SMTP_PORT": str(doomed_port),
        "NOTIFIER_DATABASE_URL": postgres_database,
        "NOTIFIER_GROUP_ID": group,
        "NOTIFIER_INSTANCE_ID": f"doomed-{run}",
        "NOTIFIER_GLOBAL_RATE_PER_S": "10",  # slow: work is left for the survivor to take
        # One connection, so one send at a time: while the parked message waits, no other
        # lane can be between SMTP's 250 and marking its row sent when the kill lands.
        "NOTIFIER_SMTP_CONNECTIONS": "1",
        "NOTIFIER_SENDING_LEASE_S": str(lease_s),
    }
    await publish(kafka_settings, queue)
    doomed = spawn(env, tmp_path / "doomed.log")

    def sent() -> int:
        return len(addressed_to(smtp_sink, addresses))

    try:
        await eventually(lambda: sent() >= 5, timeout_s=60, what="the doomed instance at work")
        # The survivor runs beside it: the doomed one's rows are live (renewed), not taken.
        survivor = await start_notifier(
            smtp_sink.port,  # type: ignore[attr-defined]
            join=True,
            database_url=postgres_database,
            group_id=group,
            sending_lease_s=lease_s,
        )
        await eventually(
            lambda: port_answers(survivor.settings.http_port), what="the survivor running"
        )
        before = sent()
        await eventually(lambda: sent() >= before + 5, timeout_s=60, what="5 more emails")
        doomed_sink.hold_next = True
        await eventually(doomed_sink.holding.is_set, timeout_s=60, what="the doomed mid-send")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed_sink.released.set()
        doomed_smtp.stop()
    held = by_status_and_sender(survivor.ledger, keys)
    assert sum(n for (status, _), n in held.items() if status in ("claimed", "sending")) > 0

    def all_sent() -> bool:
        counts = by_status_and_sender(survivor.ledger, keys)
        return sum(n for (status, _), n in counts.items() if status == "sent") == len(queue)

    await eventually(all_sent, timeout_s=60, what="every email sent, the survivor's share too")
    assert_each_once_in_queue_order(smtp_sink, queue, addresses)
    senders = {who for (_, who) in by_status_and_sender(survivor.ledger, keys)}
    assert senders == {env["NOTIFIER_INSTANCE_ID"], survivor.settings.instance_id}
