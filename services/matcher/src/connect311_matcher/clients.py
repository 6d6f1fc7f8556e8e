"""The Kafka clients one matcher uses, built (not started) from settings by the composition root.

The matcher starts and stops them in `Matcher.run()`; it never builds its own, so a test or a
benchmark can hand it clients tuned for the occasion.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connect311_bus.broker_watch import BrokerWatch
from connect311_bus.kafka import consumer, producer
from connect311_contracts.settings import KafkaSettings
from connect311_matcher.settings import MatcherSettings

__all__ = ["SERVICE", "MatcherClients", "WatchFactory", "build_clients"]

SERVICE = "matcher"

# The watch calls the matcher back when the broker lost its topics, so the matcher supplies
# the callback and the composition root everything else.
WatchFactory = Callable[[Callable[[], Awaitable[object]]], BrokerWatch]


@dataclass(frozen=True)
class MatcherClients:
    """A producer, the group-less subscriptions reader, the request-event group member."""

    producer: AIOKafkaProducer
    subscriptions: AIOKafkaConsumer
    events: AIOKafkaConsumer
    watch: WatchFactory


def build_clients(settings: MatcherSettings, kafka: KafkaSettings) -> MatcherClients:
    """Unstarted clients for one matcher (call inside the event loop that will run it)."""

    def watch(on_recovered: Callable[[], Awaitable[object]]) -> BrokerWatch:
        client_id = f"{kafka.client_id_prefix}-{SERVICE}-watch"
        return BrokerWatch(kafka, on_recovered, settings.broker_check_s, client_id=client_id)

    return MatcherClients(
        producer=producer(kafka, SERVICE),
        # No group: every instance reads every subscription partition from the beginning.
        subscriptions=consumer(
            kafka, None, fetch_max_wait_ms=100, max_partition_fetch_bytes=4 << 20
        ),
        events=consumer(kafka, settings.group_id),
        watch=watch,
    )
