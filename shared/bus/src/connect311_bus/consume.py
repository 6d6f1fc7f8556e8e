"""The one consume loop: fetch → decode → dead-letter → handle → commit, then report the lag.

Every service that reads a topic in a consumer group runs this loop and supplies only its
handler. The handler gets each fetched batch (every record, in partition order), decodes
(dead-lettering what it cannot use, see `DeadLetters`), records the outcome, and returns;
only then are the batch's offsets committed. So a crash or a restart re-reads at most the
batch in hand, and consumers drop the repeats by their stable ids (at-least-once).

Commit-failure policy (the only one): a commit refused by Kafka (`KafkaError`: a rebalance
moved the partitions, the broker is away) is logged and the loop goes on. The
outcome is already recorded, so the partition's next owner re-reads those records and its
handler finds them already done. Anything else a handler raises stops the loop: the
service restarts it and reads the batch again.

Lag (the only figure): `<service>_consumer_lag{topic}`, messages between the consumer's
positions and the fetch high-water marks of its partitions (`kafka.consumer_lag`), set after
every fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from connect311_bus.kafka import consumer_lag, dead_letter, publish_dead_letter
from connect311_bus.logs import kafka_context, log_context
from connect311_bus.rewind import Rewind
from connect311_contracts.rejects import MessageDeadLettered

__all__ = [
    "Batch",
    "ConsumeLoop",
    "DeadLetters",
    "Handler",
    "Record",
    "consumer_lag_gauge",
    "offsets_after",
]

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Batch: TypeAlias = list[Record]
Handler: TypeAlias = Callable[[Batch], Awaitable[None]]


def consumer_lag_gauge(registry: CollectorRegistry, service: str) -> Gauge:
    """The one lag metric, `<service>_consumer_lag{topic}`, in the service's registry."""
    return Gauge(
        f"{service}_consumer_lag",
        "Messages behind the fetch high-water mark on assigned partitions, by topic",
        ["topic"],
        registry=registry,
    )


def offsets_after(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """The offset to commit per partition: one past the last record handled."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds a rebalance until the batch in flight is handled and committed."""

    def __init__(self, lock: asyncio.Lock, topic: str) -> None:
        self._lock = lock
        self._topic = topic

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._lock:
            pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("%s partitions assigned: %s", self._topic, sorted(tp.partition for tp in assigned))


class DeadLetters:
    """Puts a record the service cannot use on deadletters.v1, with its position and why."""

    def __init__(self, service: str, publish: Callable[[MessageDeadLettered], Awaitable[None]]):
        self.service = service
        self._publish = publish

    @classmethod
    def via(cls, service: str, producer: AIOKafkaProducer) -> DeadLetters:
        """Dead letters sent with this producer, each waiting for the broker's ack."""

        async def publish(letter: MessageDeadLettered) -> None:
            await publish_dead_letter(producer, letter)

        return cls(service, publish)

    async def send(self, record: Any, reason: str) -> None:
        """Log, then publish (acknowledged) a dead letter for `record`."""
        with log_context(**kafka_context(record)):
            log.warning(
                "dead-lettering %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                reason,
            )
        letter = dead_letter(
            self.service,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            reason,
        )
        await self._publish(letter)


class ConsumeLoop:
    """One topic's fetch → handle → commit loop; `run()` until `stop` is set or cancelled.

    Pass a `rewind` that outlives the loop when the service builds a new consumer (and so a
    new loop) after a failure: a rewind requested meanwhile must not be forgotten.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        handle: Handler,
        lag: Gauge,
        max_records: int = 500,
        timeout_ms: int = 500,
        rewind: Rewind | None = None,
        batch_lock: asyncio.Lock | None = None,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.handle = handle
        self.lag = lag
        self.max_records = max_records
        self.timeout_ms = timeout_ms
        self.rewind = rewind or Rewind(topic)
        self.batch_lock = batch_lock or asyncio.Lock()  # shared with who must not interleave

    def subscribe(self) -> None:
        """Join the group for the topic; a rebalance then waits for the batch in flight."""
        self.consumer.subscribe([self.topic], listener=_WaitForBatch(self.batch_lock, self.topic))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until `stop` is set; a batch in hand is always handled and committed first."""
        stop = stop or asyncio.Event()
        stopped = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if self.rewind.pending:  # the broker lost its log: read the new one from its start
                    await self.rewind.apply(self.consumer)
                batch = await self._fetch(stopped)
                if batch is None:
                    break
                if batch:
                    # Shielded: cancelling the loop never leaves a batch half recorded.
                    await asyncio.shield(self._handle_and_commit(batch))
                self.lag.labels(self.topic).set(await consumer_lag(self.consumer))
        finally:
            stopped.cancel()

    async def _fetch(self, stopped: asyncio.Task[Any]) -> Batch | None:
        """The next batch in partition order; None once `stop` was set while waiting."""
        fetch = asyncio.create_task(
            self.consumer.getmany(timeout_ms=self.timeout_ms, max_records=self.max_records)
        )
        try:
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetch
        if fetch.cancelled():
            return None
        return [record for records in fetch.result().values() for record in records]

    async def _handle_and_commit(self, batch: Batch) -> None:
        async with self.batch_lock:
            await self.handle(batch)
            try:
                await self.consumer.commit(offsets_after(batch))
            except KafkaError as exc:
                # The outcome is recorded: whoever reads these records again finds them done.
                log.warning(
                    "offsets of %s not committed (%s); they will be read again", self.topic, exc
                )
