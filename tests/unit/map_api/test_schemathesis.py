"""Property-based API fuzzing from the OpenAPI document: no input may cause a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from connect311_contracts.settings import SigningSettings
from connect311_map_api.app import create_app
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import T0, RecordingPublisher, event, lifecycle, snapshot


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An app on a seeded SQLite database, without Kafka."""
    path = Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db"
    app = create_app(
        MapApiSettings(database_url=f"sqlite:///{path}", consume=False, admin_token="fuzz-admin"),
        signing=SigningSettings(secret_key="fuzz"),
        publisher=RecordingPublisher(),
    )
    events = lifecycle("1") + lifecycle("2", lat=27.8, agency="Water")
    events += [event("opened", snapshot(f"s{i}", opened=T0 + timedelta(days=i))) for i in range(20)]
    with TestClient(app):
        with app.state.ctx.engine.begin() as conn:
            apply_events(conn, events)
        yield app


def test_no_server_errors(seeded_app: object) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", seeded_app)
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/stream":  # endless by design; covered by its own test
            continue
        tested.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        fuzz()
    assert len(tested) >= 20
