"""Poison messages on both topics the map API consumes, over the real broker.

Bad JSON, a future schema version, an unknown event type and a null value are each
dead-lettered with a reason (topic and table), and the same partition keeps moving: a good
message behind them is applied.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from connect311_contracts.kafka import encode, producer
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import SubscriptionBounced
from connect311_contracts.topics import DEAD_LETTERS, REQUEST_EVENTS, SUBSCRIPTION_FEEDBACK
from tests.integration.map_api.test_map_api_kafka import find, poll, serve
from tests.unit.map_api.factories import event, snapshot

ADMIN = {"Authorization": "Bearer adm"}


def _poisons(good: bytes) -> dict[str, bytes | None]:
    body = json.loads(good)
    return {
        "bad json": b'{"event_type": "request.opened", ',
        "future version": json.dumps({**body, "schema_version": 2}).encode(),
        "unknown type": json.dumps({**body, "event_type": "request.teleported"}).encode(),
        "null": None,
    }


async def test_poison_on_each_topic_is_dead_lettered_and_the_partition_moves_on(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    key = f"test:poison{tag}".encode()
    good = encode(event("opened", snapshot(f"poison{tag}")))
    bounce = SubscriptionBounced(
        subscription_id=f"sub-{tag}", reason="550", permanent=True, disable=True
    )
    prod = producer(kafka_settings, "poison-test")
    await prod.start()
    try:
        with serve(tmp_path / "p.db", kafka_settings, tag) as base:
            # One key: every message lands on the same partition, poison first.
            for value in _poisons(good).values():
                await prod.send_and_wait(REQUEST_EVENTS.name, value, key=key)
                await prod.send_and_wait(SUBSCRIPTION_FEEDBACK.name, value, key=key)
            await prod.send_and_wait(REQUEST_EVENTS.name, good, key=key)
            await prod.send_and_wait(SUBSCRIPTION_FEEDBACK.name, encode(bounce), key=key)
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                await poll(
                    lambda: http.get(f"/api/requests/test:poison{tag}"),
                    lambda r: r.status_code == 200,
                )
                await poll(
                    lambda: http.get("/metrics"),
                    lambda r: 'map_api_feedback_total{outcome="ignored"} 1.0' in r.text,
                )
                listed = (await http.get("/api/admin/deadletters", headers=ADMIN)).json()
        letters = await find(
            kafka_settings,
            DEAD_LETTERS.name,
            lambda r: json.loads(r.value).get("key") == key.decode(),
            want=8,
        )
    finally:
        await prod.stop()
    by_topic: dict[str, list[Any]] = {}
    for letter in letters:
        body = json.loads(letter.value)
        assert body["service"] == "map-api" and body["reason"], body
        by_topic.setdefault(body["topic"], []).append(body["reason"])
    assert sorted(by_topic) == [REQUEST_EVENTS.name, SUBSCRIPTION_FEEDBACK.name]
    for reasons in by_topic.values():
        assert len(reasons) == 4
        assert any("schema_version" in r for r in reasons), reasons
        assert any("null value" in r for r in reasons), reasons
    assert sorted(d["topic"] for d in listed) == sorted(
        [REQUEST_EVENTS.name] * 4 + [SUBSCRIPTION_FEEDBACK.name] * 4
    )
