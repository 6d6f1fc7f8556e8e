"""The broker stops and a fresh, empty one starts on the same port while the map API runs.

Without a restart by hand the map API must: reconnect its consumers (new events reach the
database), reconnect its publisher (sign-ups work), re-create the topics, and re-publish every
stored subscription the memory-only broker forgot.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.topics import ALL_TOPICS, REQUEST_EVENTS, SUBSCRIPTIONS
from connect311_local.broker import LocalBroker, free_port, start_broker
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.integration.map_api.test_map_api_kafka import DEADLINE_S, find, poll
from tests.unit.map_api.factories import lifecycle

TARGET = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 300}


@contextmanager
def own_broker(port: int, log: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own (the session broker must not be restarted)."""
    broker = start_broker(port, log)
    try:
        yield broker
    finally:
        broker.stop()


METRICS_TOKEN = "restart-scraper"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@contextmanager
def serve(db: Path, kafka: KafkaSettings) -> Iterator[str]:
    """The real app with consumers under uvicorn in a thread; yields its base URL."""
    port = free_port()
    settings = MapApiSettings(
        database_url=f"sqlite:///{db}",
        http_port=port,
        consume=True,
        broker_check_s=0.3,
        publish_timeout_s=1.0,
        metrics_token=METRICS_TOKEN,
    )
    signing = SigningSettings(secret_key="restart", public_base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, kafka=kafka, signing=signing)
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + DEADLINE_S
    while not _healthy(base):
        assert time.monotonic() < deadline, "map API did not start"
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _topic_names(kafka: KafkaSettings) -> set[str]:
    """Topic names by a metadata request for all topics (which creates nothing)."""
    admin = AIOKafkaAdminClient(**kafka.connection_kwargs())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _topics(kafka: KafkaSettings) -> dict[str, int]:
    """Partitions per contract topic (asking by name auto-creates on the local broker)."""
    admin = AIOKafkaAdminClient(**kafka.connection_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
        return {d["topic"]: len(d["partitions"]) for d in described if d.get("error_code", 0) == 0}
    finally:
        await admin.close()


async def _send_events(kafka: KafkaSettings, source_id: str) -> None:
    prod = producer(kafka, "restart-test")
    await prod.start()
    try:
        for ev in lifecycle(source_id):
            key = ev.request.service_request_id.encode()
            await prod.send_and_wait(REQUEST_EVENTS.name, encode(ev), key=key)
    finally:
        await prod.stop()


async def _wait_for_topic(kafka: KafkaSettings, name: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while name not in await _topic_names(kafka):
        assert time.monotonic() < deadline, f"{name} was never re-created"
        await asyncio.sleep(0.1)


def _recoveries(text: str) -> float:
    prefix = "map_api_broker_recoveries_total "
    return sum(float(x.removeprefix(prefix)) for x in text.splitlines() if x.startswith(prefix))


async def test_map_api_recovers_from_a_broker_restart_without_a_restart_by_hand(
    tmp_path: Path,
) -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    tag = uuid.uuid4().hex[:8]
    email = f"restart-{tag}@example.com"
    with own_broker(port, tmp_path / "b1.log") as first:
        await ensure_topics(kafka)
        with serve(tmp_path / "api.db", kafka) as base:
            async with httpx.AsyncClient(base_url=base, timeout=20) as http:
                signup = await http.post(
                    "/api/subscriptions", json={"email": email, "target": TARGET}
                )
                assert signup.status_code == 202
                (before,) = await find(
                    kafka, SUBSCRIPTIONS.name, lambda r: email.encode() in (r.value or b"")
                )
                sid = before.key
                await _send_events(kafka, f"a{tag}")
                await poll(
                    lambda: http.get(f"/api/requests/test:a{tag}"),
                    lambda r: r.status_code == 200,
                )

                first.stop()
                # While the broker is away a sign-up is refused soon, with a reason.
                away = await http.post(
                    "/api/subscriptions",
                    json={"email": f"away-{tag}@example.com", "target": TARGET},
                )
                assert away.status_code == 503 and "try again" in away.json()["detail"]
                assert away.elapsed.total_seconds() < 15  # not the client's 40 s request timeout
                with own_broker(port, tmp_path / "b2.log"):
                    # The forgotten subscription comes back on the new broker by itself.
                    await _wait_for_topic(kafka, SUBSCRIPTIONS.name)
                    (again,) = await find(kafka, SUBSCRIPTIONS.name, lambda r: r.key == sid)
                    assert json.loads(again.value)["subscription"]["status"] == "pending"
                    metrics = await http.get("/metrics", headers=SCRAPER)
                    assert _recoveries(metrics.text) >= 1
                    partitions = await _topics(kafka)
                    assert set(partitions) == {t.name for t in ALL_TOPICS}
                    assert partitions[SUBSCRIPTIONS.name] == SUBSCRIPTIONS.partitions
                    # The state consumer reads the new broker's events.
                    await _send_events(kafka, f"b{tag}")
                    detail = await poll(
                        lambda: http.get(f"/api/requests/test:b{tag}"),
                        lambda r: r.status_code == 200,
                    )
                    assert len(detail.json()["timeline"]) == 3
                    # The publisher reconnected: a new sign-up is published.
                    other = f"after-{tag}@example.com"
                    signup = await http.post(
                        "/api/subscriptions", json={"email": other, "target": TARGET}
                    )
                    assert signup.status_code == 202
                    await find(
                        kafka, SUBSCRIPTIONS.name, lambda r: other.encode() in (r.value or b"")
                    )
