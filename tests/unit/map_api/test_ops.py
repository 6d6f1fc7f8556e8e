"""Health, metrics, admin endpoints, database outages and the live-update fan-out."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.settings import SigningSettings
from connect311_map_api.db.tables import dead_letters
from connect311_map_api.live import Broadcaster
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import RecordingPublisher, lifecycle


def test_healthz_reports_database_and_broker(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "broker": "ok"}


def test_metrics_expose_latency_and_subscription_counts(admin_client: TestClient) -> None:
    admin_client.get("/api/requests")
    text = admin_client.get("/metrics", headers={"Authorization": "Bearer s3cret-admin"}).text
    assert (
        'map_api_request_seconds_count{method="GET",route="/api/requests",status="200"} 1.0' in text
    )
    assert 'map_api_subscriptions{status="pending"} 0.0' in text
    assert "map_api_sse_clients 0.0" in text


def test_admin_is_disabled_without_a_token(client: TestClient) -> None:
    response = client.get("/api/admin/subscribers")
    assert response.status_code == 503 and "MAP_API_ADMIN_TOKEN" in response.json()["detail"]


@pytest.fixture
def admin_client(
    tmp_path: Path, publisher: RecordingPublisher, signing: SigningSettings
) -> TestClient:
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    with make_client(url, publisher, signing, admin_token="s3cret-admin") as test_client:
        yield test_client


def test_admin_needs_the_bearer_token(admin_client: TestClient) -> None:
    assert admin_client.get("/api/admin/subscribers").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert admin_client.get("/api/admin/subscribers", headers=wrong).status_code == 401
    good = {"Authorization": "Bearer s3cret-admin"}
    body = admin_client.get("/api/admin/subscribers", headers=good).json()
    assert body["counts"]["active"] == 0


def test_dead_letters_are_listed_and_replayed(admin_client: TestClient) -> None:
    engine: Engine = admin_client.app.state.ctx.engine  # type: ignore[attr-defined]
    good = lifecycle("dl")[0].model_dump_json()
    with engine.begin() as conn:
        for raw, offset in ((good, 1), ("{not json", 2)):
            conn.execute(
                dead_letters.insert(),
                {
                    "topic": "requests.events.v1",
                    "partition": 0,
                    "offset": offset,
                    "key": None,
                    "reason": "test",
                    "raw": raw,
                    "received_at": datetime(2024, 1, 1),
                },
            )
    headers = {"Authorization": "Bearer s3cret-admin"}
    listed = admin_client.get("/api/admin/deadletters", headers=headers).json()
    assert [d["offset"] for d in listed] == [2, 1] and "raw" not in listed[0]
    result = admin_client.post("/api/admin/deadletters/replay", headers=headers).json()
    assert result == {"replayed": 1, "still_failing": 1}
    assert admin_client.get("/api/requests/test:dl").status_code == 200
    again = admin_client.post("/api/admin/deadletters/replay", headers=headers).json()
    assert again == {"replayed": 0, "still_failing": 1}


def test_locked_database_answers_503_with_reason(
    tmp_path: Path, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    path = tmp_path / "locked.db"
    with make_client(f"sqlite:///{path}", publisher, signing, sqlite_busy_timeout_ms=100) as client:
        holder = sqlite3.connect(path, timeout=0.1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            response = client.post(
                "/api/subscriptions",
                json={
                    "email": "lock@example.com",
                    "target": {"kind": "circle", "lat": 1, "long": 1, "radius_m": 100},
                },
            )
        finally:
            holder.rollback()
            holder.close()
    assert response.status_code == 503
    assert "database unavailable" in response.json()["detail"]
    assert "locked" in response.json()["detail"]


def test_unreachable_postgres_answers_503(
    postgres_database: str, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    import psycopg

    with make_client(postgres_database, publisher, signing) as client:
        admin_url = postgres_database.rsplit("/", 1)[0].replace("+psycopg", "") + "/test"
        name = postgres_database.rsplit("/", 1)[1]
        client.app.state.ctx.engine.dispose()  # type: ignore[attr-defined]
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        response = client.get("/api/requests")
        health = client.get("/healthz")
    assert response.status_code == 503 and "database unavailable" in response.json()["detail"]
    assert health.status_code == 503 and health.json()["database"].startswith("unavailable")


async def test_broadcaster_fans_out_and_bounds_slow_clients() -> None:
    hub = Broadcaster()
    async with hub.subscribe() as fast, hub.subscribe() as slow:
        assert hub.clients == 2
        for i in range(1_005):
            hub.publish({"n": i})
        assert fast.qsize() == slow.qsize() == 1_000
        assert (await asyncio.wait_for(fast.get(), 1))["n"] == 5  # oldest dropped first
    assert hub.clients == 0


def test_sign_up_without_a_broker_is_503_and_stores_nothing(
    tmp_path: Path, signing: SigningSettings
) -> None:
    from connect311_map_api.app import create_app
    from connect311_map_api.settings import MapApiSettings

    url = f"sqlite:///{tmp_path / 'nobroker.db'}"
    app = create_app(MapApiSettings(database_url=url, consume=False), signing=signing)
    with TestClient(app) as client:
        response = client.post(
            "/api/subscriptions",
            json={
                "email": "nb@example.com",
                "target": {"kind": "circle", "lat": 1, "long": 1, "radius_m": 100},
            },
        )
        assert response.status_code == 503 and "try again" in response.json()["detail"]
        assert client.get("/healthz").json()["broker"] == "disabled"
        counts = client.app.state.ctx.engine  # type: ignore[attr-defined]
        with counts.connect() as conn:
            from connect311_map_api.db.subscription_store import counts_by_status

            assert sum(counts_by_status(conn).values()) == 0
