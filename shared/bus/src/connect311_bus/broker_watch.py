"""Notice when the broker lost what it held, and put back what this service owns.

The local broker keeps everything in memory, so a restart forgets every topic and message.
Signs of that: the broker answers with another cluster id (the local launcher gives each
start a fresh one; a re-formatted Kafka cluster gets one too), or a contract topic is missing.
On either, topics are re-created with their partitions and `on_recovered` runs: the owner puts
back what it owns (the ingestor re-publishes its recent events, the map API every subscription)
and consumers re-read from the start of the new log. The cluster id catches a restart however
short it was, even when another service re-created the topics first. An outage of a broker
that kept its log (a network blip, a rolling restart of real Kafka) is not a loss: clients
reconnect and resume from their committed offsets, and nothing is re-published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiokafka.admin import AIOKafkaAdminClient

from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import ALL_TOPICS

__all__ = ["BrokerState", "BrokerView", "BrokerWatch", "view_broker"]

log = logging.getLogger(__name__)


class BrokerState(StrEnum):
    """What one check found."""

    OK = "ok"
    DOWN = "down"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class BrokerView:
    """What one metadata request told about the cluster."""

    cluster_id: str | None
    topics: frozenset[str]


async def view_broker(kafka: KafkaSettings, timeout_s: float, client_id: str) -> BrokerView:
    """The cluster id and topic names (metadata requests that create nothing)."""
    admin = AIOKafkaAdminClient(**kafka.connection_kwargs(), client_id=client_id)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        topics = await asyncio.wait_for(admin.list_topics(), timeout_s)
        return BrokerView(cluster.get("cluster_id"), frozenset(topics))
    finally:
        await admin.close()


class BrokerWatch:
    """Checks the broker every `interval_s` and restores topics and owned state after a loss."""

    def __init__(
        self,
        kafka: KafkaSettings,
        on_recovered: Callable[[], Awaitable[object]],
        interval_s: float,
        timeout_s: float = 5.0,
        client_id: str = "connect311-watch",
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._on_recovered = on_recovered
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._down = False
        self._cluster_id: str | None = None  # the cluster this service's state lives on
        self._lost: str | None = None  # why state must be restored; kept until it was
        self.recoveries = 0

    async def check(self) -> BrokerState:
        """One check; restores topics and state when the broker lost them."""
        try:
            view = await view_broker(self._kafka, self._timeout_s, self._client_id)
        except Exception as exc:  # any client error means unreachable; the reason goes to the log
            if not self._down:
                log.warning("broker unreachable (%s); will check what it kept when it is back", exc)
            self._down = True
            return BrokerState.DOWN
        self._down = False
        self._lost = self._lost or self._loss(view)
        if self._lost is None:
            self._cluster_id = view.cluster_id
            return BrokerState.OK
        log.warning("broker %s; re-creating topics and restoring owned state", self._lost)
        await ensure_topics(self._kafka, attempts=1)
        await self._on_recovered()
        self._cluster_id, self._lost = view.cluster_id, None
        self.recoveries += 1
        return BrokerState.RECOVERED

    def _loss(self, view: BrokerView) -> str | None:
        """Why the broker no longer holds this service's state, or None if it does."""
        if self._cluster_id is not None and view.cluster_id != self._cluster_id:
            return f"is a new cluster ({self._cluster_id!r} before, {view.cluster_id!r} now)"
        missing = sorted(spec.name for spec in ALL_TOPICS if spec.name not in view.topics)
        return f"lost topics {missing}" if missing else None

    async def run(self) -> None:
        """Check now, then every `interval_s`; a failed recovery is retried at the next check."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("restoring state after a broker loss failed; retrying")
            await asyncio.sleep(self._interval_s)
