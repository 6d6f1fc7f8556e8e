"""Running a poller forever: polite intervals, longer back-off while a feed keeps failing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Protocol

from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.pipeline import IngestSummary

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0


class Poller(Protocol):
    """Anything that polls one source once."""

    @property
    def source(self) -> str: ...

    async def poll_once(self) -> IngestSummary: ...


def next_delay(interval_s: float, failures: int) -> float:
    """Seconds until the next poll: the interval, doubled per consecutive failure, jittered."""
    base = min(interval_s * 2.0**failures, max(MAX_BACKOFF_S, interval_s))
    return base * random.uniform(0.9, 1.1)


async def run_forever(
    poller: Poller, interval_s: float, metrics: IngestMetrics, stop: asyncio.Event
) -> None:
    """Poll until `stop` is set; a failing cycle is counted and retried later, never fatal."""
    failures = 0
    while not stop.is_set():
        try:
            summary = await poller.poll_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A feed or broker outage must not stop the other feeds or the push endpoint.
            failures += 1
            metrics.poll_errors.labels(poller.source).inc()
            log.exception("poll of %s failed (%d in a row)", poller.source, failures)
        else:
            failures = 0
            metrics.last_poll.labels(poller.source).set(time.time())
            log.info(
                "polled %s: %d records, events %s, rejects %s",
                poller.source,
                summary.records,
                dict(summary.events),
                dict(summary.rejects),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), next_delay(interval_s, failures))
