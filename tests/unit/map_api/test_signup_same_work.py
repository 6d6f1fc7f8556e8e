"""A sign-up does the same work for a known address as for an unknown one.

The answer is already identical; this checks the work behind it: the same SQL statements in
the same order, and the same Kafka sends (topics, key lengths, message shapes) through the
real Kafka publisher with a recording producer in place of the network client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_map_api import ratelimit
from connect311_map_api.app import create_app
from connect311_map_api.publisher import KafkaPublisher
from connect311_map_api.settings import MapApiSettings

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
KNOWN = "known.person@example.org"


@dataclass
class RecordingProducer:
    """What KafkaPublisher hands to aiokafka: topic, key and value of each send."""

    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send_and_wait(self, topic: str, value: bytes | None, key: bytes) -> None:
        self.sent.append((topic, value, key))


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and value types, not the values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_known_and_unknown_addresses_do_the_same_work(
    database_url: str, signing: SigningSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "PRUNE_EVERY_S", 3600.0)  # no pruning mid-comparison
    producer = RecordingProducer()
    publisher = KafkaPublisher(KafkaSettings())
    publisher._client = producer  # type: ignore[assignment]  # the network client's stand-in
    settings = MapApiSettings(
        database_url=database_url,
        consume=False,
        rate_limit_ip="1000/minute",
        rate_limit_email="1000/minute",
    )
    app = create_app(settings, signing=signing, publisher=publisher)
    engine: Engine = app.state.ctx.engine
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def sign_up(email: str) -> tuple[list[str], list[tuple[str, int, Any]], Any]:
        statements.clear()
        producer.sent.clear()
        answer = client.post("/api/subscriptions", json={"email": email, "target": CIRCLE})
        assert answer.status_code == 202
        sends = [
            (topic, len(key), _shape(json.loads(value or b"null")))
            for topic, value, key in producer.sent
        ]
        return list(statements), sends, answer.json()

    with TestClient(app) as client:
        for _ in range(3):  # the address becomes known: stored subscriptions, counted windows
            sign_up(KNOWN)
        known = [sign_up(KNOWN), sign_up(KNOWN.upper())]
        unknown = [sign_up(f"fresh.{n:06d}@example.org") for n in range(2)]
    assert known[0][0], "statements were recorded"
    assert [topic for topic, *_ in known[0][1]] == ["subscriptions.v1", "notifications.v1"]
    for result in [*known, *unknown]:
        assert result == known[0]
