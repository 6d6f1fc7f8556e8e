"""Fetched Kafka records as a consumer's handler gets them, for unit tests of handlers."""

from __future__ import annotations

from aiokafka import ConsumerRecord

__all__ = ["fetched"]


def fetched(topic: str, partition: int, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    """One record with key b"k", no headers, at this position."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value),
        headers=[],
    )
