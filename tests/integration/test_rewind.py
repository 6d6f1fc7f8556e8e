"""Rewinding a group's partitions after a broker loss: sought to the start and committed there."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition

from connect311_bus.kafka import consumer, encode, producer
from connect311_bus.rewind import Rewind
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import SUBSCRIPTION_FEEDBACK
from tests.integration.test_broker_roundtrip import _request

TOPIC = SUBSCRIPTION_FEEDBACK.name  # 3 partitions; its content does not matter here


async def fill(kafka: KafkaSettings, partitions: int) -> None:
    """Two records on every partition, so the start and the end differ."""
    prod = producer(kafka, "rewind-test")
    await prod.start()
    try:
        for p in range(partitions):
            for _ in range(2):
                await prod.send_and_wait(TOPIC, encode(_request("x")), partition=p)
    finally:
        await prod.stop()


async def at_the_end(
    kafka: KafkaSettings, group: str, tps: list[TopicPartition]
) -> AIOKafkaConsumer:
    """A group member holding `tps` with its progress committed at the end of each."""
    member = consumer(kafka, group)
    await member.start()
    member.assign(tps)
    await member.seek_to_end(*tps)
    await member.commit({tp: await member.position(tp) for tp in tps})
    return member


async def test_every_held_partition_is_sought_and_committed_at_its_start(
    kafka_settings: KafkaSettings,
) -> None:
    partitions = SUBSCRIPTION_FEEDBACK.partitions
    await fill(kafka_settings, partitions)
    tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
    member = await at_the_end(kafka_settings, f"rewind-{uuid.uuid4().hex[:8]}", tps)
    try:
        starts = await member.beginning_offsets(tps)
        for tp in tps:
            assert await member.committed(tp) > starts[tp]
        rewind = Rewind(TOPIC)
        rewind.request()
        assert rewind.pending
        assert await rewind.apply(member) == set(tps)
        assert not rewind.pending
        for tp in tps:
            assert await member.position(tp) == starts[tp]
            # Committed too: a member that takes the partition over starts there as well.
            assert await member.committed(tp) == starts[tp]
    finally:
        await member.stop()


async def test_partitions_held_elsewhere_stay_due_until_this_member_holds_them(
    kafka_settings: KafkaSettings,
) -> None:
    partitions = SUBSCRIPTION_FEEDBACK.partitions
    await fill(kafka_settings, partitions)
    tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
    group = f"rewind-{uuid.uuid4().hex[:8]}"
    member = await at_the_end(kafka_settings, group, tps[:1])
    try:
        rewind = Rewind(TOPIC)
        rewind.request()
        assert await rewind.apply(member) == {tps[0]}
        assert rewind.pending  # the other partitions were not rewound by anyone yet
        member.assign(tps)  # after a rebalance this member holds them all
        assert await rewind.apply(member) == set(tps[1:])
        assert not rewind.pending
        assert await rewind.apply(member) == set()  # nothing is rewound twice
    finally:
        await member.stop()
