"""Publishing request events and rejects to Kafka, waiting for every acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from connect311_contracts.events import RequestEvent
from connect311_contracts.kafka import encode, trace_headers
from connect311_contracts.rejects import RecordRejected
from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS


class Publisher:
    """Sends a batch at once and returns only when the broker acknowledged all of it."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish_events(self, events: Sequence[RequestEvent]) -> None:
        """Request events keyed by service_request_id, so one request's events stay ordered."""
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
