"""Kafka consumers: request events into state, subscription feedback into statuses (and
when each webhook was last seen working, for the manage page).

At-least-once: a batch is written to the database (and poison messages dead-lettered)
before its offsets are committed, and applying an event twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool

from connect311_bus.consume import Batch, ConsumeLoop, DeadLetters
from connect311_bus.kafka import UndecodableMessage, consumer, decode
from connect311_bus.rewind import Rewind
from connect311_contracts.events import REQUEST_EVENT_ADAPTER, RequestEvent
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import SUBSCRIPTION_FEEDBACK_ADAPTER, WebhookVerified
from connect311_contracts.topics import REQUEST_EVENTS, SUBSCRIPTION_FEEDBACK
from connect311_map_api.core.state import feature, naive_utc
from connect311_map_api.db.state_store import ApplyResult, apply_events
from connect311_map_api.db.subscription_store import record_webhook_check
from connect311_map_api.db.tables import dead_letters, requests
from connect311_map_api.live import Broadcaster
from connect311_map_api.metrics import Metrics
from connect311_map_api.publisher import SERVICE, Publisher
from connect311_map_api.signup import SubscriptionService

log = logging.getLogger(__name__)
BATCH = 500


def store_dead_letter(engine: Engine, record: Any, reason: str) -> None:
    """Keep a poison message in the database too, for /api/admin/deadletters."""
    with engine.begin() as conn:
        conn.execute(
            dead_letters.insert(),
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "key": record.key.decode(errors="replace") if record.key else None,
                "reason": reason[:2000],
                "raw": (record.value or b"").decode(errors="replace")[:20_000],
                "received_at": naive_utc(datetime.now(UTC)),
            },
        )


class _Loop:
    """A handler on the shared consume loop over one topic (a new consumer per restart)."""

    topic = ""

    def __init__(
        self,
        kafka: KafkaSettings,
        group: str,
        engine: Engine,
        publisher: Publisher,
        metrics: Metrics,
    ) -> None:
        self._kafka = kafka
        self._group = group
        self._engine = engine
        self._publisher = publisher
        self._metrics = metrics
        self._dead_letters = DeadLetters(SERVICE, publisher.dead_letter)
        self.rewind = Rewind(self.topic)  # outlives each consumer: a request is never lost

    async def run(self) -> None:
        """Consume until cancelled."""
        kafka_consumer = consumer(self._kafka, self._group)
        loop = ConsumeLoop(
            kafka_consumer,
            self.topic,
            self._handle,
            self._metrics.consumer_lag,
            max_records=BATCH,
            rewind=self.rewind,
        )
        loop.subscribe()
        await kafka_consumer.start()
        try:
            await loop.run()
        finally:
            await kafka_consumer.stop()

    async def _poison(self, record: Any, reason: str) -> None:
        await self._dead_letters.send(record, reason)
        await run_in_threadpool(store_dead_letter, self._engine, record, reason)

    async def _handle(self, records: Batch) -> None:
        raise NotImplementedError


class StateConsumer(_Loop):
    """Applies request events to the database and tells the live map what changed."""

    topic = REQUEST_EVENTS.name

    def __init__(self, *args: Any, broadcaster: Broadcaster, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._broadcaster = broadcaster

    async def _handle(self, records: Batch) -> None:
        decoded: list[tuple[ConsumerRecord[Any, Any], RequestEvent]] = []
        for record in records:
            try:
                decoded.append((record, decode(REQUEST_EVENT_ADAPTER, record.value)))
            except UndecodableMessage as exc:
                self._metrics.events.labels("dead_lettered").inc()
                await self._poison(record, str(exc))
        if not decoded:
            return
        try:
            await self._apply([ev for _, ev in decoded])
        except (DataError, IntegrityError):
            # A value the database refuses (e.g. a NUL byte for PostgreSQL): find it alone.
            for record, ev in decoded:
                try:
                    await self._apply([ev])
                except (DataError, IntegrityError) as exc:
                    self._metrics.events.labels("dead_lettered").inc()
                    await self._poison(record, f"database refused it: {type(exc.orig).__name__}")

    async def _apply(self, events: list[RequestEvent]) -> None:
        result, rows = await run_in_threadpool(apply_and_read, self._engine, events)
        self._count(result)
        for row in rows:
            self._broadcaster.publish(feature(row))

    def _count(self, result: ApplyResult) -> None:
        self._metrics.events.labels("applied").inc(result.applied - result.stale)
        self._metrics.events.labels("stale").inc(result.stale)
        self._metrics.events.labels("duplicate").inc(result.duplicates)
        self._metrics.events.labels("not_state").inc(result.not_state)


def apply_and_read(engine: Engine, events: list[RequestEvent]) -> tuple[ApplyResult, list[Any]]:
    """Apply a batch in one transaction, then read back the changed requests for the stream."""
    with engine.begin() as conn:
        result = apply_events(conn, events)
    if not result.changed_ids:
        return result, []
    with engine.connect() as conn:
        query = select(requests).where(requests.c.service_request_id.in_(result.changed_ids))
        return result, list(conn.execute(query))


class FeedbackConsumer(_Loop):
    """Disables subscriptions the notifier reports as bouncing for good, and keeps when each
    webhook was last verified; a message of another type or shape is dead-lettered."""

    topic = SUBSCRIPTION_FEEDBACK.name

    def __init__(self, *args: Any, service: SubscriptionService, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._service = service

    async def _handle(self, records: Batch) -> None:
        for record in records:
            try:
                message = decode(SUBSCRIPTION_FEEDBACK_ADAPTER, record.value)
            except UndecodableMessage as exc:
                self._metrics.feedback.labels("dead_lettered").inc()
                await self._poison(record, str(exc))
                continue
            if isinstance(message, WebhookVerified):
                await self._verified(record, message)
                continue
            changed = await self._service.bounced(message)
            self._metrics.feedback.labels("disabled" if changed else "ignored").inc()

    async def _verified(self, record: ConsumerRecord[Any, Any], message: WebhookVerified) -> None:
        try:
            stored = await run_in_threadpool(store_webhook_check, self._engine, message)
        except (DataError, IntegrityError) as exc:  # e.g. a NUL byte PostgreSQL refuses
            self._metrics.feedback.labels("dead_lettered").inc()
            await self._poison(record, f"database refused it: {type(exc.orig).__name__}")
            return
        self._metrics.feedback.labels("verified" if stored else "ignored").inc()


def store_webhook_check(engine: Engine, message: WebhookVerified) -> bool:
    """Keep a WebhookVerified (its latest time, for its secret version); True if stored."""
    with engine.begin() as conn:
        return record_webhook_check(
            conn, message.subscription_id, message.secret_version, message.occurred_at
        )


async def supervise(name: str, run: Callable[[], Any]) -> None:
    """Run a consumer forever, restarting it after unexpected errors (with a pause)."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s consumer failed; restarting in 2 s", name)
            await asyncio.sleep(2)
