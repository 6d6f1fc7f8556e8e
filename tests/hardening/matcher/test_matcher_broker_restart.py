"""The broker stops and a fresh, empty one starts on the same port while the matcher runs.

Without a restart by hand the matcher must notice that the broker forgot its subscriptions,
drop what it held (a subscription deleted meanwhile must not keep matching), re-read the
subscriptions the map API re-publishes (copies counted once), and match new request events.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from connect311_bus.broker_watch import BrokerState
from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import Subscription, SubscriptionChanged
from connect311_contracts.topics import NOTIFICATIONS, REQUEST_EVENTS, SUBSCRIPTIONS
from connect311_local.broker import free_port, start_broker
from connect311_matcher.app import build_matcher
from connect311_matcher.geodesy import destination
from connect311_matcher.settings import MatcherSettings
from tests.integration.matcher.test_matcher_service import read_all, running
from tests.unit.matcher.factories import circle, event, request

SPOT = (-57.5, -122.25)
DEADLINE_S = 20.0


async def put_subscription(prod: AIOKafkaProducer, sub: Subscription) -> None:
    value = encode(SubscriptionChanged(subscription=sub))
    await prod.send_and_wait(SUBSCRIPTIONS.name, value, key=sub.subscription_id.encode())


async def put_event(prod: AIOKafkaProducer, source_id: str) -> str:
    ev = event(request(*destination(*SPOT, 45, 100), source_id=source_id))
    key = ev.request.service_request_id.encode()
    await prod.send_and_wait(REQUEST_EVENTS.name, encode(ev), key=key)
    return ev.request.service_request_id


async def matched(kafka: KafkaSettings, request_id: str, want: int) -> list[str]:
    """Subscription ids notified about one request, once there are at least `want`."""
    deadline = time.monotonic() + DEADLINE_S
    found: list[str] = []
    while time.monotonic() < deadline:
        notes = await read_all(kafka, NOTIFICATIONS.name, NOTIFICATIONS.partitions)
        found = [
            n.subscription.subscription_id
            for _, n in notes
            if isinstance(n, SubscriberMatched)
            and n.request_event.request.service_request_id == request_id
        ]
        if len(found) >= want:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"wanted {want} notifications for {request_id}, saw {found}")


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_matcher_recovers_from_a_broker_restart_without_a_restart_by_hand(
    tmp_path: Path,
) -> None:
    port = free_port()
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}", session_timeout_ms=2000, heartbeat_interval_ms=500
    )
    tag = uuid.uuid4().hex[:8]
    home = circle(*SPOT, 500, email=f"home-{tag}@example.org")
    gone = circle(*SPOT, 500, email=f"gone-{tag}@example.org")
    settings = MatcherSettings(
        group_id=f"restart-{tag}", http_port=0, create_topics=False, broker_check_s=0.3
    )
    matcher = build_matcher(settings, kafka)
    brokers = [start_broker(port, tmp_path / "b1.log")]
    try:
        await ensure_topics(kafka)
        await publish_subscriptions(kafka, [home, gone])
        # The matcher stops (leaves its group) while a broker is up: brokers stop after it.
        async with running(matcher) as task:
            before = await put_event_once(kafka, f"a{tag}")
            assert sorted(await matched(kafka, before, 2)) == sorted(
                [home.subscription_id, gone.subscription_id]
            )

            brokers[0].stop()
            await until(lambda: matcher.broker_state is BrokerState.DOWN, "the broker seen down")
            brokers.append(start_broker(port, tmp_path / "b2.log"))
            # What the map API's broker watch does: topics back, every stored subscription
            # re-published; `gone` was deleted meanwhile, `home` comes twice (at-least-once).
            await ensure_topics(kafka)
            await publish_subscriptions(kafka, [home, home])
            await until(
                lambda: set(matcher.index._by_id) == {home.subscription_id},
                "the matcher to hold only the re-published subscription",
            )
            after = await put_event_once(kafka, f"b{tag}")
            assert await matched(kafka, after, 1) == [home.subscription_id]
            assert not task.done() and matcher.ready.is_set()
        # Stopped gracefully: every notification of the new broker is on it, none twice.
        notes = await read_all(kafka, NOTIFICATIONS.name, NOTIFICATIONS.partitions)
        assert [(k, n.subscription.subscription_id) for k, n in notes] == [
            (recipient_key(home.email).encode(), home.subscription_id)
        ]
        samples = matcher.metrics.registry.get_sample_value
        assert samples("matcher_subscriptions", {"kind": "circle"}) == 1
        assert (samples("matcher_broker_recoveries_total") or 0) >= 1
    finally:
        for broker in brokers:
            broker.stop()


async def publish_subscriptions(kafka: KafkaSettings, subs: list[Subscription]) -> None:
    prod = producer(kafka, "restart-test-subs")
    await prod.start()
    try:
        for sub in subs:
            await put_subscription(prod, sub)
    finally:
        await prod.stop()


async def put_event_once(kafka: KafkaSettings, source_id: str) -> str:
    prod = producer(kafka, "restart-test-events")
    await prod.start()
    try:
        return await put_event(prod, source_id)
    finally:
        await prod.stop()


async def put_events(kafka: KafkaSettings, source_id: str, count: int) -> set[str]:
    """`count` events about one request (so on one partition); their event ids."""
    prod = producer(kafka, "restart-test-burst")
    await prod.start()
    try:
        req = request(*destination(*SPOT, 45, 100), source_id=source_id)
        ids = set()
        for _ in range(count):
            ev = event(req)
            await prod.send_and_wait(
                REQUEST_EVENTS.name, encode(ev), key=req.service_request_id.encode()
            )
            ids.add(ev.event_id)
        return ids
    finally:
        await prod.stop()


async def matched_events(kafka: KafkaSettings, want: set[str]) -> set[str]:
    """Event ids notified about, once every wanted one is among them."""
    deadline = time.monotonic() + DEADLINE_S
    seen: set[str] = set()
    while time.monotonic() < deadline:
        notes = await read_all(kafka, NOTIFICATIONS.name, NOTIFICATIONS.partitions)
        seen = {n.request_event.event_id for _, n in notes if isinstance(n, SubscriberMatched)}
        if want <= seen:
            return seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(want - seen)} of {len(want)} events were never matched")


async def test_events_on_the_new_log_are_not_skipped_at_old_positions(tmp_path: Path) -> None:
    """The matcher had read 4 events of a partition; the new broker's log has 6 there.

    Fetching from the old position (4) would skip the first 4 of them: the matcher must
    read the new log from its start, however fast the broker came back.
    """
    port = free_port()
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}", session_timeout_ms=2000, heartbeat_interval_ms=500
    )
    tag = uuid.uuid4().hex[:8]
    home = circle(*SPOT, 500, email=f"home-{tag}@example.org")
    settings = MatcherSettings(
        group_id=f"rewind-{tag}", http_port=0, create_topics=False, broker_check_s=0.3
    )
    matcher = build_matcher(settings, kafka)
    brokers = [start_broker(port, tmp_path / "b1.log")]
    try:
        await ensure_topics(kafka)
        await publish_subscriptions(kafka, [home])
        async with running(matcher):
            await matched_events(kafka, await put_events(kafka, f"old{tag}", 4))
            brokers[0].stop()
            brokers.append(start_broker(port, tmp_path / "b2.log"))
            # Everything is back before the matcher's next check: topics, the subscription
            # (the map API's re-publish) and six events re-published on the same partition.
            await ensure_topics(kafka)
            await publish_subscriptions(kafka, [home])
            fresh = await put_events(kafka, f"old{tag}", 6)
            assert fresh <= await matched_events(kafka, fresh)
            assert matcher.ready.is_set()
    finally:
        for broker in brokers:
            broker.stop()
