"""The broker stops and a fresh, empty one starts on the same port while the notifier runs.

Without a restart by hand the notifier must reconnect its consumer (whose committed offsets
the new broker forgot) and deliver new commands; commands it already sent that are published
again after the restart (same event ids, as a replay from upstream brings them) are dropped
by its ledger, not emailed twice.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp

from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_local.broker import free_port, start_broker
from connect311_notifier.app import run
from tests.integration.notifier.conftest import (
    BASE_URL,
    SECRET,
    addressed_to,
    eventually,
    notifier_settings,
    publish,
)
from tests.support.smtp import SmtpSink
from tests.unit.notifier.factories import matched, subscription


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        return await response.text()


def _sample(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_notifier_recovers_from_a_broker_restart_and_sends_nothing_twice(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    port = free_port()
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}", session_timeout_ms=2000, heartbeat_interval_ms=500
    )
    settings = notifier_settings(tmp_path, smtp_sink.port, broker_check_s=0.5)  # type: ignore[attr-defined]
    signing = SigningSettings(secret_key=SECRET, public_base_url=BASE_URL)  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{settings.http_port}"
    tag = uuid.uuid4().hex[:8]
    early = [matched(subscription(email=f"early-{tag}-{i}@example.org")) for i in range(3)]
    late = [matched(subscription(email=f"late-{tag}-{i}@example.org")) for i in range(3)]
    everyone = [c.subscription.email for c in early + late]
    brokers = [start_broker(port, tmp_path / "b1.log")]
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        await ensure_topics(kafka)
        task = asyncio.create_task(run(settings, kafka, signing, stop))
        await publish(kafka, early)
        await eventually(
            lambda: len(addressed_to(smtp_sink, everyone)) == len(early), what="early emails"
        )

        brokers[0].stop()
        brokers.append(start_broker(port, tmp_path / "b2.log"))
        await ensure_topics(kafka)  # what the map API's and ingestor's broker watches do
        # Upstream replays what the new broker forgot (same event ids), then new work arrives.
        await publish(kafka, early)
        await publish(kafka, late)
        await eventually(
            lambda: len(addressed_to(smtp_sink, everyone)) >= len(early) + len(late),
            what="emails for commands published after the restart",
        )
        await eventually_async(url, "notifier_commands_deduplicated_total", len(early))
        assert not task.done()
        text = await _metrics(url)
        assert _sample(text, "notifier_emails_sent_total") == len(early) + len(late)
        assert _sample(text, "notifier_event_loop_lag_seconds_count") > 0  # sampler runs
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)  # stops while the broker is still up
        for broker in brokers:
            broker.stop()
    got = addressed_to(smtp_sink, everyone)
    assert sorted(m["To"] for m in got) == sorted(everyone), "each recipient exactly one email"


async def eventually_async(url: str, name: str, want: float) -> None:
    """Poll the notifier's metrics until a counter reaches `want` (a busy CI machine is slow)."""
    deadline = asyncio.get_running_loop().time() + 60
    seen = 0.0
    while asyncio.get_running_loop().time() < deadline:
        seen = _sample(await _metrics(url), name)
        if seen >= want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} reached {seen}, wanted {want}")
