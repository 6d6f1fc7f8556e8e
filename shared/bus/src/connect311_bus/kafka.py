"""Thin aiokafka helpers: JSON serde, explicit topic creation, client settings, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalStateError, KafkaConnectionError, TopicAlreadyExistsError
from pydantic import BaseModel, TypeAdapter, ValidationError

from connect311_contracts.rejects import MessageDeadLettered, clip
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import ALL_TOPICS, DEAD_LETTERS, TopicSpec

__all__ = [
    "TRACE_HEADER",
    "UndecodableMessage",
    "consumer",
    "consumer_lag",
    "dead_letter",
    "decode",
    "encode",
    "ensure_topics",
    "producer",
    "publish_dead_letter",
    "trace_headers",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

TRACE_HEADER = "trace_id"


class UndecodableMessage(Exception):
    """A Kafka value that is not a valid message of the expected contract."""


def encode(message: BaseModel) -> bytes:
    """A contract model as compact JSON bytes."""
    return message.model_dump_json().encode()


def decode(adapter: TypeAdapter[T], value: bytes | None) -> T:
    """Parse a Kafka value into a contract model; raises UndecodableMessage with a reason."""
    if value is None:
        raise UndecodableMessage("null value where a message was expected")
    try:
        return adapter.validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise UndecodableMessage(f"{first.get('type')}: {first.get('msg')} at {where}") from exc


def trace_headers(trace_id: str | None) -> list[tuple[str, bytes]]:
    """Kafka headers carrying the trace id from ingest to email."""
    return [(TRACE_HEADER, trace_id.encode())] if trace_id else []


async def consumer_lag(kafka_consumer: AIOKafkaConsumer) -> int:
    """Messages between the consumer's positions and the high-water marks of its partitions.

    Uses the fetch high-water mark, not end_offsets() (which lies on the local broker);
    partitions not fetched yet are left out, since their position may still be unknown.
    """
    lag = 0
    for tp in kafka_consumer.assignment():
        high = kafka_consumer.highwater(tp)
        if high is None:
            continue
        try:
            lag += max(0, high - await kafka_consumer.position(tp))
        except IllegalStateError:  # revoked by a rebalance since assignment() was read
            continue
    return lag


def producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for all replicas; idempotent where the broker supports it."""
    kwargs: dict[str, Any] = {
        **settings.connection_kwargs(),
        "client_id": f"{settings.client_id_prefix}-{client_id}",
        "acks": "all",
        "enable_idempotence": settings.enable_idempotence,
        "linger_ms": 5,
    }
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


def consumer(
    settings: KafkaSettings, group_id: str | None, *topics: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer that commits by hand (after the outcome is recorded) from the earliest offset."""
    kwargs: dict[str, Any] = {
        **settings.connection_kwargs(),
        "client_id": f"{settings.client_id_prefix}-{group_id or 'reader'}",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        # The local broker holds every fetch for the full wait (aiokafka's default is 500 ms);
        # on Kafka a short wait only costs a few more empty fetches on an idle topic.
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "isolation_level": "read_committed" if settings.enable_idempotence else "read_uncommitted",
    }
    kwargs.update(overrides)
    return AIOKafkaConsumer(*topics, **kwargs)


async def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec] = ALL_TOPICS, attempts: int = 30
) -> None:
    """Create every topic explicitly with its partitions and config; existing ones are kept."""
    admin = AIOKafkaAdminClient(**settings.connection_kwargs(), client_id="connect311-admin")
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            log.warning("Kafka at %s not reachable yet; retrying", settings.bootstrap_servers)
            await asyncio.sleep(min(0.2 * 2**attempt, 3.0))
    try:
        existing = set(await admin.list_topics())
        specs = list(specs)
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            # Another service may create them first: that is what we wanted anyway.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([_new_topic(s, settings) for s in missing])
        kept = [spec for spec in specs if spec.name in existing]
        if kept:  # they exist, so describing them by name creates nothing
            _warn_about_layouts(kept, await admin.describe_topics([s.name for s in kept]))
    finally:
        await admin.close()


def _warn_about_layouts(specs: list[TopicSpec], described: list[dict[str, Any]]) -> None:
    """Log each existing topic whose partition count is not the contract's.

    The local broker auto-creates a topic (with 4 partitions) for any client that asks for it
    by name, so after a restart a consumer reconnecting before `ensure_topics` runs can win
    the race. Every client then hashes keys onto that layout alike; it lasts until the
    broker's log is lost again (the local broker cannot add partitions).
    """
    found = {d["topic"]: len(d["partitions"]) for d in described if d.get("error_code", 0) == 0}
    for spec in specs:
        partitions = found.get(spec.name)
        if partitions is not None and partitions != spec.partitions:
            log.warning(
                "topic %s has %d partitions where the contract says %d: it was created "
                "before ensure_topics (auto-created by a client's metadata request?)",
                spec.name,
                partitions,
                spec.partitions,
            )


def _new_topic(spec: TopicSpec, settings: KafkaSettings) -> NewTopic:
    config = {"cleanup.policy": "compact"} if spec.compacted else {}
    return NewTopic(
        name=spec.name,
        num_partitions=spec.partitions,
        replication_factor=settings.replication_factor,
        topic_configs=config,
    )


def dead_letter(
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
) -> MessageDeadLettered:
    """Describe a message that could not be processed, keeping its raw bytes as text."""
    return MessageDeadLettered(
        service=service,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode(errors="replace") if key else None,
        reason=clip(reason, 2000),
        raw=clip((value or b"").decode(errors="replace")),
    )


async def publish_dead_letter(
    kafka_producer: AIOKafkaProducer, letter: MessageDeadLettered
) -> None:
    """Send a dead letter and wait for the broker's acknowledgement."""
    await kafka_producer.send_and_wait(
        DEAD_LETTERS.name, encode(letter), key=letter.service.encode()
    )
