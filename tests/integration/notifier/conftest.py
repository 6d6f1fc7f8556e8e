"""Run the notifier in-process against the session broker, a real SMTP sink and a SQLite ledger."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiokafka import TopicPartition

from connect311_bus.kafka import consumer, encode, producer
from connect311_contracts.notifications import NotificationCommand, recipient_key
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.topics import NOTIFICATIONS
from connect311_local.broker import free_port
from connect311_notifier.app import run
from connect311_notifier.ledger import Ledger, create_engine
from connect311_notifier.settings import NotifierSettings
from tests.support.smtp import SmtpSink

SECRET = "integration-secret"
BASE_URL = "http://map.test"


async def eventually(
    predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition"
) -> None:
    """Poll (without blocking the loop the notifier runs on) until the predicate holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def addressed_to(sink: SmtpSink, emails: Iterable[str]) -> list[EmailMessage]:
    """Messages for these recipients only (other tests' commands share the topic)."""
    wanted = set(emails)
    with sink.lock:
        return [m for m in sink.messages if m["To"] in wanted]


async def publish(settings: KafkaSettings, commands: Iterable[NotificationCommand]) -> None:
    """Publish commands on notifications.v1 keyed by recipient, as the matcher does."""
    prod = producer(settings, "test-notifier")
    await prod.start()
    try:
        for command in commands:
            key = recipient_key(command.subscription.email).encode()
            await prod.send_and_wait(NOTIFICATIONS.name, encode(command), key=key)
    finally:
        await prod.stop()


async def read_topic(
    settings: KafkaSettings, topic: str, match: Callable[[Any], bool], timeout_s: float = 20.0
) -> list[Any]:
    """Every record on a topic (from the beginning) that matches, once at least one does."""
    cons = consumer(settings, None)
    await cons.start()
    found: list[Any] = []
    try:
        partitions = cons.partitions_for_topic(topic) or set()
        cons.assign([TopicPartition(topic, p) for p in partitions])
        await cons.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await cons.getmany(timeout_ms=200)
            found += [r for records in batches.values() for r in records if match(r)]
            if found and not batches:
                return found
        raise AssertionError(f"nothing matching on {topic} within {timeout_s} s")
    finally:
        await cons.stop()


async def skip_to_end(settings: KafkaSettings, group_id: str) -> None:
    """Commit the group's offsets at the end of notifications.v1, so a test's notifier reads
    only its own commands (and never bounces another test's subscriptions)."""
    cons = consumer(settings, group_id, fetch_max_wait_ms=20)
    await cons.start()
    try:
        tps = [TopicPartition(NOTIFICATIONS.name, p) for p in range(NOTIFICATIONS.partitions)]
        cons.assign(tps)
        await cons.seek_to_end(*tps)
        # This broker's "latest" can land short of the end: read on until nothing is left.
        while await cons.getmany(timeout_ms=300):
            pass
        await cons.commit({tp: await cons.position(tp) for tp in tps})
    finally:
        await cons.stop()


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The real CLI in its own process (to kill -9), logging to `log`."""
    env = {**env, "NOTIFIER_HTTP_PORT": str(free_port())}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "connect311_notifier", "run", "--log-level", "INFO"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@dataclass
class Notifier:
    """A notifier running as a task in the test's event loop."""

    settings: NotifierSettings
    ledger: Ledger
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"


StartNotifier = Callable[..., Awaitable[Notifier]]


async def metric(notifier: Notifier, name: str, labels: str = "") -> float:
    """One sample from the notifier's /metrics (summed over label sets unless `labels`)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{notifier.http}/metrics") as response,
    ):
        text = await response.text()
    prefix = f"{name}{{{labels}}}" if labels else name
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(prefix) and (labels or line[len(name)] in " {")
    )


async def metric_reaches(
    notifier: Notifier, name: str, labels: str, at_least: float, timeout_s: float = 30.0
) -> None:
    """Poll /metrics until the sample reaches `at_least`; fail clearly otherwise."""
    deadline = time.monotonic() + timeout_s
    while await metric(notifier, name, labels) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{{{labels}}} stayed below {at_least} for {timeout_s} s")
        await asyncio.sleep(0.05)


def notifier_settings(tmp_path: Path, smtp_port: int, **overrides: Any) -> NotifierSettings:
    """Fast settings for tests: unique group, own ledger, short back-off."""
    values: dict[str, Any] = {
        "smtp_port": smtp_port,
        "database_url": f"sqlite:///{tmp_path / f'notifier-{uuid.uuid4().hex[:6]}.db'}",
        "group_id": f"test-notifier-{uuid.uuid4().hex[:8]}",
        "instance_id": f"test-{uuid.uuid4().hex[:8]}",
        "http_port": free_port(),
        "retry_base_s": 0.2,
        "retry_max_s": 1.0,
        "global_rate_per_s": 1000.0,
        "digest_check_s": 1.0,
    }
    values.update(overrides)
    return NotifierSettings(**values)


@pytest.fixture
async def start_notifier(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> AsyncIterator[StartNotifier]:
    """Start notifiers on demand; all are stopped gracefully at the end of the test.

    `join=True` starts another member of a group already running (whose offsets must not be
    moved to the end under it).
    """
    running: list[Notifier] = []

    async def start(smtp_port: int, join: bool = False, **overrides: Any) -> Notifier:
        settings = notifier_settings(tmp_path, smtp_port, **overrides)
        if not join:
            await skip_to_end(kafka_settings, settings.group_id)
        stop = asyncio.Event()
        signing = SigningSettings(secret_key=SECRET, public_base_url=BASE_URL)  # type: ignore[arg-type]
        task = asyncio.create_task(run(settings, kafka_settings, signing, stop))
        ledger = Ledger(create_engine(settings.database_url))
        notifier = Notifier(settings, ledger, stop, task)
        running.append(notifier)
        await eventually(
            lambda: sa.inspect(ledger.engine).has_table("notifier_emails"), what="the ledger"
        )
        return notifier

    yield start
    for notifier in running:
        notifier.stop.set()
        await asyncio.wait_for(notifier.task, timeout=30)
        notifier.ledger.engine.dispose()
