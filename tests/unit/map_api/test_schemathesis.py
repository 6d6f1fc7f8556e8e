"""Property-based API fuzzing from the OpenAPI document: no input may cause a 5xx.

Besides what the schema allows, JSON bodies are poisoned with what JSON itself forbids but
parsers accept (NaN, Infinity) and with deep nesting, at a random place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
        MapApiSettings(
            database_url=f"sqlite:///{path}",
            consume=False,
            admin_token="fuzz-admin",
            read_limit="",  # fuzzing reads far faster than a person: test the routes, not 429
        ),
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


class _Deep:
    """Nesting spliced into the JSON text (deeper than Python could build and dump)."""

    def __init__(self, depth: int) -> None:
        self.text = "[" * depth + "1" + "]" * depth


HOSTILE = st.sampled_from([math.nan, math.inf, -math.inf]) | st.integers(1, 5_000).map(_Deep)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value could be swapped (containers included)."""
    places = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            places += _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places += _leaves(item, (*path, index))
    return places


def _poisoned(body: Any, path: tuple[Any, ...], bad: Any) -> str:
    """The body as JSON text with the value at `path` replaced by `bad` (NaN allowed)."""
    marker = "\u0000poison\u0000"
    if not path:
        doc: Any = marker
    else:
        doc = json.loads(json.dumps(body))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = marker
    swap = bad.text if isinstance(bad, _Deep) else json.dumps(bad, allow_nan=True)
    return json.dumps(doc, allow_nan=True).replace(json.dumps(marker), swap, 1)


def test_no_server_errors_on_non_finite_numbers_or_deep_nesting(seeded_app: object) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", seeded_app)
    client = TestClient(seeded_app, raise_server_exceptions=False)  # type: ignore[arg-type]
    poisoned = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.body is None or len(operation.body) == 0:
            continue
        poisoned.append(operation.label)

        @given(case=operation.as_strategy(), data=st.data())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: schemathesis.Case, data: st.DataObject) -> None:
            path = data.draw(st.sampled_from(_leaves(case.body)))
            body = _poisoned(case.body, path, data.draw(HOSTILE))
            response = client.request(
                case.method,
                case.formatted_path,
                params=case.query,
                headers={**(case.headers or {}), "content-type": "application/json"},
                content=body,
            )
            assert response.status_code < 500, (case.operation.label, body[:300], response.text)

        fuzz()
    assert len(poisoned) >= 3  # sign-up, preview, manage
