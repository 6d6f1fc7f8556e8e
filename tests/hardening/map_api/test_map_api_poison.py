"""Poison messages on both topics the map API consumes, over the real broker.

Bad JSON, a future schema version, an unknown event type and a null value are each
dead-lettered with a reason (topic and table), and the same partition keeps moving: a good
message behind them is applied.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx

from connect311_bus.kafka import encode, producer
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import SubscriptionBounced
from connect311_contracts.topics import DEAD_LETTERS, REQUEST_EVENTS, SUBSCRIPTION_FEEDBACK
from tests.integration.map_api.test_map_api_kafka import find, poll, serve
from tests.unit.map_api.factories import event, snapshot

ADMIN = {"Authorization": "Bearer adm"}
AREA = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 300}


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
    prod = producer(kafka_settings, "poison-test")
    await prod.start()
    try:
        with serve(tmp_path / "p.db", kafka_settings, tag) as base:
            # The bounce names a subscription of this app (the feedback topic also holds
            # other tests' bounces, which a new group reads too).
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                signed = await http.post(
                    "/api/subscriptions", json={"email": f"{tag}@example.org", "target": AREA}
                )
                assert signed.status_code == 202
            with sqlite3.connect(tmp_path / "p.db") as db:
                (sid,) = db.execute("SELECT subscription_id FROM subscriptions").fetchone()
            bounce = SubscriptionBounced(
                subscription_id=sid, reason="550", permanent=True, disable=True
            )
            # One key: every message lands on the same partition, poison first.
            ours: dict[str, tuple[int, int]] = {}  # topic: (partition, first offset)
            # Each topic's poison made from its own kind of message (a future version of a
            # bounce, say), so each one is refused for what is wrong with it.
            for topic, source in (
                (REQUEST_EVENTS.name, good),
                (SUBSCRIPTION_FEEDBACK.name, encode(bounce)),
            ):
                for value in _poisons(source).values():
                    sent = await prod.send_and_wait(topic, value, key=key)
                    ours.setdefault(topic, (sent.partition, sent.offset))
            await prod.send_and_wait(REQUEST_EVENTS.name, good, key=key)
            await prod.send_and_wait(SUBSCRIPTION_FEEDBACK.name, encode(bounce), key=key)
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                await poll(
                    lambda: http.get(f"/api/requests/test:poison{tag}"),
                    lambda r: r.status_code == 200,
                )
                await poll(  # the good bounce behind the poison was applied
                    lambda: http.get("/api/admin/subscribers", headers=ADMIN),
                    lambda r: r.json()["counts"]["disabled"] == 1,
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
    # Only this test's letters: the topics also hold other tests' poison, which a new
    # consumer group reads from the beginning too.
    mine = [
        d
        for d in listed
        if d["partition"] == ours[d["topic"]][0] and d["offset"] >= ours[d["topic"]][1]
    ]
    assert sorted(d["topic"] for d in mine) == sorted(
        [REQUEST_EVENTS.name] * 4 + [SUBSCRIPTION_FEEDBACK.name] * 4
    )
