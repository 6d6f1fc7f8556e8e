"""The matcher process against the real local broker (topics of its own per test)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from connect311_bus.kafka import consumer, encode, ensure_topics, producer
from connect311_contracts.notifications import (
    NOTIFICATION_ADAPTER,
    SubscriberMatched,
    recipient_key,
)
from connect311_contracts.rejects import MessageDeadLettered
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import Subscription, SubscriptionChanged
from connect311_contracts.topics import DEAD_LETTERS, TopicSpec
from connect311_matcher.app import build_matcher
from connect311_matcher.geodesy import destination
from connect311_matcher.http import bound_port, start_http
from connect311_matcher.service import Matcher
from connect311_matcher.settings import MatcherSettings
from tests.unit.matcher.factories import circle, event, request, subscription

# A spot in the Southern Ocean nothing else in the test session uses.
SPOT = (-55.5, -120.25)
DEADLINE_S = 30.0


class Topics:
    """A private set of topics for one test, and helpers to use them."""

    def __init__(self, kafka: KafkaSettings) -> None:
        tag = uuid.uuid4().hex[:8]
        self.kafka = kafka
        self.events = TopicSpec(f"t.{tag}.events", 4, "service_request_id", "test")
        self.subs = TopicSpec(f"t.{tag}.subs", 2, "subscription_id", "test", compacted=True)
        self.notes = TopicSpec(f"t.{tag}.notes", 3, "recipient_key", "test")
        self.producer: AIOKafkaProducer = producer(kafka, f"test-{tag}")

    def settings(self, **overrides: Any) -> MatcherSettings:
        values: dict[str, Any] = {
            "group_id": f"matcher-{self.events.name}",
            "events_topic": self.events.name,
            "subscriptions_topic": self.subs.name,
            "notifications_topic": self.notes.name,
            "create_topics": False,
            "http_port": 0,
        }
        values.update(overrides)
        return MatcherSettings(**values)

    async def put_subscription(self, sub: Subscription) -> None:
        value = encode(SubscriptionChanged(subscription=sub))
        await self.producer.send_and_wait(self.subs.name, value, key=sub.subscription_id.encode())

    async def delete_subscription(self, subscription_id: str) -> None:
        await self.producer.send_and_wait(self.subs.name, None, key=subscription_id.encode())

    async def put_event(self, ev: Any) -> tuple[int, int]:
        key = ev.request.service_request_id.encode()
        meta = await self.producer.send_and_wait(self.events.name, encode(ev), key=key)
        return meta.partition, meta.offset

    async def put_raw_event(self, value: bytes, key: bytes) -> tuple[int, int]:
        meta = await self.producer.send_and_wait(self.events.name, value, key=key)
        return meta.partition, meta.offset

    async def notifications(self) -> list[tuple[bytes, SubscriberMatched]]:
        """Everything on the notifications topic so far (read up to its high-water mark)."""
        return [
            (k, v) for k, v in await read_all(self.kafka, self.notes.name, self.notes.partitions)
        ]


async def read_all(kafka: KafkaSettings, topic: str, partitions: int) -> list[tuple[bytes, Any]]:
    reader = consumer(kafka, None, fetch_max_wait_ms=50)
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        found: list[tuple[bytes, Any]] = []
        while True:
            batch = await reader.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    value = (
                        NOTIFICATION_ADAPTER.validate_json(r.value)
                        if topic != DEAD_LETTERS.name
                        else MessageDeadLettered.model_validate_json(r.value)
                    )
                    found.append((r.key, value))
            highs = [reader.highwater(tp) for tp in tps]
            positions = [await reader.position(tp) for tp in tps]
            if all(h is not None and p >= h for h, p in zip(highs, positions, strict=True)):
                return found
    finally:
        await reader.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def committed_past(kafka: KafkaSettings, group: str, tp: TopicPartition, offset: int) -> bool:
    """True once the group has committed beyond `offset` (all its notifications are acked)."""
    reader = consumer(kafka, group)
    await reader.start()
    try:
        committed = await reader.committed(tp)
        return committed is not None and committed > offset
    finally:
        await reader.stop()


@pytest.fixture
async def topics(kafka_settings: KafkaSettings) -> AsyncIterator[Topics]:
    t = Topics(kafka_settings)
    await ensure_topics(kafka_settings, [t.events, t.subs, t.notes])
    await t.producer.start()
    try:
        yield t
    finally:
        await t.producer.stop()


@contextlib.asynccontextmanager
async def running(matcher: Matcher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(matcher.run())
    try:
        ready = asyncio.create_task(matcher.ready.wait())
        await asyncio.wait({task, ready}, timeout=DEADLINE_S, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises what went wrong
        assert matcher.ready.is_set(), "matcher did not catch up in time"
        yield task
    finally:
        matcher.stop()
        await asyncio.wait_for(task, DEADLINE_S)


def kafka_fast(kafka: KafkaSettings) -> KafkaSettings:
    return kafka.model_copy(update={"session_timeout_ms": 2000, "heartbeat_interval_ms": 500})


def by_request(notes: list[tuple[bytes, SubscriberMatched]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = collections.defaultdict(list)
    for _, n in notes:
        found[n.request_event.request.service_request_id].append(n.subscription.subscription_id)
    return found


@pytest.mark.parametrize("rebuild_min_delta", [1, 10_000], ids=["grid-rebuilt", "delta-index"])
async def test_subscriptions_added_changed_and_removed_while_events_flow(
    topics: Topics, rebuild_min_delta: int
) -> None:
    home = circle(*SPOT, 500, label="Home", email="a@example.org")
    await topics.put_subscription(home)
    settings = topics.settings(rebuild_min_delta=rebuild_min_delta)
    matcher = build_matcher(settings, kafka_fast(topics.kafka))
    group = matcher.settings.group_id
    tag = uuid.uuid4().hex[:6]

    async def send_and_settle(n: int, lat: float, lon: float) -> str:
        ev = event(request(lat, lon, source_id=f"{tag}-{n}"))
        partition, offset = await topics.put_event(ev)
        tp = TopicPartition(topics.events.name, partition)
        await eventually(lambda: committed_past(topics.kafka, group, tp, offset), f"event {n}")
        return ev.request.service_request_id

    async with running(matcher):
        assert len(matcher.index) == 1  # caught up before matching
        near = destination(*SPOT, 90, 312)
        first = await send_and_settle(1, *near)

        school = circle(*SPOT, 1000, label="School", email="b@example.org")
        await topics.put_subscription(school)  # added live
        await eventually(lambda: _holds(matcher, school.subscription_id), "added subscription")
        second = await send_and_settle(2, *near)

        moved = home.model_copy(
            update={"target": home.target.model_copy(update={"radius_m": 100.0})}
        )
        await topics.put_subscription(moved)  # changed live: 312 m is now outside
        await eventually(lambda: _radius_is(matcher, home.subscription_id, 100.0), "change")
        third = await send_and_settle(3, *near)

        await topics.delete_subscription(school.subscription_id)  # tombstone
        await eventually(lambda: _gone(matcher, school.subscription_id), "tombstone")
        fourth = await send_and_settle(4, *near)
        fifth = await send_and_settle(5, *SPOT)

    rebuilds = matcher.metrics.registry.get_sample_value("matcher_grid_rebuilds_total")
    assert (rebuilds or 0) >= (1 if rebuild_min_delta == 1 else 0)
    if rebuild_min_delta > 1:
        assert not rebuilds
    notes = await topics.notifications()
    got = by_request(notes)
    assert got[first] == [home.subscription_id]
    assert sorted(got[second]) == sorted([home.subscription_id, school.subscription_id])
    assert got[third] == [school.subscription_id]
    assert fourth not in got
    assert got[fifth] == [home.subscription_id]
    first_note = next(n for _, n in notes if n.request_event.request.service_request_id == first)
    assert first_note.matched_rule == "within 500 m of Home (312 m away)"
    for key, n in notes:
        assert key == recipient_key(n.subscription.email).encode()


async def _holds(matcher: Matcher, sid: str) -> bool:
    return sid in matcher.index


async def _gone(matcher: Matcher, sid: str) -> bool:
    return sid not in matcher.index


async def _radius_is(matcher: Matcher, sid: str, radius: float) -> bool:
    held = matcher.index._by_id.get(sid)
    return held is not None and held.subscription.target.radius_m == radius  # type: ignore[union-attr]


async def test_poison_events_are_dead_lettered_and_the_partition_moves_on(topics: Topics) -> None:
    home = circle(*SPOT, 500, email="c@example.org")
    await topics.put_subscription(home)
    matcher = build_matcher(topics.settings(), kafka_fast(topics.kafka))
    tag = uuid.uuid4().hex[:6]
    ok = event(request(*SPOT, source_id=f"{tag}-ok"))
    future = encode(event(request(*SPOT, source_id=f"{tag}-future"))).replace(
        b'"schema_version":1', b'"schema_version":2'
    )
    async with running(matcher):
        key = b"same-key"  # one partition: poison first, a good event after it
        await topics.put_raw_event(b"{not json", key)
        await topics.put_raw_event(future, key)
        partition, offset = await topics.put_raw_event(encode(ok), key)
        tp = TopicPartition(topics.events.name, partition)
        group = matcher.settings.group_id
        await eventually(lambda: committed_past(topics.kafka, group, tp, offset), "good event")
    got = by_request(await topics.notifications())
    assert got[ok.request.service_request_id] == [home.subscription_id]
    letters = [
        v
        for _, v in await read_all(topics.kafka, DEAD_LETTERS.name, 1)
        if v.topic == topics.events.name
    ]
    assert len(letters) == 2
    assert {letter.offset for letter in letters} == {offset - 2, offset - 1}
    assert all(letter.service == "matcher" and letter.reason for letter in letters)
    samples = matcher.metrics.registry.get_sample_value
    assert samples("matcher_dead_letters_total", {"topic": topics.events.name}) == 2


async def test_health_is_ready_only_after_catch_up_and_metrics_are_served(topics: Topics) -> None:
    for i in range(300):
        lat, lon = destination(*SPOT, i, 50 * i)
        await topics.put_subscription(circle(lat, lon, 200, email=f"d{i}@example.org"))
    matcher = build_matcher(topics.settings(), kafka_fast(topics.kafka))
    runner = await start_http(matcher, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as before:
                assert before.status == 503
            async with http.get(f"{url}/livez") as alive:
                assert alive.status == 200
            async with running(matcher):
                async with http.get(f"{url}/healthz") as after:
                    assert after.status == 200
                    assert (await after.json())["subscriptions"] == 300
                async with http.get(f"{url}/metrics") as metrics:
                    text = await metrics.text()
        assert 'matcher_subscriptions{kind="circle"} 300.0' in text
        assert "matcher_index_bytes_per_subscription" in text
        assert "matcher_match_seconds_bucket" in text
    finally:
        await runner.cleanup()


async def test_two_matchers_in_one_group_match_every_event_exactly_once(topics: Topics) -> None:
    subs = [circle(*SPOT, 2000, email=f"e{i}@example.org") for i in range(2)]
    for sub in subs:
        await topics.put_subscription(sub)
    kafka = kafka_fast(topics.kafka)
    first = build_matcher(topics.settings(max_batch=20), kafka)
    second = build_matcher(topics.settings(max_batch=20), kafka)
    tag = uuid.uuid4().hex[:6]
    sent: list[str] = []

    async def send(n: int) -> None:
        for i in range(n):
            ev = event(request(*SPOT, source_id=f"{tag}-{len(sent)}"))
            await topics.put_event(ev)
            sent.append(ev.request.service_request_id)
            if i % 10 == 0:
                await asyncio.sleep(0.02)  # let both instances take part while events flow

    async with running(first):
        async with running(second):
            await send(200)
            await eventually(lambda: _both_matched(first, second), "both instances matching")
        # `second` has stopped: the group rebalances and `first` takes every partition.
        await send(200)
        await eventually(lambda: _all_arrived(topics, len(sent) * len(subs)), "all notifications")

    got = by_request(await topics.notifications())
    assert set(got) == set(sent)
    for request_id in sent:  # exactly once per subscription per event, overall
        assert sorted(got[request_id]) == sorted(s.subscription_id for s in subs)
    counts = [
        m.metrics.registry.get_sample_value("matcher_events_total", {"outcome": "matched"})
        for m in (first, second)
    ]
    assert all(c and c > 0 for c in counts)
    assert sum(c or 0 for c in counts) == len(sent)


async def _both_matched(*matchers: Matcher) -> bool:
    values = [
        m.metrics.registry.get_sample_value("matcher_events_total", {"outcome": "matched"})
        for m in matchers
    ]
    return all(v is not None and v > 0 for v in values)


async def _all_arrived(topics: Topics, expected: int) -> bool:
    return len(await topics.notifications()) >= expected


async def test_unusable_subscription_records_are_dead_lettered_and_the_rest_load(
    topics: Topics,
) -> None:
    good = circle(*SPOT, 500, email="f@example.org")
    await topics.producer.send_and_wait(topics.subs.name, b"{oops", key=b"broken", partition=0)
    bad_area = subscription(
        {"kind": "area", "geometry": {"type": "Polygon", "coordinates": []}},
        subscription_id="empty-area",
    )
    value = encode(SubscriptionChanged(subscription=bad_area))
    await topics.producer.send_and_wait(topics.subs.name, value, key=b"empty-area", partition=0)
    await topics.put_subscription(good)
    matcher = build_matcher(topics.settings(), kafka_fast(topics.kafka))
    async with running(matcher):
        assert good.subscription_id in matcher.index
        assert "empty-area" not in matcher.index
    letters = [
        v
        for _, v in await read_all(topics.kafka, DEAD_LETTERS.name, 1)
        if v.topic == topics.subs.name
    ]
    assert sorted(letter.key or "" for letter in letters) == ["broken", "empty-area"]
