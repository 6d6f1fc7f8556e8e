"""Read a group's partitions again from the start after the broker lost its log.

Seeking the current assignment is not enough. Until the loss is noticed, a consumer may
fetch from the new log at its old positions and commit them there; a partition that moves to
another member (or back) after a rebalance would then resume from such a commit and skip the
start of the new log. So each partition is both sought to its beginning and committed there,
and it stays due until that commit succeeded by whichever member holds it. Consumers of these
topics drop repeats (stable event and notification ids), so reading again loses nothing and
doubles nothing.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

__all__ = ["Rewind"]

log = logging.getLogger(__name__)


class Rewind:
    """The partitions of one topic still to be read from the start; apply between batches."""

    position_timeout_s = 5.0
    """A position not known by then (the partition is moving) is retried at the next batch."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._requested = False
        self._due: set[TopicPartition] = set()

    def request(self) -> None:
        """The broker lost its log: every partition of the topic is due again."""
        self._requested = True

    @property
    def pending(self) -> bool:
        """True while some partition is still due (or a request is not yet taken up)."""
        return self._requested or bool(self._due)

    async def apply(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Seek and commit every due partition this consumer holds; the ones it rewound."""
        partitions = consumer.partitions_for_topic(self.topic) or set()
        existing = {TopicPartition(self.topic, p) for p in partitions}
        if self._requested:
            self._due = existing
            self._requested = not partitions  # metadata not known yet: take it up next time
        # A topic re-created by a metadata request may have fewer partitions than before; a
        # partition that no longer exists has nothing to read (and no position to wait for).
        self._due &= existing
        held: set[TopicPartition] = self._due & set(consumer.assignment())
        if not held:
            return set()
        try:
            await consumer.seek_to_beginning(*held)
            starts = {
                tp: await asyncio.wait_for(consumer.position(tp), self.position_timeout_s)
                for tp in held
            }
            await consumer.commit(starts)
        except (IllegalStateError, KafkaError, TimeoutError) as exc:  # mid-rebalance: retry
            log.info("rewinding %s waits for the rebalance to settle (%r)", self.topic, exc)
            return set()
        self._due -= held
        log.warning(
            "broker lost its log: reading %s partitions %s again from the start",
            self.topic,
            sorted(tp.partition for tp in held),
        )
        return held
