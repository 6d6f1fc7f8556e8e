"""The map API against the real broker: consumers, publisher, dead letters, SSE, republish."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import TopicPartition

from connect311_bus.kafka import consumer, encode, producer
from connect311_contracts.notifications import recipient_key
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.subscriptions import SubscriptionBounced
from connect311_contracts.topics import (
    DEAD_LETTERS,
    NOTIFICATIONS,
    REQUEST_EVENTS,
    SUBSCRIPTION_FEEDBACK,
    SUBSCRIPTIONS,
)
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import lifecycle

DEADLINE_S = 40
ADMIN = {"Authorization": "Bearer adm"}  # also reads /metrics


@contextmanager
def serve(db: Path, kafka: KafkaSettings, tag: str) -> Iterator[str]:
    """Run the real app (consumers included) under uvicorn in a thread; yields its base URL."""
    port = free_port()
    settings = MapApiSettings(
        database_url=f"sqlite:///{db}",
        http_port=port,
        consume=True,
        admin_token="adm",
        group_id=f"map-api-state-{tag}",
        feedback_group=f"map-api-feedback-{tag}",
    )
    signing = SigningSettings(secret_key="it-secret", public_base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, kafka=kafka, signing=signing)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        raise AssertionError("map API did not become healthy")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


async def find(
    kafka: KafkaSettings, topic: str, match: Callable[[Any], bool], want: int = 1
) -> list[Any]:
    """Read a topic from the beginning (no group) until `want` records match, or fail."""
    reader = consumer(kafka, None, enable_auto_commit=False)
    await reader.start()
    try:
        parts = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        found: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            batches = await reader.getmany(timeout_ms=300)
            found += [r for rs in batches.values() for r in rs if match(r)]
            if len(found) >= want:
                return found
        raise AssertionError(f"only {len(found)} of {want} matching records on {topic}")
    finally:
        await reader.stop()


async def poll(fetch: Callable[[], Any], ok: Callable[[Any], bool]) -> Any:
    """Call `fetch` until `ok` holds (deadline, no fixed sleeps between successes)."""
    deadline = time.monotonic() + DEADLINE_S
    last = None
    while time.monotonic() < deadline:
        last = await fetch()
        if ok(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met; last value {last!r}")


async def sse_events(base: str, into: list[dict[str, Any]]) -> None:
    """Collect `event: request` payloads from the live stream."""
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", f"{base}/api/stream") as response,
    ):
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "request":
                into.append(json.loads(line.split(":", 1)[1]))


def _metric(text: str, outcome: str) -> float:
    prefix = f'map_api_events_total{{outcome="{outcome}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


@pytest.fixture
async def kafka_producer(kafka_settings: KafkaSettings) -> AsyncIterator[Any]:
    prod = producer(kafka_settings, "map-api-test")
    await prod.start()
    yield prod
    await prod.stop()


async def test_events_state_stream_deadletters_signup_bounce_republish(
    kafka_settings: KafkaSettings, kafka_producer: Any, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    rid_source = f"it{tag}"
    db = tmp_path / "it.db"
    email = f"it-{tag}@example.com"
    with serve(db, kafka_settings, tag) as base:
        streamed: list[dict[str, Any]] = []
        stream_task = asyncio.create_task(sse_events(base, streamed))
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            await poll(
                lambda: http.get("/metrics", headers=ADMIN),
                lambda r: "map_api_sse_clients 1.0" in r.text,
            )
            events = lifecycle(rid_source)
            poison_key = f"poison-{tag}".encode()
            # At-least-once delivery: every event arrives twice, around a poison message.
            for ev in [*events, None, *events]:
                value = encode(ev) if ev else b"{not json"
                key = ev.request.service_request_id.encode() if ev else poison_key
                await kafka_producer.send_and_wait(REQUEST_EVENTS.name, value, key=key)
            detail = await poll(
                lambda: http.get(f"/api/requests/test:{rid_source}"),
                lambda r: r.status_code == 200 and len(r.json()["timeline"]) == 3,
            )
            assert detail.json()["properties"]["status"] == "closed"

            async def seen() -> list[dict[str, Any]]:
                return streamed

            await poll(seen, lambda s: any(f["id"] == f"test:{rid_source}" for f in s))
            await poll(
                lambda: http.get("/metrics", headers=ADMIN),
                lambda r: _metric(r.text, "duplicate") >= 3,
            )
            again = await http.get(f"/api/requests/test:{rid_source}")
            assert len(again.json()["timeline"]) == 3
            letters = await find(
                kafka_settings,
                DEAD_LETTERS.name,
                lambda r: poison_key.decode() in (r.value or b"").decode(),
            )
            body = json.loads(letters[0].value)
            assert body["service"] == "map-api" and body["raw"] == "{not json"
            admin = await http.get(
                "/api/admin/deadletters", headers={"Authorization": "Bearer adm"}
            )
            assert any(d["topic"] == REQUEST_EVENTS.name for d in admin.json())

            target = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 300}
            signup = await http.post("/api/subscriptions", json={"email": email, "target": target})
            assert signup.status_code == 202
            key = recipient_key(email).encode()
            (note,) = await find(kafka_settings, NOTIFICATIONS.name, lambda r: r.key == key)
            confirmation = json.loads(note.value)
            assert confirmation["event_type"] == "subscription.confirmation_requested"
            sid = confirmation["subscription"]["subscription_id"]
            confirm_path = confirmation["confirm_url"].removeprefix(base)
            assert (await http.get(confirm_path)).status_code in (200, 303)

            bounce = SubscriptionBounced(
                subscription_id=sid, reason="550 no such user", permanent=True, disable=True
            )
            await kafka_producer.send_and_wait(
                SUBSCRIPTION_FEEDBACK.name, encode(bounce), key=sid.encode()
            )
            states = await find(
                kafka_settings, SUBSCRIPTIONS.name, lambda r: r.key == sid.encode(), want=3
            )
            assert [json.loads(r.value)["subscription"]["status"] for r in states] == [
                "pending",
                "active",
                "disabled",
            ]
        stream_task.cancel()
        await asyncio.gather(stream_task, return_exceptions=True)
    # A restart re-publishes every stored subscription (the local broker forgets them).
    with serve(db, kafka_settings, tag + "b"):
        states = await find(
            kafka_settings, SUBSCRIPTIONS.name, lambda r: r.key == sid.encode(), want=4
        )
        assert json.loads(states[-1].value)["subscription"]["status"] == "disabled"
