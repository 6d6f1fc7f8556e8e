"""The poll loop: a failing feed is counted and retried later, never fatal."""

from __future__ import annotations

import asyncio

from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.pipeline import IngestSummary
from connect311_ingestor.sources.loop import run_forever


class FlakyPoller:
    """Fails on its first poll, succeeds after, and stops the loop on the third."""

    source = "flaky"

    def __init__(self, stop: asyncio.Event) -> None:
        self.calls = 0
        self.stop = stop

    async def poll_once(self) -> IngestSummary:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("feed down")
        if self.calls == 3:
            self.stop.set()
        return IngestSummary(records=2)


async def test_errors_are_counted_and_success_sets_last_poll_time() -> None:
    stop = asyncio.Event()
    poller = FlakyPoller(stop)
    metrics = IngestMetrics()
    await asyncio.wait_for(run_forever(poller, 0.01, metrics, stop), timeout=10)
    assert poller.calls == 3
    value = metrics.registry.get_sample_value
    assert value("ingestor_poll_errors_total", {"source": "flaky"}) == 1.0
    last = value("ingestor_last_successful_poll_timestamp_seconds", {"source": "flaky"})
    assert last is not None and last > 1_700_000_000
