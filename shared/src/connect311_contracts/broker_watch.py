"""Notice when the broker lost what it held, and put back what this service owns.

The local broker keeps everything in memory, so a restart forgets every topic and message.
Signs of that: a contract topic is missing, or the broker was unreachable and answers again.
On either, topics are re-created with their partitions and `on_recovered` runs: the owner puts
back what it owns (the ingestor re-publishes its recent events, the map API every subscription).
Both re-publish idempotently (same event ids, same keys), so a false alarm (a network blip on
real Kafka) costs one extra copy of each message, which consumers drop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum

from aiokafka.admin import AIOKafkaAdminClient

from connect311_contracts.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import ALL_TOPICS

log = logging.getLogger(__name__)


class BrokerState(StrEnum):
    """What one check found."""

    OK = "ok"
    DOWN = "down"
    RECOVERED = "recovered"


async def list_topics(kafka: KafkaSettings, timeout_s: float, client_id: str) -> set[str]:
    """The broker's topic names (a metadata request that creates nothing)."""
    admin = AIOKafkaAdminClient(**kafka.connection_kwargs(), client_id=client_id)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        return set(await asyncio.wait_for(admin.list_topics(), timeout_s))
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
        self.recoveries = 0

    async def check(self) -> BrokerState:
        """One check; restores topics and state when the broker lost them."""
        try:
            topics = await list_topics(self._kafka, self._timeout_s, self._client_id)
        except Exception as exc:  # any client error means unreachable; the reason goes to the log
            if not self._down:
                log.warning("broker unreachable (%s); will restore state when it is back", exc)
            self._down = True
            return BrokerState.DOWN
        missing = sorted(spec.name for spec in ALL_TOPICS if spec.name not in topics)
        if not missing and not self._down:
            return BrokerState.OK
        log.warning(
            "broker %s; re-creating topics and re-publishing owned state",
            f"lost topics {missing}" if missing else "is reachable again",
        )
        await ensure_topics(self._kafka, attempts=1)
        await self._on_recovered()
        self._down = False
        self.recoveries += 1
        return BrokerState.RECOVERED

    async def run(self) -> None:
        """Check forever; a failed recovery is retried at the next check."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._down = True  # try the whole recovery again next time
                log.exception("restoring state after a broker loss failed; retrying")
