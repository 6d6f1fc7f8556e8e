"""bench/notifier.py's workload: the commands it publishes, and how it waits and times them."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from connect311_bus.kafka import encode
from connect311_contracts.events import RequestOpened
from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import CircleTarget, Subscription, SubscriptionStatus
from connect311_contracts.webhooks import WebhookChannel
from connect311_notifier.settings import NotifierSettings


def hook_command(i: int, run: str, port: int, subscription: int | None = None) -> SubscriberMatched:
    """Command i for a webhook-only subscription posting to the bench's receiver."""
    base = command(i, run, subscription)
    sub_id = base.subscription.subscription_id
    channel = WebhookChannel(url=f"http://127.0.0.1:{port}/hook/{sub_id}")
    sub = base.subscription.model_copy(update={"webhook": channel, "email_alerts": False})
    return base.model_copy(update={"subscription": sub})


def command(i: int, run: str, recipient: int | None = None) -> SubscriberMatched:
    """Command i of a run: its own event (so its own email), for recipient `recipient`
    (default: its own); the trace id names it in the sink's log."""
    who = i if recipient is None else recipient
    sub = Subscription(
        subscription_id=f"{run}-{who}",
        email=f"{run}-{who}@bench.example",
        label="Home",
        target=CircleTarget(lat=27.77, long=-82.64, radius_m=500),
        status=SubscriptionStatus.ACTIVE,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    request = ServiceRequest(
        service_request_id=f"bench:{run}-{i}",
        source="bench",
        source_request_id=f"{run}-{i}",
        service_name="Pothole",
        agency_responsible="Public Works",
        status="open",
        raw_status="Open",
        description="A pothole in the right lane, about a foot wide. " * 3,
        address="100 Central Ave",
        lat=27.771,
        long=-82.641,
        requested_datetime=datetime(2024, 1, 2, tzinfo=UTC),
    )
    return SubscriberMatched(
        subscription=sub,
        request_event=RequestOpened(request=request),
        distance_m=230.0,
        matched_rule="within 500 m of Home",
        trace_id=f"{run}.{i}",
    )


def fanout(n: int, run: str) -> list[SubscriberMatched]:
    """One event matching n confirmed subscribers: one email each (a city-wide feed)."""
    base = command(0, run)
    return [
        base.model_copy(
            update={
                "subscription": command(i, run).subscription,
                "trace_id": f"{run}.{i}",
            }
        )
        for i in range(n)
    ]


async def until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.02) -> None:
    """Poll until the predicate holds; fail loudly after the timeout."""
    deadline = time.time() + timeout_s
    while True:
        if predicate():
            return
        if time.time() > deadline:
            raise TimeoutError(f"benchmark condition not met within {timeout_s} s")
        await asyncio.sleep(every_s)


def timing(
    arrivals: dict[str, float], published: dict[str, float], start: float
) -> dict[str, float]:
    """Rate (from the first publish to the last arrival) and p50/p99 ms, publish to arrival."""
    latencies = [arrivals[t] - published[t] for t in published]
    last = max(arrivals[t] for t in published)
    return {
        "rate": len(published) / (last - start),
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
    }


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def publish_all(prod: AIOKafkaProducer, commands: list[SubscriberMatched]) -> None:
    """Publish keyed by recipient, as the matcher does, and wait for the broker's acks."""
    pending = []
    for c in commands:
        key = recipient_key(c.subscription.email).encode()
        pending.append(await prod.send("notifications.v1", encode(c), key=key))
    await asyncio.gather(*pending)


def with_connections(settings: NotifierSettings, connections: int) -> NotifierSettings:
    """NOTIFIER_SMTP_CONNECTIONS, on notifier versions that have it (to compare with older)."""
    if "smtp_connections" not in NotifierSettings.model_fields:
        return settings
    return settings.model_copy(update={"smtp_connections": connections})
