"""Issue 7: the SMTP server is down for a whole minute while commands keep arriving.

A real aiosmtpd server stops; for 60 s commands for several recipients keep coming through
the real broker; then a new server starts on the same port. Every email must arrive exactly
once, in order per recipient, nothing dead-lettered, and none charged an attempt for the
outage (max_attempts=3 would have dead-lettered emails that were charged). "Resumed
promptly" is asserted on counts and sequences, never on durations: one outage, probes at
least every probe_max_s while it lasted, one answered probe, and the restarted server sees at
most one session per SMTP connection (the probe's session carries on as a lane's). The
time from the restart to the last email is logged (and measured in bench/notifier.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import Counter
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from connect311_contracts.notifications import NotificationCommand, recipient_key
from connect311_local.broker import free_port
from connect311_notifier.ledger import emails
from connect311_notifier.sender import TRACE_HEADER
from tests.integration.notifier.conftest import (
    Notifier,
    StartNotifier,
    addressed_to,
    eventually,
    metric,
    publish,
)
from tests.support.smtp import SmtpSink
from tests.unit.notifier.factories import matched, subscription

log = logging.getLogger(__name__)
OUTAGE_S = 60.0
ROUNDS = 10  # commands per recipient while the server is down, spread over the minute
RECIPIENTS = 8
CONNECTIONS = 4
PROBE_MAX_S = 10.0


class CountingSink(SmtpSink):
    """Keeps messages like SmtpSink and counts sessions (each EHLO opens one)."""

    sessions = 0

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd hook: count the session, answer as usual."""
        self.sessions += 1
        session.host_name = hostname
        return responses


def start_sink(port: int) -> tuple[Controller, CountingSink]:
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink


def command(address: str, tag: str, place: int) -> NotificationCommand:
    """An alert about a new request, named by its place in the recipient's queue."""
    return matched(subscription(email=address)).model_copy(
        update={"trace_id": f"{tag}-{place:02d}"}
    )


def ledger_rows(notifier: Notifier, keys: list[str]) -> list[tuple[str, int]]:
    with notifier.ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.status, emails.c.attempts).where(emails.c.recipient_key.in_(keys))
        )
        return [(r.status, r.attempts) for r in rows]


async def test_a_minute_without_smtp_delivers_everything_once_in_order_nothing_charged(
    kafka_settings, start_notifier: StartNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connect311_notifier")
    run = uuid.uuid4().hex[:6]
    addresses = [f"outage-{run}-{r}@example.org" for r in range(RECIPIENTS)]
    keys = [recipient_key(a) for a in addresses]
    queues: dict[str, list[NotificationCommand]] = {a: [] for a in addresses}

    async def publish_round(place: int) -> None:
        batch = [command(a, f"{run}{r}", place) for r, a in enumerate(addresses)]
        for c in batch:
            queues[c.subscription.email].append(c)
        await publish(kafka_settings, batch)

    def arrived() -> list[EmailMessage]:
        return addressed_to(first, addresses) + addressed_to(second, addresses)

    def delivered(count: int) -> bool:
        return len(arrived()) >= count

    port = free_port()
    controller, first = start_sink(port)
    second = CountingSink()
    # Production back-off for the emails (2 s doubling) and max_attempts=3: an outage that
    # charged emails would dead-letter them or leave them waiting long after the restart.
    notifier = await start_notifier(
        port,
        smtp_connections=CONNECTIONS,
        retry_base_s=2.0,
        retry_max_s=900.0,
        max_attempts=3,
        smtp_probe_max_s=PROBE_MAX_S,
    )
    try:
        await publish_round(0)
        await eventually(lambda: delivered(RECIPIENTS), what="the emails before the outage")
    finally:
        controller.stop()

    down_at = time.monotonic()
    for place in range(1, ROUNDS + 1):
        await publish_round(place)
        await asyncio.sleep(max(0.0, down_at + place * OUTAGE_S / ROUNDS - time.monotonic()))
    # Everything published while down is queued, untouched: no attempt charged to any.
    await eventually(
        lambda: len(ledger_rows(notifier, keys)) == RECIPIENTS * (ROUNDS + 1), what="queued"
    )
    waiting = [row for row in ledger_rows(notifier, keys) if row[0] != "sent"]
    assert waiting and {attempts for _, attempts in waiting} == {0}
    assert await metric(notifier, "notifier_smtp_reachable") == 0

    controller, second = start_sink(port)
    back_at = time.monotonic()
    try:
        total = RECIPIENTS * (ROUNDS + 1)
        await eventually(lambda: delivered(total), timeout_s=120, what="the queued emails")
        drained_s = time.monotonic() - back_at
        await publish_round(ROUNDS + 1)  # and delivery goes on as usual afterwards
        await eventually(lambda: delivered(total + RECIPIENTS), what="emails after the outage")
    finally:
        controller.stop()
    log.warning(
        "SMTP outage of %.0f s: %d queued emails drained %.2f s after the server came back",
        back_at - down_at,
        total - RECIPIENTS,
        drained_s,
    )

    # Exactly once, in order per recipient.
    got = arrived()
    traces = [str(m[TRACE_HEADER]) for m in got]
    assert set(Counter(traces).values()) == {1}
    for address, queue in queues.items():
        arrived = [str(m[TRACE_HEADER]) for m in got if m["To"] == address]
        assert arrived == [c.trace_id for c in queue], address

    # Nothing dead-lettered, every email sent on its first counted attempt.
    await eventually(
        lambda: ledger_rows(notifier, keys) == [("sent", 1)] * (total + RECIPIENTS),
        what="every email recorded as sent on its first attempt",
    )
    assert await metric(notifier, "notifier_dead_letters_total") == 0

    # One outage, probed at least every PROBE_MAX_S while it lasted (never more often than
    # the back-off's floor allows), and the first probe after the restart answered.
    failed_probes = await metric(notifier, "notifier_smtp_probes_total", 'result="unreachable"')
    assert await metric(notifier, "notifier_smtp_outages_total") == 1
    assert await metric(notifier, "notifier_smtp_probes_total", 'result="answered"') == 1
    assert OUTAGE_S / PROBE_MAX_S - 1 <= failed_probes <= 20
    assert await metric(notifier, "notifier_smtp_reachable") == 1
    # Only the emails the lanes were handing over when the server vanished failed, at most
    # one per connection; the restarted server saw no reconnect storm.
    unreachable = await metric(
        notifier, "notifier_emails_failed_total", 'kind="alert",outcome="unreachable"'
    )
    assert 1 <= unreachable <= CONNECTIONS
    assert 1 <= second.sessions <= CONNECTIONS
    drained = [r.getMessage() for r in caplog.records if "backlog drained" in r.getMessage()]
    assert len(drained) == 1 and re.search(rf"\b{total - RECIPIENTS} email", drained[0])
