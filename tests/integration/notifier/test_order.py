"""Per-recipient order over parallel SMTP connections, through 4xx answers and an outage.

Each recipient gets a confirmation, alerts about different requests and follow updates; every
command carries a trace id naming its place in that recipient's queue, and the notifier puts
it in the X-Connect311-Trace header, so the sink can tell what arrived in which order.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from connect311_contracts.notifications import NotificationCommand
from connect311_contracts.request import RequestStatus
from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_local.broker import free_port
from connect311_notifier.ledger import Ledger, emails
from connect311_notifier.sender import TRACE_HEADER
from tests.integration.notifier.conftest import (
    StartNotifier,
    addressed_to,
    eventually,
    metric,
    metric_reaches,
    publish,
)
from tests.support.smtp import SmtpSink, start_smtp_sink
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription

RECIPIENTS = 6
ALERTS = 4
TEMPORARY = "451 4.3.0 Temporary local problem, try again later"


def queue_for(address: str, tag: str) -> list[NotificationCommand]:
    """What one person gets, in order: confirmation, alerts on other requests, follow updates."""
    pending = subscription(status=SubscriptionStatus.PENDING, email=address)
    circle = subscription(email=address)
    followed = request()
    follow = subscription(follow=followed.service_request_id, email=address)
    updated = request(followed.source_request_id, status=RequestStatus.IN_PROGRESS)
    closed = request(followed.source_request_id, status=RequestStatus.CLOSED)
    queue: list[NotificationCommand] = [
        confirmation(pending),
        *(matched(circle) for _ in range(ALERTS)),
        matched(follow, event(updated, "updated", RequestStatus.OPEN)),
        matched(follow, event(closed, "closed", RequestStatus.IN_PROGRESS)),
    ]
    return [c.model_copy(update={"trace_id": f"{tag}-{i:02d}"}) for i, c in enumerate(queue)]


def interleaved(queues: list[list[NotificationCommand]]) -> list[NotificationCommand]:
    """Everyone's first command, then everyone's second, ...: recipients mixed on the topic."""
    return [queue[i] for i in range(len(queues[0])) for queue in queues]


def traces(messages: list[EmailMessage]) -> list[str]:
    return [str(m[TRACE_HEADER]) for m in messages]


def assert_once_and_in_order(sink: SmtpSink, queues: dict[str, list[NotificationCommand]]) -> None:
    got = addressed_to(sink, queues)
    counts = Counter(traces(got))
    expected = [c.trace_id for queue in queues.values() for c in queue]
    assert sorted(counts) == sorted(expected) and set(counts.values()) == {1}  # each once
    for address, queue in queues.items():
        arrived = traces([m for m in got if m["To"] == address])
        assert arrived == [c.trace_id for c in queue], address


def delivered_all(sink: SmtpSink, queues: dict[str, list[NotificationCommand]]) -> bool:
    return len(addressed_to(sink, queues)) >= sum(len(q) for q in queues.values())


class FlakySink(SmtpSink):
    """Answers 4xx to everything while `outage` is set; afterwards greylists some messages
    (a 4xx to their first attempt only), so retries happen in the middle of a queue."""

    def __init__(self) -> None:
        super().__init__()
        self.outage = True
        self.refused = 0
        self.greylisted: set[str] = set()
        self.guard = threading.Lock()

    def _refuse(self, message_id: str, trace: str) -> bool:
        with self.guard:
            if self.outage:
                self.refused += 1
                return True
            place = int(trace.rsplit("-", 1)[1])
            if place % 3 == 1 and message_id not in self.greylisted:
                self.greylisted.add(message_id)
                self.refused += 1
                return True
            return False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Refuse as described above, or accept and keep the message."""
        raw: Any = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        if self._refuse(str(message["Message-ID"]), str(message[TRACE_HEADER])):
            return TEMPORARY
        return await super().handle_DATA(server, session, envelope)


async def test_4xx_for_a_while_then_greylisting_each_once_in_order_per_recipient(
    kafka_settings, start_notifier: StartNotifier
) -> None:
    run = uuid.uuid4().hex[:6]
    queues = {
        f"order-{run}-{r}@example.org": queue_for(f"order-{run}-{r}@example.org", f"{run}{r}")
        for r in range(RECIPIENTS)
    }
    sink = FlakySink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await start_notifier(
            port, smtp_connections=4, max_attempts=100, retry_base_s=0.1, retry_max_s=0.5
        )
        await publish(kafka_settings, interleaved(list(queues.values())))
        # Every recipient's first email refused a few times (the outage), then recovery.
        await eventually(lambda: sink.refused >= 3 * RECIPIENTS, what="4xx answers")
        with sink.guard:
            sink.outage = False
        await eventually(lambda: delivered_all(sink, queues), timeout_s=60, what="all emails")
        assert sink.greylisted  # retries in the middle of queues did happen
        assert_once_and_in_order(sink, queues)
    finally:
        controller.stop()


def attempted(ledger: Ledger, keys: list[str]) -> list[tuple[str, int, int]]:
    """(recipient_key, id, attempts) of every email these recipients have, in queue order."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.recipient_key, emails.c.id, emails.c.attempts)
            .where(emails.c.recipient_key.in_(keys))
            .order_by(emails.c.id)
        )
        return [(r.recipient_key, r.id, r.attempts) for r in rows]


async def test_smtp_down_then_up_each_once_in_order_per_recipient(
    kafka_settings, start_notifier: StartNotifier
) -> None:
    from connect311_contracts.notifications import recipient_key

    run = uuid.uuid4().hex[:6]
    queues = {
        f"down-{run}-{r}@example.org": queue_for(f"down-{run}-{r}@example.org", f"{run}{r}")
        for r in range(RECIPIENTS)
    }
    keys = [recipient_key(a) for a in queues]
    expected = sum(len(q) for q in queues.values())
    port = free_port()  # connection refused until the sink starts below
    notifier = await start_notifier(
        port, smtp_connections=4, retry_base_s=0.2, retry_max_s=1.0, max_attempts=1
    )
    await publish(kafka_settings, interleaved(list(queues.values())))

    await eventually(
        lambda: len(attempted(notifier.ledger, keys)) == expected, what="every email queued"
    )
    await metric_reaches(notifier, "notifier_smtp_probes_total", 'result="unreachable"', 2)
    # The server is down, not the emails: none was charged an attempt (max_attempts=1 would
    # have dead-lettered it), and probes, not emails, find out when it is back.
    assert [attempts for _, _, attempts in attempted(notifier.ledger, keys)] == [0] * expected
    assert await metric(notifier, "notifier_smtp_reachable") == 0

    controller, sink = start_smtp_sink(port)
    try:
        await eventually(lambda: delivered_all(sink, queues), timeout_s=60, what="all emails")
        assert_once_and_in_order(sink, queues)
    finally:
        controller.stop()
    # Each sent on its first counted attempt; one outage however many emails were waiting.
    await eventually(
        lambda: [a for _, _, a in attempted(notifier.ledger, keys)] == [1] * expected,
        what="every email recorded as sent on its first attempt",
    )
    assert await metric(notifier, "notifier_smtp_outages_total") == 1
