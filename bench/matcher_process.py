"""bench/matcher.py --process: the whole matcher process (consume, match, produce) on a private
local broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from matcher_workload import CONFIRMED

from connect311_bus.kafka import encode
from connect311_contracts.events import RequestOpened
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import Subscription


async def run_process(n_subs: int, n_events: int) -> None:
    from connect311_bus.kafka import ensure_topics
    from connect311_bus.kafka import producer as make_producer
    from connect311_contracts.settings import KafkaSettings
    from connect311_contracts.subscriptions import SubscriptionChanged
    from connect311_contracts.topics import TopicSpec
    from connect311_local.broker import running_broker
    from connect311_matcher.app import build_matcher
    from connect311_matcher.settings import MatcherSettings

    rng = np.random.default_rng(7)
    cities = np.column_stack((rng.uniform(26, 48, 100), rng.uniform(-122, -70, 100)))
    per_city = n_subs // len(cities)
    with running_broker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        tag = uuid.uuid4().hex[:6]
        events_t = TopicSpec(f"b.{tag}.events", 6, "id", "bench")
        subs_t = TopicSpec(f"b.{tag}.subs", 3, "id", "bench", compacted=True)
        notes_t = TopicSpec(f"b.{tag}.notes", 6, "id", "bench")
        await ensure_topics(kafka, [events_t, subs_t, notes_t])
        await ensure_topics(kafka)
        prod = make_producer(kafka, "bench", linger_ms=20, max_batch_size=1 << 20)
        await prod.start()
        t = time.perf_counter()
        futures = []
        for c, (clat, clon) in enumerate(cities):
            for j in range(per_city):
                sub = Subscription.model_validate(
                    {
                        "subscription_id": f"p{c}-{j}",
                        "email": f"u{c}-{j}@example.org",
                        "status": "active",
                        "created_at": CONFIRMED,
                        "target": {
                            "kind": "circle",
                            "lat": clat + rng.uniform(-0.18, 0.18),
                            "long": clon + rng.uniform(-0.2, 0.2),
                            "radius_m": rng.uniform(100, 1000),
                        },
                    }
                )
                value = encode(SubscriptionChanged(subscription=sub))
                futures.append(
                    await prod.send(subs_t.name, value, key=sub.subscription_id.encode())
                )
        await asyncio.gather(*futures)
        print(
            f"  produced {per_city * len(cities):,} subscriptions"
            f" in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        futures = []
        for i in range(n_events):
            clat, clon = cities[i % len(cities)]
            req = ServiceRequest(
                service_request_id=f"bench:{i}",
                source="bench",
                source_request_id=str(i),
                status="open",
                raw_status="Open",
                lat=clat + rng.uniform(-0.15, 0.15),
                long=clon + rng.uniform(-0.17, 0.17),
                requested_datetime=datetime(2024, 6, 1, tzinfo=UTC),
            )
            value = encode(RequestOpened(request=req))
            futures.append(
                await prod.send(events_t.name, value, key=req.service_request_id.encode())
            )
        await asyncio.gather(*futures)
        await prod.stop()
        print(f"  produced {n_events:,} request events in {time.perf_counter() - t:.1f} s")

        settings = MatcherSettings(
            group_id=f"bench-{tag}",
            events_topic=events_t.name,
            subscriptions_topic=subs_t.name,
            notifications_topic=notes_t.name,
            create_topics=False,
        )
        matcher = build_matcher(settings, kafka)
        started = time.perf_counter()
        task = asyncio.create_task(matcher.run())
        await matcher.ready.wait()
        ready_s = time.perf_counter() - started
        count = matcher.metrics.events_in.labels("matched")
        while count._value.get() == 0:  # noqa: ASYNC110  # the group join comes first; time from the first event
            await asyncio.sleep(0.005)
        t = time.perf_counter()
        while count._value.get() < n_events:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # Wait until every offset is committed: all notifications acked by the broker.
        reader = _committed_reader(kafka, settings.group_id)
        await reader.start()
        from aiokafka import TopicPartition

        tps = [TopicPartition(events_t.name, p) for p in range(events_t.partitions)]
        while True:
            committed = [await reader.committed(tp) or 0 for tp in tps]
            if sum(committed) >= n_events:
                break
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - t
        await reader.stop()
        matcher.stop()
        await task
        notes = sum(
            s.value
            for m in matcher.metrics.matches_out.collect()
            for s in m.samples
            if s.name.endswith("_total")
        )
        print(
            f"  whole process: {len(matcher.index):,} subscriptions caught up in {ready_s:.1f} s; "
            f"{n_events:,} events in {seconds:.2f} s = {n_events / seconds:,.0f} events/s, "
            f"{notes:,.0f} notifications ({notes / n_events:.2f}/event, {notes / seconds:,.0f}/s)"
        )


def _committed_reader(kafka: Any, group: str) -> Any:
    from connect311_bus.kafka import consumer

    return consumer(kafka, group)
