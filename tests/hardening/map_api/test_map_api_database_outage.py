"""The database is locked while events flow: writes answer 503 with a reason, the state
consumer loses nothing, and both recover by themselves once the lock is gone.

(SQLite in WAL mode keeps serving reads under a writer's lock, so sign-up is the probe.)"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from connect311_bus.kafka import encode, producer
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.topics import REQUEST_EVENTS
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.integration.map_api.test_map_api_kafka import DEADLINE_S, poll
from tests.support.uvicorn_thread import serving
from tests.unit.map_api.factories import lifecycle

AREA = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 300}


@contextmanager
def serve(db: Path, kafka: KafkaSettings, tag: str) -> Iterator[str]:
    """The app with its consumers, a short SQLite busy timeout, under uvicorn in a thread."""
    port = free_port()
    settings = MapApiSettings(
        database_url=f"sqlite:///{db}",
        consume=True,
        sqlite_busy_timeout_ms=200,
        group_id=f"map-api-state-{tag}",
        feedback_group=f"map-api-feedback-{tag}",
    )
    signing = SigningSettings(secret_key="outage", public_base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, kafka=kafka, signing=signing)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    with serving(config, timeout_s=DEADLINE_S) as base:
        yield base


async def test_locked_database_gives_503_then_everything_recovers(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    db = tmp_path / "outage.db"
    prod = producer(kafka_settings, "outage-test")
    await prod.start()
    try:
        with serve(db, kafka_settings, tag) as base:
            async with httpx.AsyncClient(base_url=base, timeout=20) as http:
                holder = sqlite3.connect(db, timeout=1)
                holder.execute("BEGIN EXCLUSIVE")
                try:
                    for ev in lifecycle(f"db{tag}"):
                        key = ev.request.service_request_id.encode()
                        await prod.send_and_wait(REQUEST_EVENTS.name, encode(ev), key=key)
                    refused = await http.post(
                        "/api/subscriptions", json={"email": f"{tag}@example.com", "target": AREA}
                    )
                    assert refused.status_code == 503
                    assert refused.headers["Retry-After"]
                    assert "database unavailable" in refused.json()["detail"]
                    assert "locked" in refused.json()["detail"]
                finally:
                    holder.rollback()
                    holder.close()
                # Nothing was lost while the consumer could not write: all three events land.
                detail = await poll(
                    lambda: http.get(f"/api/requests/test:db{tag}"),
                    lambda r: r.status_code == 200 and len(r.json()["timeline"]) == 3,
                )
                assert detail.json()["properties"]["status"] == "closed"
                again = await http.post(
                    "/api/subscriptions", json={"email": f"{tag}@example.com", "target": AREA}
                )
                assert again.status_code == 202
    finally:
        await prod.stop()
