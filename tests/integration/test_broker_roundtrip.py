"""The contract's Kafka helpers against the real local broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from connect311_bus.kafka import consumer, decode, encode, producer
from connect311_contracts.events import REQUEST_EVENT_ADAPTER, RequestOpened
from connect311_contracts.request import ServiceRequest
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import ALL_TOPICS, REQUEST_EVENTS


def _request(source_id: str) -> ServiceRequest:
    return ServiceRequest(
        service_request_id=f"test:{source_id}",
        source="test",
        source_request_id=source_id,
        status="open",
        raw_status="Open",
        lat=27.77,
        long=-82.64,
        requested_datetime=datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
    )


async def test_every_topic_is_created_with_its_partitions(kafka_settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {t.name: t.partitions for t in ALL_TOPICS}


async def test_request_event_round_trips_through_the_broker(kafka_settings: KafkaSettings) -> None:
    key = uuid.uuid4().hex
    sent = RequestOpened(request=_request(key))
    prod = producer(kafka_settings, "test")
    await prod.start()
    try:
        meta = await prod.send_and_wait(REQUEST_EVENTS.name, encode(sent), key=key.encode())
    finally:
        await prod.stop()
    cons = consumer(kafka_settings, None)
    await cons.start()
    try:
        tp = TopicPartition(REQUEST_EVENTS.name, meta.partition)
        cons.assign([tp])
        cons.seek(tp, meta.offset)
        record = await cons.getone()
    finally:
        await cons.stop()
    assert record.key == key.encode()
    assert decode(REQUEST_EVENT_ADAPTER, record.value) == sent
