"""The one consume loop: handle before commit, one commit-failure policy, stop, rewind, lag."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from connect311_bus.consume import (
    Batch,
    ConsumeLoop,
    DeadLetters,
    consumer_lag_gauge,
    offsets_after,
)
from connect311_bus.rewind import Rewind
from connect311_contracts.rejects import MessageDeadLettered
from tests.kafka_records import fetched

TOPIC = "t"


def record(partition: int, offset: int, value: bytes = b"{}") -> ConsumerRecord[bytes, bytes]:
    return fetched(TOPIC, partition, offset, value)


class FakeConsumer:
    """Just what the loop uses of AIOKafkaConsumer; batches arrive through a queue."""

    def __init__(self, partitions: int = 2) -> None:
        self.batches: asyncio.Queue[dict[TopicPartition, list[Any]]] = asyncio.Queue()
        self.tps = {TopicPartition(TOPIC, p) for p in range(partitions)}
        self.committed: list[dict[TopicPartition, int]] = []
        self.events: list[str] = []
        self.commit_error: Exception | None = None
        self.positions = {tp: 0 for tp in self.tps}
        self.high = {tp: 0 for tp in self.tps}
        self.sought: list[TopicPartition] = []
        self.fetching = asyncio.Event()

    def feed(self, *records: ConsumerRecord[bytes, bytes]) -> None:
        batch: dict[TopicPartition, list[Any]] = {}
        for r in records:
            batch.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        self.batches.put_nowait(batch)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        self.fetching.set()
        try:
            batch = await asyncio.wait_for(self.batches.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}
        for tp, records in batch.items():
            self.positions[tp] = records[-1].offset + 1
        return batch

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.events.append("commit")
        if self.commit_error is not None:
            error, self.commit_error = self.commit_error, None
            raise error
        self.committed.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return set(self.tps)

    def highwater(self, tp: TopicPartition) -> int:
        return self.high[tp]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.tps}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append(tp)
        self.positions[tp] = offset


class RebalancedMidRewind(FakeConsumer):
    """A rebalance lands while the rewind's commit is on its way.

    The new assignment starts from the offset committed before (as aiokafka's does), and the
    rewind's own commit lands after it: only the position tells the rewind did not take.
    """

    def __init__(self, old_commit: int) -> None:
        super().__init__(partitions=1)
        self.old_commit = old_commit
        self.rebalances = 1

    async def seek_to_beginning(self, *tps: TopicPartition) -> bool:
        # What aiokafka's does when the assignment goes away meanwhile: gives up, says False.
        self._rebalance()
        return False

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await super().commit(offsets)
        self._rebalance()

    def _rebalance(self) -> None:
        if self.rebalances:
            self.rebalances -= 1
            self.positions = {tp: self.old_commit for tp in self.tps}


def make_loop(
    fake: FakeConsumer, handle: Any, registry: CollectorRegistry | None = None
) -> ConsumeLoop:
    lag = consumer_lag_gauge(registry or CollectorRegistry(), "test")
    return ConsumeLoop(fake, TOPIC, handle, lag, timeout_ms=50)  # type: ignore[arg-type]


async def run_until(loop: ConsumeLoop, stop: asyncio.Event, done: asyncio.Event) -> None:
    task = asyncio.create_task(loop.run(stop))
    await asyncio.wait_for(done.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_batch_is_handled_then_committed_one_past_each_partitions_last() -> None:
    fake = FakeConsumer()
    handled: list[Batch] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> None:
        fake.events.append("handle")
        handled.append(batch)
        done.set()

    fake.feed(record(0, 4), record(0, 5), record(1, 9))
    await run_until(make_loop(fake, handle), stop, done)

    assert [[(r.partition, r.offset) for r in b] for b in handled] == [[(0, 4), (0, 5), (1, 9)]]
    assert fake.events[:2] == ["handle", "commit"]
    assert fake.committed == [{TopicPartition(TOPIC, 0): 6, TopicPartition(TOPIC, 1): 10}]


async def test_a_refused_commit_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeConsumer()
    fake.commit_error = CommitFailedError("rebalanced")
    seen: list[int] = []
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> None:
        seen.extend(r.offset for r in batch)
        if len(seen) == 2:
            done.set()

    fake.feed(record(0, 0))
    fake.feed(record(0, 1))
    with caplog.at_level(logging.WARNING, logger="connect311_bus.consume"):
        await run_until(make_loop(fake, handle), stop, done)

    assert seen == [0, 1]
    assert fake.committed == [{TopicPartition(TOPIC, 0): 2}]  # the first was refused
    assert "not committed" in caplog.text


async def test_a_handler_failure_stops_the_loop_without_committing() -> None:
    fake = FakeConsumer()

    async def handle(batch: Batch) -> None:
        raise RuntimeError("database down")

    fake.feed(record(0, 0))
    with pytest.raises(RuntimeError, match="database down"):
        await asyncio.wait_for(make_loop(fake, handle).run(asyncio.Event()), 5)
    assert fake.committed == []


async def test_stop_ends_a_fetch_in_progress() -> None:
    fake = FakeConsumer()
    loop = make_loop(fake, None)
    loop.timeout_ms = 60_000  # the fetch would wait a minute; stop must not
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await asyncio.wait_for(fake.fetching.wait(), 2)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_rewind_seeks_and_commits_the_start_before_the_next_fetch() -> None:
    fake = FakeConsumer(partitions=1)
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> None:
        done.set()

    loop = make_loop(fake, handle)
    loop.rewind.request()
    fake.feed(record(0, 0))
    await run_until(loop, stop, done)

    assert fake.sought == [TopicPartition(TOPIC, 0)]
    assert fake.committed[0] == {TopicPartition(TOPIC, 0): 0}  # the rewind's commit came first
    assert not loop.rewind.pending


async def test_a_rewind_that_a_rebalance_undid_stays_due_until_it_took() -> None:
    fake = RebalancedMidRewind(old_commit=6)
    tp = TopicPartition(TOPIC, 0)
    rewind = Rewind(TOPIC)
    rewind.request()

    for _ in range(3):  # what the loop does between batches
        if rewind.pending:
            await rewind.apply(fake)  # type: ignore[arg-type]

    assert not rewind.pending
    assert not fake.rebalances  # the rebalance did land during a rewind
    assert await fake.position(tp) == 0  # reading the new log from its start
    assert fake.committed[-1] == {tp: 0}  # and a member taking it over starts there too


async def test_the_lag_gauge_is_set_after_each_fetch() -> None:
    fake = FakeConsumer(partitions=1)
    fake.high[TopicPartition(TOPIC, 0)] = 10
    registry = CollectorRegistry()
    done, stop = asyncio.Event(), asyncio.Event()

    async def handle(batch: Batch) -> None:
        done.set()

    fake.feed(record(0, 2))
    await run_until(make_loop(fake, handle, registry), stop, done)

    assert registry.get_sample_value("test_consumer_lag", {"topic": TOPIC}) == 7  # 10 - 3


async def test_a_dead_letter_keeps_the_position_and_reason() -> None:
    sent: list[MessageDeadLettered] = []

    async def publish(letter: MessageDeadLettered) -> None:
        sent.append(letter)

    await DeadLetters("svc", publish).send(record(1, 42, b"not json"), "bad json")

    assert [(s.service, s.topic, s.partition, s.offset, s.reason, s.raw) for s in sent] == [
        ("svc", TOPIC, 1, 42, "bad json", "not json")
    ]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6)), max_size=50))
def test_offsets_after_is_one_past_the_highest_offset_per_partition(
    positions: list[tuple[int, int]],
) -> None:
    offsets = offsets_after(record(p, o) for p, o in positions)
    expected: dict[TopicPartition, int] = {}
    for p, o in positions:
        tp = TopicPartition(TOPIC, p)
        expected[tp] = max(expected.get(tp, 0), o + 1)
    assert offsets == expected
