"""Publishing request events and rejects to Kafka, waiting for every acknowledgement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connect311_bus.kafka import encode, trace_headers
from connect311_bus.logs import log_context
from connect311_contracts.events import RequestEvent
from connect311_contracts.rejects import RecordRejected
from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS

log = logging.getLogger(__name__)


class BrokerUnavailable(KafkaError):  # type: ignore[misc]  # aiokafka is untyped here
    """The broker did not acknowledge a batch in time; nothing of it was recorded as done."""


class Publisher:
    """Sends a batch at once and returns only when the broker acknowledged all of it."""

    def __init__(self, producer: AIOKafkaProducer, timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.timeout_s = timeout_s

    async def publish_events(self, events: Sequence[RequestEvent]) -> None:
        """Request events keyed by service_request_id, so one request's events stay ordered."""
        await self._bounded(self._send_events(events))
        for e in events:
            if not e.backfill:  # live events, one line each; history would flood the log
                with log_context(event_id=e.event_id, trace_id=e.trace_id):
                    log.info(
                        "published %s for request %s", e.event_type, e.request.service_request_id
                    )

    async def _send_events(self, events: Sequence[RequestEvent]) -> None:
        pending = [
            await self.producer.send(
                REQUEST_EVENTS.name,
                encode(e),
                key=e.request.service_request_id.encode(),
                headers=trace_headers(e.trace_id),
            )
            for e in events
        ]
        await asyncio.gather(*pending)

    async def publish_rejects(self, rejects: Sequence[RecordRejected]) -> None:
        """Rejected records keyed by source, for operators to inspect."""
        await self._bounded(self._send_rejects(rejects))

    async def _send_rejects(self, rejects: Sequence[RecordRejected]) -> None:
        pending = [
            await self.producer.send(
                REQUEST_REJECTS.name,
                encode(r),
                key=r.source.encode(),
                headers=trace_headers(r.trace_id),
            )
            for r in rejects
        ]
        await asyncio.gather(*pending)

    async def _bounded(self, sending: Awaitable[None]) -> None:
        # While the broker is away a push answers 503 soon rather than after the client's
        # own timeout; nothing is stored as done, so the same batch can simply be sent again.
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # lands just as the batch is acknowledged (gh-86296), and a replay stopped by SIGTERM
        # (one cancel, see cli/common.run_async) then played on until it was killed.
        try:
            async with asyncio.timeout(self.timeout_s):
                await sending
        except TimeoutError as exc:
            raise BrokerUnavailable(f"no acknowledgement within {self.timeout_s} s") from exc
