"""Event-loop lag: how late the loop runs a timer, as a metric and a warning.

Every service runs on one asyncio loop; a callback that blocks it (a backtracking regex, sync
I/O, a CPU loop) stalls every request and consumer at once. A sampler task sleeps a short
interval and measures how much longer than asked it slept: that oversleep is the time some
callback held the loop. Cheaper than asyncio debug mode (`slow_callback_duration`), which
instruments every callback. A block shorter than the interval can be under-reported by up to
one interval, so the default interval is half the warning threshold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LAG_BUCKETS", "LoopLag"]

log = logging.getLogger(__name__)

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


class LoopLag:
    """Samples the running loop's lag into `<prefix>_event_loop_lag_seconds` and warns.

    One WARNING per blocked episode (consecutive samples over `warn_s`), and at most one per
    `quiet_s`: an overloaded loop must not also flood the log.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        prefix: str,
        *,
        interval_s: float = 0.05,
        warn_s: float = 0.1,
        quiet_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s, self.warn_s, self.quiet_s, self._clock = interval_s, warn_s, quiet_s, clock
        self.histogram = Histogram(
            f"{prefix}_event_loop_lag_seconds",
            "How late the event loop ran a timer: time a callback blocked every other task",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.last = Gauge(
            f"{prefix}_event_loop_lag_last_seconds",
            "The event loop's most recent lag sample",
            registry=registry,
        )
        self.blocked = Counter(
            f"{prefix}_event_loop_blocked",
            f"Episodes in which a callback blocked the event loop over {warn_s * 1000:.0f} ms",
            registry=registry,
        )
        self._in_episode = False
        self._last_warning = -math.inf
        self._unwarned = 0  # episodes since the last warning (rate-limited away)

    def observe(self, lag_s: float) -> None:
        """Record one sample; warn when it starts a blocked episode (rate-limited)."""
        lag_s = max(0.0, lag_s)
        self.histogram.observe(lag_s)
        self.last.set(lag_s)
        if lag_s < self.warn_s:
            self._in_episode = False
            return
        if self._in_episode:
            return  # the same episode: warned (or rate-limited) at its start
        self._in_episode = True
        self.blocked.inc()
        now = self._clock()
        if now - self._last_warning < self.quiet_s:
            self._unwarned += 1
            return
        also = f" ({self._unwarned} more episodes since the last warning)" if self._unwarned else ""
        log.warning(
            "event loop blocked for %.0f ms (over %.0f ms)%s: some callback ran without yielding; "
            "move blocking or CPU-heavy work off the loop (asyncio.to_thread)",
            lag_s * 1000,
            self.warn_s * 1000,
            also,
        )
        self._last_warning, self._unwarned = now, 0

    async def run(self) -> None:
        """Sample forever (cancel to stop)."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.interval_s)
            self.observe(loop.time() - asked - self.interval_s)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sample while the block runs."""
        task = asyncio.create_task(self.run(), name="loop-lag")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
