"""Read a group's partitions again from the start after the broker lost its log.

Seeking the current assignment is not enough. Until the loss is noticed, a consumer may
fetch from the new log at its old positions and commit them there; a partition that moves to
another member (or back) after a rebalance would then resume from such a commit and skip the
start of the new log. So each partition is both sought to its beginning and committed there,
and it stays due until that commit succeeded by whichever member holds it. Consumers of these
topics drop repeats (stable event and notification ids), so reading again loses nothing and
doubles nothing.

A rebalance may land while a rewind is under way (the broker loss that asks for the rewind
also makes the group re-join). aiokafka's `seek_to_beginning` then stops waiting when the old
assignment goes (it returns False, it does not raise), and `position` waits for the new
assignment and answers the position that one took from the last commit: committing that as
"the start" skipped the new log's first records. So the start comes from the broker
(`beginning_offsets`, never from a position), and a partition counts as rewound only if its
position is still at the start after the commit.
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
    """An offset or position not known by then (the partition is moving) is retried later."""

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
            starts = await asyncio.wait_for(
                consumer.beginning_offsets(sorted(held)), self.position_timeout_s
            )
            for tp in held:
                consumer.seek(tp, starts[tp])  # IllegalStateError if a rebalance took it away
            await consumer.commit({tp: starts[tp] for tp in held})
            moved = {
                tp
                for tp in held
                if await asyncio.wait_for(consumer.position(tp), self.position_timeout_s)
                != starts[tp]
            }
        except (IllegalStateError, KafkaError, TimeoutError) as exc:  # mid-rebalance: retry
            log.info("rewinding %s waits for the rebalance to settle (%r)", self.topic, exc)
            return set()
        if moved:  # re-assigned meanwhile, from a commit made before this one: still due
            log.info(
                "rewinding %s partitions %s again: a rebalance moved them meanwhile",
                self.topic,
                sorted(tp.partition for tp in moved),
            )
        rewound = held - moved
        if rewound:
            self._due -= rewound
            log.warning(
                "broker lost its log: reading %s partitions %s again from the start",
                self.topic,
                sorted(tp.partition for tp in rewound),
            )
        return rewound
