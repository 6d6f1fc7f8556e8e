"""Sources are operable: last poll and error are recorded and listed, a watermark can be
reset or moved, a past window can be backfilled once, and an empty first poll warns."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from typer.testing import CliRunner

from connect311_bus.kafka import decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS
from connect311_ingestor.app import Runtime
from connect311_ingestor.cli import app
from connect311_ingestor.pipeline import IngestSummary
from connect311_ingestor.settings import Open311Feed, SeeClickFixFeed
from connect311_ingestor.sources.http import Backoff, Fetcher
from connect311_ingestor.sources.loop import run_forever
from connect311_ingestor.sources.open311 import Open311Poller
from connect311_ingestor.sources.seeclickfix import SeeClickFixPoller
from connect311_ingestor.store import IngestorStore

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
NOW = datetime(2024, 5, 3, 0, 0, tzinfo=UTC)
JSON = {"Content-Type": "application/json"}


def georeport(rid: str, requested: datetime) -> dict[str, Any]:
    stamp = requested.isoformat()
    return {
        "service_request_id": rid,
        "status": "open",
        "service_code": "001",
        "requested_datetime": stamp,
        "updated_datetime": stamp,
        "lat": 37.76,
        "long": -122.46,
    }


def windowed(docs: list[dict[str, Any]]) -> Callable[[dict[str, str]], tuple[int, Any, bytes]]:
    """A GeoReport requests endpoint that honours start_date/end_date."""

    def answer(query: dict[str, str]) -> tuple[int, Any, bytes]:
        start = datetime.fromisoformat(query["start_date"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(query["end_date"].replace("Z", "+00:00"))
        hits = [d for d in docs if start <= datetime.fromisoformat(d["requested_datetime"]) < end]
        return 200, JSON, json.dumps(hits).encode()

    return answer


class StopAfterOnePoll:
    """A poller that sets `stop` once its one poll finished (however it ended)."""

    def __init__(self, poller: Open311Poller, stop: asyncio.Event) -> None:
        self.poller, self.stop = poller, stop

    @property
    def source(self) -> str:
        return self.poller.source

    async def poll_once(self) -> IngestSummary:
        try:
            return await self.poller.poll_once()
        finally:
            self.stop.set()

    async def backfill_window(
        self, since: datetime, until: datetime | None = None
    ) -> IngestSummary:
        return await self.poller.backfill_window(since, until)


async def test_an_empty_first_poll_warns_and_every_poll_is_recorded_with_its_error(
    runtime: Runtime,
    feed_server: Any,
    no_sleep: Any,
    source_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]", **JSON))
    feed_server.route("/v2/requests.json", feed_server.reply(200, "[]", **JSON))
    feed = Open311Feed(
        source=source_name, base_url=f"{feed_server.base_url}/v2", use_page=False, backfill_days=1
    )
    async with httpx.AsyncClient() as client:
        fetch = Fetcher(client, max_bytes=100_000, retries=1, backoff=Backoff(), sleep=no_sleep)
        poller = Open311Poller(feed, fetch, runtime.ingestor, clock=lambda: NOW)
        with caplog.at_level(logging.WARNING, logger="connect311_ingestor.sources.loop"):
            stop = asyncio.Event()
            await run_forever(
                StopAfterOnePoll(poller, stop), 0.01, runtime.metrics, stop, runtime.store
            )
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "first poll found no records" in warnings[0] and "backfill" in warnings[0]
        health = runtime.store.source_health()[source_name]
        assert health["last_ok_at"] == health["last_poll_at"] and health["last_error"] is None

        caplog.clear()
        feed_server.route("/v2/requests.json", feed_server.reply(500, "down for maintenance"))
        stop = asyncio.Event()
        await run_forever(
            StopAfterOnePoll(poller, stop), 0.01, runtime.metrics, stop, runtime.store
        )
    health = runtime.store.source_health()[source_name]
    assert health["last_error_at"] == health["last_poll_at"] > health["last_ok_at"]
    assert "500" in health["last_error"]
    assert not [r for r in caplog.records if "first poll found" in r.getMessage()]


async def test_backfill_fetches_a_past_window_once_as_history_and_keeps_the_watermark(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str, topic_reader: Reader
) -> None:
    old = [georeport("old-1", NOW - timedelta(days=9)), georeport("old-2", NOW - timedelta(days=8))]
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]", **JSON))
    feed_server.route("/v2/requests.json", windowed(old))
    feed = Open311Feed(source=source_name, base_url=f"{feed_server.base_url}/v2", use_page=False)
    watermark = {"requests_until": "2024-05-02T00:00:00Z", "caught_up": True}
    runtime.store.set_cursor(source_name, watermark)
    async with httpx.AsyncClient() as client:
        fetch = Fetcher(client, max_bytes=100_000, retries=1, backoff=Backoff(), sleep=no_sleep)
        poller = Open311Poller(feed, fetch, runtime.ingestor, clock=lambda: NOW)
        summary = await poller.backfill_window(NOW - timedelta(days=10), NOW - timedelta(days=7))
    assert summary.accepted == 2 and summary.events == {"request.opened": 2}
    assert runtime.store.get_cursor(source_name) == watermark  # live polling is untouched
    starts = [q["start_date"] for path, q in feed_server.seen if path == "/v2/requests.json"]
    assert starts == ["2024-04-23T00:00:00Z", "2024-04-24T00:00:00Z", "2024-04-25T00:00:00Z"]
    records = await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    events = [decode(REQUEST_EVENT_ADAPTER, r.value) for r in records]
    assert len(events) == 2 and all(e.backfill for e in events)  # history: never alerted


async def test_seeclickfix_backfill_asks_for_the_window_and_marks_history(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str
) -> None:
    issue = {
        "id": 7,
        "status": "Open",
        "summary": "Pothole",
        "lat": 38.9,
        "lng": -77.0,
        "created_at": "2024-04-01T10:00:00-04:00",
        "updated_at": "2024-04-01T10:00:00-04:00",
    }
    page = {"metadata": {"pagination": {"next_page_url": None}}, "issues": [issue]}
    feed_server.route("/api/v2/issues", feed_server.reply(200, json.dumps(page), **JSON))
    feed = SeeClickFixFeed(
        source=source_name, base_url=f"{feed_server.base_url}/api/v2", place_url="dc"
    )
    async with httpx.AsyncClient() as client:
        fetch = Fetcher(client, max_bytes=100_000, retries=1, backoff=Backoff(), sleep=no_sleep)
        poller = SeeClickFixPoller(feed, fetch, runtime.ingestor, clock=lambda: NOW)
        summary = await poller.backfill_window(datetime(2024, 3, 1, tzinfo=UTC), NOW)
    assert summary.events == {"request.opened": 1}
    (_, query), *_ = feed_server.seen
    assert query["updated_at_after"] == "2024-03-01T00:00:00Z"
    assert query["updated_at_before"] == "2024-05-03T00:00:00Z"
    assert runtime.store.get_cursor(source_name) is None


def test_sources_lists_resets_and_moves_watermarks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ops.db"
    feeds = json.dumps([{"source": "sf311", "base_url": "https://x/v2", "updates": True}])
    env = {"INGESTOR_DATABASE_URL": url, "INGESTOR_OPEN311_FEEDS": feeds, "COLUMNS": "300"}
    store = IngestorStore.from_url(url)
    try:
        store.set_cursor("sf311", {"requests_until": "2024-05-01T00:00:00Z", "caught_up": True})
        store.record_poll("sf311", "FetchError: HTTP 503 from https://x/v2/requests.json")
        store.set_cursor("old", {"last_import": "old.csv", "imported_at": "2024-01-01T00:00:00Z"})
        runner = CliRunner()
        listed = runner.invoke(app, ["sources"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "requests_until=2024-05-01T00:00:00Z" in listed.output
        assert "FAILED" in listed.output and "HTTP 503" in listed.output
        assert "file (not configured)" in listed.output

        moved = runner.invoke(app, ["sources", "set-watermark", "sf311", "2024-04-20"], env=env)
        assert moved.exit_code == 0, moved.output
        assert store.get_cursor("sf311") == {
            "requests_until": "2024-04-20T00:00:00Z",
            "updates_until": "2024-04-20T00:00:00Z",
            "caught_up": True,
        }
        bad = runner.invoke(app, ["sources", "set-watermark", "sf311", "last tuesday"], env=env)
        assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
        unknown = runner.invoke(app, ["sources", "set-watermark", "nyc", "2024-04-20"], env=env)
        assert unknown.exit_code == 2 and "INGESTOR_OPEN311_FEEDS" in unknown.output

        reset = runner.invoke(app, ["sources", "reset", "sf311"], env=env)
        assert reset.exit_code == 0, reset.output
        assert store.get_cursor("sf311") is None
        again = runner.invoke(app, ["sources", "reset", "sf311"], env=env)
        assert again.exit_code == 2 and "has no watermark" in again.output
    finally:
        store.close()


def test_the_backfill_command_fetches_the_window_of_a_configured_feed(
    tmp_path: Path, kafka_settings: KafkaSettings, feed_server: Any, source_name: str
) -> None:
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]", **JSON))
    feed_server.route(
        "/v2/requests.json", windowed([georeport("9", datetime(2024, 4, 2, 12, tzinfo=UTC))])
    )
    feeds = [{"source": source_name, "base_url": f"{feed_server.base_url}/v2", "use_page": False}]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "INGESTOR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "INGESTOR_OPEN311_FEEDS": json.dumps(feeds),
        "COLUMNS": "200",
    }
    args = ["backfill", source_name, "--since", "2024-04-01", "--until", "2024-04-03"]
    done = subprocess.run(
        [sys.executable, "-m", "connect311_ingestor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "request.opened" in done.stdout and "marked backfill" in done.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "connect311_ingestor", "backfill", "nope", "--since", "2024-04-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 2 and "not a configured feed" in wrong.stderr
