"""Map API test fixtures: an app on a fresh SQLite file (or PostgreSQL), no Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.settings import SigningSettings
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import RecordingPublisher

SECRET = "test-secret-for-map-api"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'map-api.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'map-api.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def publisher() -> RecordingPublisher:
    """Records what the API would publish."""
    return RecordingPublisher()


@pytest.fixture
def signing() -> SigningSettings:
    """Signing settings with a test secret."""
    return SigningSettings(secret_key=SECRET, public_base_url="http://testserver")


def make_client(
    url: str, publisher: RecordingPublisher, signing: SigningSettings, **overrides: object
) -> TestClient:
    """A TestClient on an app without Kafka."""
    settings = MapApiSettings(database_url=url, consume=False, **overrides)  # type: ignore[arg-type]
    app = create_app(settings, signing=signing, publisher=publisher)
    return TestClient(app)


@pytest.fixture
def client(
    database_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> Iterator[TestClient]:
    """An API client on SQLite and PostgreSQL."""
    with make_client(database_url, publisher, signing) as test_client:
        yield test_client


@pytest.fixture
def engine(client: TestClient) -> Engine:
    """The app's engine (to seed state directly)."""
    result: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    return result
