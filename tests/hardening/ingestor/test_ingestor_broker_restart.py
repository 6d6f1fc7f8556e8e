"""The broker stops and a fresh, empty one starts on the same port while the ingestor polls.

Without a restart by hand the ingestor must re-create the topics, re-publish the events of
its recent window (same event ids) that the memory-only broker forgot, and keep polling:
changes seen after the restart reach the new broker.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connect311_bus.kafka import decode, ensure_topics
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS
from connect311_ingestor.app import run_pollers, running
from connect311_ingestor.settings import IngestorSettings, Open311Feed
from connect311_local.broker import free_port, start_broker
from tests.integration.ingestor.conftest import FeedServer, read_topic

DEADLINE_S = 30.0


def georeport(rid: str, status: str = "open") -> dict[str, Any]:
    when = datetime.now(UTC) - timedelta(hours=1)
    return {
        "service_request_id": rid,
        "status": status,
        "service_code": "001",
        "service_name": "Pothole",
        "requested_datetime": when.isoformat(),
        "updated_datetime": (when + timedelta(minutes=1 if status == "open" else 30)).isoformat(),
        "lat": 37.76,
        "long": -122.46,
    }


async def events_until(kafka: KafkaSettings, prefix: str, want: set[tuple[str, str]]) -> list[Any]:
    """The request events of this test on the broker, once they include every wanted pair."""
    deadline = time.monotonic() + DEADLINE_S
    seen: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        try:
            records = await read_topic(kafka, REQUEST_EVENTS.name, prefix, deadline_s=5)
        except (AssertionError, Exception):  # the topic may not be back yet
            records = []
        events = [decode(REQUEST_EVENT_ADAPTER, r.value) for r in records]
        seen = {(e.request.source_request_id, e.event_type) for e in events}
        if want <= seen:
            return events
        await asyncio.sleep(0.2)
    raise AssertionError(f"wanted {want}, saw {seen}")


async def test_poller_recovers_from_a_broker_restart_and_republishes_its_window(
    tmp_path: Path, feed_server: FeedServer, source_name: str
) -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    docs = [georeport("A")]
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]"))
    feed_server.route(
        "/v2/requests.json",
        lambda _query: (200, {"Content-Type": "application/json"}, json.dumps(docs).encode()),
    )
    feed = Open311Feed(
        source=source_name, base_url=f"{feed_server.base_url}/v2", backfill_days=1, use_page=False
    )
    settings = IngestorSettings(
        database_url=f"sqlite:///{tmp_path}/ingestor.db",
        open311_feeds=[feed],
        poll_interval_s=0.3,
        broker_check_s=0.3,
        http_retries=0,
    )
    prefix = f"{source_name}:"
    first = start_broker(port, tmp_path / "b1.log")
    try:
        await ensure_topics(kafka)
        async with running(settings, kafka) as runtime:
            stop = asyncio.Event()
            pollers = asyncio.create_task(run_pollers(runtime, stop))
            try:
                (opened,) = await events_until(kafka, prefix, {("A", "request.opened")})
                first.stop()
                second = start_broker(port, tmp_path / "b2.log")
                try:
                    # The feed has not changed: only the re-publish can bring A back.
                    (again,) = await events_until(kafka, prefix, {("A", "request.opened")})
                    assert again.event_id == opened.event_id
                    docs[:] = [georeport("A", "closed"), georeport("B")]
                    events = await events_until(
                        kafka, prefix, {("A", "request.closed"), ("B", "request.opened")}
                    )
                    # At-least-once: copies keep their ids, so three distinct events in all.
                    assert len({e.event_id for e in events}) == 3
                    metrics = runtime.metrics.render().decode().splitlines()
                    (line,) = [x for x in metrics if x.startswith("ingestor_broker_recoveries_t")]
                    assert float(line.split()[-1]) >= 1
                    # The service samples its own event loop while it runs (issue 12).
                    samples = "ingestor_event_loop_lag_seconds_count"
                    (lag,) = [x for x in metrics if x.startswith(samples)]
                    assert float(lag.split()[-1]) > 0
                finally:
                    second.stop()
            finally:
                stop.set()
                await asyncio.wait_for(pollers, 20)
    finally:
        first.stop()


async def test_push_while_the_broker_is_away_is_refused_then_accepted_when_back(
    tmp_path: Path, source_name: str
) -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    settings = IngestorSettings(
        database_url=f"sqlite:///{tmp_path}/push.db",
        push_tokens="tok",  # type: ignore[arg-type]
        push_source=source_name,
        publish_timeout_s=1.0,
    )
    record = georeport("P")
    auth = {"Authorization": "Bearer tok"}
    first = start_broker(port, tmp_path / "p1.log")
    try:
        await ensure_topics(kafka)
        async with running(settings, kafka) as runtime:
            transport = httpx.ASGITransport(app=runtime.http_app())
            async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
                first.stop()
                away = await http.post("/api/v1/requests", json=record, headers=auth)
                assert away.status_code == 503 and away.headers["Retry-After"]
                assert "nothing was stored" in away.json()["detail"]
                assert runtime.store.count_requests(source_name) == 0
                second = start_broker(port, tmp_path / "p2.log")
                try:
                    await ensure_topics(kafka)
                    back = await http.post("/api/v1/requests", json=record, headers=auth)
                    assert back.status_code == 200
                    assert back.json()["results"][0]["event_type"] == "request.opened"
                    await events_until(kafka, f"{source_name}:", {("P", "request.opened")})
                finally:
                    second.stop()
    finally:
        first.stop()
