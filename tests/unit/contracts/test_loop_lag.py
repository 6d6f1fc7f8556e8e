"""The event-loop lag sampler: a blocked loop shows in the metric and in one warning."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from connect311_bus.loop_lag import LoopLag
from connect311_ingestor.metrics import IngestMetrics
from connect311_map_api.metrics import Metrics as MapApiMetrics
from connect311_matcher.metrics import MatcherMetrics
from connect311_notifier.metrics import Metrics as NotifierMetrics


def _sample(registry: CollectorRegistry, name: str, le: str | None = None) -> float:
    value = registry.get_sample_value(name, {"le": le} if le else None)
    assert value is not None, name
    return value


async def test_a_300_ms_block_shows_in_the_metric_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    lag = LoopLag(registry, "svc", interval_s=0.02)
    caplog.set_level(logging.WARNING, logger="connect311_bus.loop_lag")
    async with lag.running():
        await asyncio.sleep(0.1)  # a few normal samples first
        time.sleep(0.3)  # noqa: ASYNC251 - the blocking callback under test
        await asyncio.sleep(0.1)  # the sampler wakes late once, then runs normally
        time.sleep(0.3)  # noqa: ASYNC251 - a second episode, inside the quiet period
        await asyncio.sleep(0.1)
    # >= : on a busy shared CPU another sample may also run late; the two blocks always do.
    assert _sample(registry, "svc_event_loop_blocked_total") >= 2
    over = _sample(registry, "svc_event_loop_lag_seconds_count") - _sample(
        registry, "svc_event_loop_lag_seconds_bucket", "0.1"
    )
    assert over >= 2  # the two late samples
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings  # the second episode fell in the quiet period
    assert "event loop blocked for" in warnings[0] and "asyncio.to_thread" in warnings[0]
    blocked_ms = float(warnings[0].split("blocked for ")[1].split(" ms")[0])
    assert 250 <= blocked_ms < 1_000


def test_one_warning_per_episode_and_the_quiet_period_ends() -> None:
    now = [0.0]
    lag = LoopLag(CollectorRegistry(), "t", quiet_s=60, clock=lambda: now[0])
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("connect311_bus.loop_lag")
    logger.addHandler(handler)
    try:
        for sample in (0.0, 0.2, 0.3, 0.5, 0.0):  # one episode over three samples
            lag.observe(sample)
        now[0] = 10.0
        lag.observe(0.2)  # a new episode inside the quiet period: not logged
        lag.observe(0.0)
        now[0] = 61.0
        lag.observe(0.15)
    finally:
        logger.removeHandler(handler)
    assert len(logged) == 2
    assert "blocked for 200 ms" in logged[0]
    assert "blocked for 150 ms" in logged[1] and "1 more episodes" in logged[1]


@pytest.mark.parametrize(
    ("metrics", "name"),
    [
        (IngestMetrics, "ingestor_event_loop_lag_seconds"),
        (MatcherMetrics, "matcher_event_loop_lag_seconds"),
        (NotifierMetrics, "notifier_event_loop_lag_seconds"),
        (MapApiMetrics, "map_api_event_loop_lag_seconds"),
    ],
)
def test_every_service_exposes_the_lag_on_its_own_registry(metrics: type, name: str) -> None:
    exposed = generate_latest(metrics().registry).decode()  # what each /metrics serves
    assert f"# TYPE {name} histogram" in exposed
    assert name.replace("_lag_seconds", "_blocked_total") in exposed
