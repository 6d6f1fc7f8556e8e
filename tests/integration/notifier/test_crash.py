"""Crashes: the notifier killed -9 mid-batch and restarted loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from connect311_contracts.settings import KafkaSettings
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine, emails
from connect311_notifier.settings import NotifierSettings
from tests.integration.notifier.conftest import (
    StartNotifier,
    addressed_to,
    eventually,
    publish,
    skip_to_end,
    spawn,
)
from tests.support.smtp import SmtpSink
from tests.unit.notifier.factories import matched, subscription

N = 30
RATE_PER_S = 10.0  # slow enough to kill it between two sends


async def test_killed_mid_batch_and_restarted_sends_each_email_exactly_once(
    kafka_settings: KafkaSettings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    db = tmp_path / "notifier.db"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "NOTIFIER_SMTP_PORT": str(smtp_sink.port),  # type: ignore[attr-defined]
        "NOTIFIER_DATABASE_URL": f"sqlite:///{db}",
        "NOTIFIER_GROUP_ID": f"kill-test-{uuid.uuid4().hex[:8]}",
        "NOTIFIER_INSTANCE_ID": f"kill-test-{uuid.uuid4().hex[:8]}",
        "NOTIFIER_GLOBAL_RATE_PER_S": str(RATE_PER_S),
    }
    await skip_to_end(kafka_settings, env["NOTIFIER_GROUP_ID"])
    subs = [subscription() for _ in range(N)]
    recipients = [s.email for s in subs]
    await publish(kafka_settings, [matched(s) for s in subs])
    log = tmp_path / "notifier.log"

    first = spawn(env, log)
    try:
        await eventually(
            lambda: len(addressed_to(smtp_sink, recipients)) >= 8, timeout_s=60, what="8 emails"
        )
        # Kill between two sends (they are 1/RATE_PER_S apart), not in the sub-millisecond
        # window after SMTP accepted one and before the ledger says so (see the report).
        await asyncio.sleep(0.4 / RATE_PER_S)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    before_restart = len(addressed_to(smtp_sink, recipients))
    assert 8 <= before_restart < N, "the kill must land mid-batch"

    second = spawn(env, log)
    try:
        ledger = Ledger(create_engine(f"sqlite:///{db}"))
        ids = [s.subscription_id for s in subs]

        def all_sent() -> bool:
            with ledger.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(emails.c.status).where(emails.c.subscription_id.in_(ids))
                ).scalars()
                return list(rows) == ["sent"] * N

        await eventually(all_sent, timeout_s=60, what="all emails marked sent")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0, log.read_text()[-3000:]
        ledger.engine.dispose()
    finally:
        if second.poll() is None:
            second.kill()

    got = addressed_to(smtp_sink, recipients)
    counts = {r: sum(1 for m in got if m["To"] == r) for r in recipients}
    assert counts == dict.fromkeys(recipients, 1), "each recipient exactly one email"
    assert len({m["Message-ID"] for m in got}) == N


async def test_emails_left_sending_by_a_crash_are_sent_again_with_the_same_message_id(
    smtp_sink: SmtpSink, start_notifier: StartNotifier, tmp_path: Path
) -> None:
    """The remaining window, made visible: a 'sending' row is resent, keeping its Message-ID."""
    instance = f"crashed-{uuid.uuid4().hex[:6]}"
    url = f"sqlite:///{tmp_path / 'crashed.db'}"
    ledger = Ledger(create_engine(url))
    ledger.create_schema()
    sub = subscription()
    plan = make_planner(NotifierSettings(), lambda: datetime.now(UTC))
    ledger.record([Incoming(matched(sub), "k", time.time())], plan, time.time())
    (claimed,) = ledger.claim(instance, time.time(), 10)
    ledger.mark_sending(claimed.id, time.time())  # then the process "died" mid-SMTP

    notifier = await start_notifier(
        smtp_sink.port,  # type: ignore[attr-defined]
        database_url=url,
        instance_id=instance,
    )
    await eventually(lambda: len(addressed_to(smtp_sink, [sub.email])) == 1, what="the resend")
    (message,) = addressed_to(smtp_sink, [sub.email])
    assert message["Message-ID"] == f"<{claimed.message_id}@{notifier.settings.message_id_domain}>"

    def status() -> str:
        with ledger.engine.connect() as conn:
            query = sa.select(emails.c.status).where(emails.c.id == claimed.id)
            return str(conn.execute(query).scalar_one())

    await eventually(lambda: status() == "sent", what="the resend recorded")
    async with aiohttp.ClientSession() as http, http.get(f"{notifier.http}/metrics") as response:
        assert "notifier_resent_after_crash_total 1.0" in await response.text()
    ledger.engine.dispose()
