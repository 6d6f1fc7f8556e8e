"""The shared sign-up limit needs the database: when it is locked or gone, sign-up answers
the documented 503 with a reason (never a 500), and nothing is published."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from connect311_contracts.settings import SigningSettings
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import RecordingPublisher

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
SIGNING = SigningSettings(secret_key="limit-outage", public_base_url="http://testserver")


def _app(url: str, publisher: RecordingPublisher, **settings: object) -> TestClient:
    config = MapApiSettings(database_url=url, consume=False, **settings)  # type: ignore[arg-type]
    return TestClient(create_app(config, signing=SIGNING, publisher=publisher))


def _assert_503_with_reason(client: TestClient, reason: str) -> None:
    response = client.post("/api/subscriptions", json={"email": "o@example.org", "target": CIRCLE})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    detail = response.json()["detail"]
    assert detail.startswith("database unavailable (") and reason in detail, detail


def test_locked_sqlite_gives_503_with_reason(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    publisher = RecordingPublisher()
    with _app(f"sqlite:///{db}", publisher, sqlite_busy_timeout_ms=100) as client:
        holder = sqlite3.connect(db, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            _assert_503_with_reason(client, "locked")
        finally:
            holder.rollback()
            holder.close()
        ok = client.post("/api/subscriptions", json={"email": "o@example.org", "target": CIRCLE})
        assert ok.status_code == 202  # recovers by itself; the refused attempt was not counted
    assert len(publisher.confirmations) == 1


@pytest.mark.postgres
def test_postgres_gone_gives_503_with_reason(postgres_database: str, postgres_url: str) -> None:
    publisher = RecordingPublisher()
    with _app(postgres_database, publisher) as client:
        name = postgres_database.rsplit("/", 1)[1]
        admin_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        _assert_503_with_reason(client, name)  # "database ... does not exist"
    assert publisher.confirmations == []
