"""The `connect311-matcher run` process: ready after catch-up, matches, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import SubscriptionChanged
from connect311_contracts.topics import TopicSpec
from connect311_local.broker import free_port
from tests.unit.matcher.factories import circle, event, request

CLI = Path(sys.executable).parent / "connect311-matcher"
SPOT = (-56.5, -121.25)


def test_help_lists_the_run_command() -> None:
    out = subprocess.run([CLI, "--help"], capture_output=True, text=True, check=True).stdout
    assert "run" in out
    out = subprocess.run([CLI, "run", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--http-port" in out


async def test_process_matches_then_stops_cleanly_on_sigterm(kafka_settings: KafkaSettings) -> None:
    tag = uuid.uuid4().hex[:8]
    events = TopicSpec(f"c.{tag}.events", 2, "id", "test")
    subs = TopicSpec(f"c.{tag}.subs", 1, "id", "test", compacted=True)
    notes = TopicSpec(f"c.{tag}.notes", 1, "id", "test")
    await ensure_topics(kafka_settings, [events, subs, notes])
    prod = producer(kafka_settings, "cli-test")
    await prod.start()
    sub = circle(*SPOT, 300, email="cli@example.org")
    await prod.send_and_wait(
        subs.name, encode(SubscriptionChanged(subscription=sub)), key=sub.subscription_id.encode()
    )
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "MATCHER_GROUP_ID": f"cli-{tag}",
        "MATCHER_EVENTS_TOPIC": events.name,
        "MATCHER_SUBSCRIPTIONS_TOPIC": subs.name,
        "MATCHER_NOTIFICATIONS_TOPIC": notes.name,
    }
    proc = await asyncio.create_subprocess_exec(CLI, "run", "--http-port", str(port), env=env)
    try:
        async with aiohttp.ClientSession() as http:
            await _until_ready(http, f"http://127.0.0.1:{port}/healthz", proc)
            ev = event(request(*SPOT, source_id=f"cli-{tag}"))
            await prod.send_and_wait(events.name, encode(ev), key=b"x")
            metric = 'matcher_matches_total{kind="circle"} 1.0'
            await _until_metric(http, f"http://127.0.0.1:{port}/metrics", metric)
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                exposed = (await response.text()).splitlines()
            # The process samples its own event loop while it runs (issue 12).
            (lag,) = [x for x in exposed if x.startswith("matcher_event_loop_lag_seconds_count")]
            assert float(lag.split()[-1]) > 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        await prod.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _until_ready(
    http: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.returncode is None, "the matcher exited early"
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("matcher never became ready")


async def _until_metric(http: aiohttp.ClientSession, url: str, line: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with http.get(url) as response:
            if line in await response.text():
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"metric never reached: {line}")
