"""Outgoing messages: the port the API depends on, and its Kafka implementation."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer

from connect311_bus.kafka import encode, producer
from connect311_contracts.notifications import (
    ConfirmationRequested,
    DepartmentDigestRequested,
    recipient_key,
)
from connect311_contracts.rejects import MessageDeadLettered
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.subscriptions import Subscription, SubscriptionChanged
from connect311_contracts.topics import DEAD_LETTERS, NOTIFICATIONS, SUBSCRIPTIONS

log = logging.getLogger(__name__)
SERVICE = "map-api"


class Publisher(Protocol):
    """Everything the map API sends to other services."""

    async def subscription_changed(self, sub: Subscription) -> None:
        """Publish the full new state of a subscription (compacted topic)."""

    async def subscription_deleted(self, subscription_id: str) -> None:
        """Publish a tombstone for a deleted subscription."""

    async def confirmation_requested(self, command: ConfirmationRequested) -> None:
        """Ask the notifier to send a confirmation email."""

    async def department_digest(self, command: DepartmentDigestRequested) -> None:
        """Ask the notifier to send a department's daily digest."""

    async def dead_letter(self, letter: MessageDeadLettered) -> None:
        """Keep a message this service could not process."""

    async def healthy(self) -> bool:
        """True when the broker answers."""


class KafkaPublisher:
    """Publisher on aiokafka; each send waits for the broker's acknowledgement (bounded)."""

    def __init__(self, settings: KafkaSettings, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._client: AIOKafkaProducer | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._client is None:
            raise PublishUnavailable
        return self._client

    async def start(self) -> None:
        """Connect to the broker (inside the running event loop)."""
        self._client = producer(self._settings, SERVICE)
        await self._client.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._client is not None:
            await self._client.stop()
            self._client = None

    async def _send(self, topic: str, value: bytes | None, key: bytes) -> None:
        # Bounded: while the broker is away a sign-up answers 503 soon instead of hanging
        # for the client's request timeout (a late delivery is harmless: consumers dedupe).
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(topic, value, key=key), self._timeout_s
            )
        except TimeoutError as exc:
            raise PublishUnavailable(f"no broker acknowledgement in {self._timeout_s} s") from exc

    async def subscription_changed(self, sub: Subscription) -> None:
        """Publish the full new state of a subscription (compacted topic)."""
        message = SubscriptionChanged(subscription=sub)
        await self._send(SUBSCRIPTIONS.name, encode(message), sub.subscription_id.encode())

    async def subscription_deleted(self, subscription_id: str) -> None:
        """Publish a tombstone for a deleted subscription."""
        await self._send(SUBSCRIPTIONS.name, None, subscription_id.encode())

    async def confirmation_requested(self, command: ConfirmationRequested) -> None:
        """Ask the notifier to send a confirmation email (keyed by hashed recipient)."""
        key = recipient_key(command.subscription.email).encode()
        await self._send(NOTIFICATIONS.name, encode(command), key)

    async def department_digest(self, command: DepartmentDigestRequested) -> None:
        """Ask the notifier to send a department's daily digest (keyed by hashed recipient)."""
        key = recipient_key(command.subscription.email).encode()
        await self._send(NOTIFICATIONS.name, encode(command), key)

    async def dead_letter(self, letter: MessageDeadLettered) -> None:
        """Keep a message this service could not process."""
        await self._send(DEAD_LETTERS.name, encode(letter), letter.service.encode())

    async def healthy(self) -> bool:
        """True when the broker answers a metadata request."""
        try:
            await asyncio.wait_for(self._producer.partitions_for(SUBSCRIPTIONS.name), 5)
        except Exception as exc:  # any client error means 'not healthy'; say why in the log
            log.warning("broker health check failed: %s", type(exc).__name__)
            return False
        return True


class NoPublisher:
    """For running without Kafka: subscription changes cannot leave this process."""

    async def subscription_changed(self, sub: Subscription) -> None:
        """Refuse: nothing can be published."""
        raise PublishUnavailable

    async def subscription_deleted(self, subscription_id: str) -> None:
        """Refuse: nothing can be published."""
        raise PublishUnavailable

    async def confirmation_requested(self, command: ConfirmationRequested) -> None:
        """Refuse: nothing can be published."""
        raise PublishUnavailable

    async def department_digest(self, command: DepartmentDigestRequested) -> None:
        """Refuse: nothing can be published."""
        raise PublishUnavailable

    async def dead_letter(self, letter: MessageDeadLettered) -> None:
        """Refuse: nothing can be published."""
        raise PublishUnavailable

    async def healthy(self) -> bool:
        """Never healthy."""
        return False


class PublishUnavailable(Exception):
    """No broker is configured (MAP_API_CONSUME=false without an injected publisher)."""
