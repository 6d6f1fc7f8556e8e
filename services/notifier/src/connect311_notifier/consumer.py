"""The consumer: notification commands from Kafka into the ledger, offsets committed after."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connect311_bus.consume import Batch, ConsumeLoop, DeadLetters
from connect311_bus.kafka import UndecodableMessage, decode
from connect311_bus.logs import kafka_context, log_context
from connect311_bus.rewind import Rewind
from connect311_contracts.notifications import (
    NOTIFICATION_ADAPTER,
    ConfirmationRequested,
    DepartmentDigestRequested,
    NotificationCommand,
    recipient_key,
)
from connect311_contracts.topics import DEAD_LETTERS, NOTIFICATIONS
from connect311_notifier.ledger import Incoming, Ledger, Planner, Recorded
from connect311_notifier.metrics import Metrics
from connect311_notifier.policy import (
    Decision,
    Limits,
    RecipientState,
    Route,
    decide,
    parse_expiry,
)
from connect311_notifier.schedule import next_digest_at
from connect311_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)
SERVICE = "notifier"


def make_planner(settings: NotifierSettings, clock: Callable[[], datetime]) -> Planner:
    """The policy and digest schedule, bound to settings and a clock."""
    limits = Limits(settings.instant_per_hour, settings.hard_bounce_threshold)
    tz = ZoneInfo(settings.display_timezone)

    def plan(command: NotificationCommand, state: RecipientState) -> tuple[Decision, float | None]:
        now = clock()
        decision = decide(command, state, limits, now)
        if decision.route is Route.DIGEST and decision.period is not None:
            return decision, next_digest_at(
                decision.period, now, tz, settings.digest_hour
            ).timestamp()
        return decision, None

    return plan


def _check_expiry(text: str) -> None:
    try:
        parse_expiry(text)
    except ValueError as exc:
        raise UndecodableMessage(f"expires_at is not an ISO-8601 time: {text[:100]!r}") from exc


def command_kind(command: NotificationCommand) -> str:
    """A label for metrics: confirmation, or the subscription target's kind."""
    if isinstance(command, ConfirmationRequested):
        return "confirmation"
    if isinstance(command, DepartmentDigestRequested):
        return "department_digest"
    return "follow" if command.subscription.target.kind == "follow" else "alert"


class CommandConsumer:
    """The notifier's handler on the shared consume loop: a batch into the ledger at once."""

    def __init__(
        self,
        settings: NotifierSettings,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        ledger: Ledger,
        metrics: Metrics,
        on_recorded: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.ledger = ledger
        self.metrics = metrics
        self.on_recorded = on_recorded
        self.plan = make_planner(settings, lambda: datetime.now(UTC))
        self.dead_letters = DeadLetters.via(SERVICE, producer)
        self.loop = ConsumeLoop(
            consumer,
            NOTIFICATIONS.name,
            self._handle,
            metrics.consumer_lag,
            max_records=settings.batch_size,
            timeout_ms=300,
        )

    @property
    def rewind(self) -> Rewind:
        """Request it after the broker lost its log: the loop re-reads from the start."""
        return self.loop.rewind

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`; a batch in hand is always recorded and committed first."""
        await self.loop.run(stop)

    async def _handle(self, records: Batch) -> None:
        decoded = [(r, await self._decode(r)) for r in records]
        pairs = [(r, i) for r, i in decoded if i is not None]
        if pairs:
            await self._record(pairs)
            self.on_recorded()

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> Incoming | None:
        """A command, or None after its dead letter is on deadletters.v1."""
        with log_context(**kafka_context(record)):
            return await self._decode_in_context(record)

    async def _decode_in_context(self, record: ConsumerRecord[bytes, bytes]) -> Incoming | None:
        try:
            command = decode(NOTIFICATION_ADAPTER, record.value)
            if isinstance(command, ConfirmationRequested):
                _check_expiry(command.expires_at)
        except UndecodableMessage as exc:
            await self._dead_letter(record, str(exc), "undecodable")
            return None
        # Derived here, not trusted from the Kafka key: the rate limit is per address.
        key = recipient_key(command.subscription.email)
        return Incoming(command, key, record.timestamp / 1000.0)

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], reason: str, why: str
    ) -> None:
        await self.dead_letters.send(record, reason)
        self.metrics.dead_letters.labels(DEAD_LETTERS.name, why).inc()

    async def _record(self, pairs: list[tuple[ConsumerRecord[bytes, bytes], Incoming]]) -> None:
        items = [item for _, item in pairs]
        try:
            results = await self._record_batch(items)
        except SQLAlchemyError:
            raise  # the database is down or broken: stop, restart, and read the batch again
        except Exception:  # one command the policy cannot handle must not stall the partition
            log.exception("a batch failed to record; recording its commands one by one")
            for record, item in pairs:
                try:
                    self._count([item], await self._record_batch([item]))
                except SQLAlchemyError:
                    raise
                except Exception as exc:
                    await self._dead_letter(record, f"{type(exc).__name__}: {exc}", "unprocessable")
            return
        self._count(items, results)

    async def _record_batch(self, items: list[Incoming]) -> list[Recorded]:
        for attempt in range(5):
            try:
                return await asyncio.to_thread(self.ledger.record, items, self.plan, time.time())
            except IntegrityError:
                # Another instance recorded one of these concurrently (a rebalance replay):
                # the retry sees it as a duplicate.
                log.info("concurrent duplicate while recording; retrying (%d)", attempt + 1)
        raise RuntimeError("could not record a batch after 5 attempts; see the log")

    def _count(self, items: list[Incoming], results: list[Recorded]) -> None:
        for item, result in zip(items, results, strict=True):
            kind = command_kind(item.command)
            if result.duplicate or result.decision is None:
                self.metrics.deduplicated.labels(kind).inc()
                continue
            for decision in (result.decision, *result.more):
                self.metrics.commands.labels(decision.route.value, decision.reason).inc()
            for hook in result.hooks:
                self.metrics.webhook_commands.labels(hook.route.value, hook.reason).inc()
            if result.decision.route is Route.SKIP:
                with log_context(event_id=item.command.event_id, trace_id=item.command.trace_id):
                    log.info(
                        "not sending %s for subscription %s: %s",
                        kind,
                        item.command.subscription.subscription_id,
                        result.decision.reason,
                    )
