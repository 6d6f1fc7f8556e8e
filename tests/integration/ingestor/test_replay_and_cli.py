"""Timed replay on the real broker, and the CLI as a user runs it."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from connect311_bus.kafka import decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS
from connect311_ingestor.app import Runtime
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.records import Accepted
from connect311_ingestor.sources.files import parse_file, replay_file
from connect311_ingestor.store import IngestorStore
from connect311_local.broker import free_port

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "data" / "demo" / "nyc311_2023-02-28_demo.csv"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def small_export(path: Path, rows: int) -> Path:
    with (
        DEMO.open(encoding="utf-8", newline="") as src,
        path.open("w", encoding="utf-8", newline="") as dst,
    ):
        reader = csv.reader(src)
        writer = csv.writer(dst)
        for _, row in zip(range(rows + 1), reader, strict=False):
            writer.writerow(row)
    return path


class FakeClock:
    """Monotonic time that advances only when the replay sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_replay_plays_rows_as_opened_then_closed_in_time_order_and_resumes_silently(
    runtime: Runtime, source_name: str, tmp_path: Path, topic_reader: Reader
) -> None:
    export = small_export(tmp_path / "day.csv", 40)
    profile = get_profile("nyc").model_copy(update={"source": source_name})
    clock = FakeClock()
    summary = await replay_file(
        runtime.ingestor,
        export,
        profile,
        speed=60,
        shift_to_now=True,
        clock=lambda: NOW,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for r in await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    ]
    opened = [e for e in events if e.event_type == "request.opened"]
    closed = [e for e in events if e.event_type == "request.closed"]
    rows = [r.request for r in parse_file(export, profile) if isinstance(r, Accepted)]
    closing = [r for r in rows if r.closed_datetime and r.closed_datetime > r.requested_datetime]
    assert (len(opened), len(closed)) == (len(rows), len(closing))
    assert summary.events == {"request.opened": len(rows), "request.closed": len(closing)}
    assert len(opened) == len({e.request.service_request_id for e in events})
    assert min(e.request.requested_datetime for e in opened) == NOW
    assert all(
        e.request.status == "open" and not e.backfill
        for e in opened
        if e.request.closed_datetime is None
    )
    assert closed and all(e.previous_status == "open" for e in closed)
    # Wall time follows feed time at 60x: the last cue is due (last - first) / 60 s in.
    last = max(e.request.closed_datetime or e.request.requested_datetime for e in events)
    assert abs(clock.now - (last - NOW).total_seconds() / 60) < 0.2
    # A restarted replay resumes on the saved clock: everything is due and unchanged.
    resumed_clock = FakeClock()
    again = await replay_file(
        runtime.ingestor,
        export,
        profile,
        speed=60,
        shift_to_now=True,
        clock=lambda: NOW + timedelta(days=2),
        monotonic=resumed_clock.monotonic,
        sleep=resumed_clock.sleep,
    )
    assert again.events == {} and resumed_clock.sleeps == []


def _env(kafka: KafkaSettings, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "INGESTOR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        **extra,
    }


def _cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connect311_ingestor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_help_lists_the_commands(tmp_path: Path, kafka_settings: KafkaSettings) -> None:
    result = _cli("--help", env=_env(kafka_settings, tmp_path))
    assert result.returncode == 0
    for command in ("import", "replay", "poll", "run", "status"):
        assert command in result.stdout
    assert "--shift-to-now" in _cli("replay", "--help", env=_env(kafka_settings, tmp_path)).stdout


def test_cli_import_prints_a_summary_and_explains_errors(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    export = small_export(tmp_path / "cli.csv", 60)
    env = _env(kafka_settings, tmp_path)
    # The first 55 rows hold one without coordinates (row 54): a reject to report.
    done = _cli("import", str(export), "--profile", "nyc", "--limit", "55", env=env)
    assert done.returncode == 0, done.stderr
    assert "records read" in done.stdout and "request.opened" in done.stdout
    status = _cli("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "nyc311" in status.stdout and "missing_coordinates" in status.stdout
    bad_profile = _cli("import", str(export), "--profile", "atlantis", env=env)
    assert bad_profile.returncode == 2 and "unknown profile" in bad_profile.stderr
    no_broker = _cli(
        "import",
        str(export),
        "--profile",
        "nyc",
        env={
            **env,
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "INGESTOR_BROKER_CONNECT_ATTEMPTS": "1",
        },
    )
    assert no_broker.returncode == 2
    assert "connect311 broker" in no_broker.stderr
    no_feeds = _cli("poll", env=env)
    assert no_feeds.returncode == 2 and "INGESTOR_OPEN311_FEEDS" in no_feeds.stderr


def test_cli_serve_answers_health_and_stops_on_sigterm(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    port = free_port()
    env = _env(kafka_settings, tmp_path, INGESTOR_HTTP_PORT=str(port), INGESTOR_PUSH_TOKENS="t")
    process = subprocess.Popen(
        # At WARNING the HTTP server's access lines stay out too (uvicorn set them to INFO).
        [sys.executable, "-m", "connect311_ingestor", "--log-level", "warning", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health is not None and health.status_code == 200
        assert health.json()["broker"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert process.stderr is not None and process.stdout is not None
        printed = process.stderr.read() + process.stdout.read()
        assert "/healthz" not in printed and " INFO " not in printed, printed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_poll_reads_configured_feeds_then_stops_on_sigterm(
    tmp_path: Path, kafka_settings: KafkaSettings, feed_server: Any, source_name: str
) -> None:
    now = datetime.now(UTC)
    doc = [
        {
            "service_request_id": "cli-1",
            "status": "open",
            "requested_datetime": (now - timedelta(hours=1)).isoformat(),
            "lat": 27.77,
            "long": -82.64,
        }
    ]
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]"))
    feed_server.route("/v2/requests.json", feed_server.reply(200, json.dumps(doc)))
    feeds = [{"source": source_name, "base_url": f"{feed_server.base_url}/v2", "use_page": False}]
    env = _env(kafka_settings, tmp_path, INGESTOR_OPEN311_FEEDS=json.dumps(feeds))
    process = subprocess.Popen(
        [sys.executable, "-m", "connect311_ingestor", "poll"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = IngestorStore.from_url(env["INGESTOR_DATABASE_URL"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (store.get_cursor(source_name) or {}).get(
            "caught_up"
        ):
            time.sleep(0.1)
        assert store.count_requests(source_name) == 1
        store.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
