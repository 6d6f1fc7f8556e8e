"""Composition root: settings, Kafka clients, the matcher and its HTTP server wired and run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings
from connect311_matcher.clients import build_clients
from connect311_matcher.http import bound_port, start_http
from connect311_matcher.metrics import MatcherMetrics
from connect311_matcher.service import Matcher
from connect311_matcher.settings import MatcherSettings

__all__ = ["build_matcher", "run"]

log = logging.getLogger(__name__)


def build_matcher(
    settings: MatcherSettings, kafka: KafkaSettings, metrics: MatcherMetrics | None = None
) -> Matcher:
    """A matcher with its own unstarted clients (call inside the loop that will run it)."""
    return Matcher(settings, build_clients(settings, kafka), metrics)


async def run(
    settings: MatcherSettings, kafka: KafkaSettings, handle_signals: bool = False
) -> None:
    """Run one matcher and its /healthz, /livez, /metrics until `stop()` or SIGTERM/SIGINT."""
    if settings.create_topics:
        await ensure_topics(kafka)
    matcher = build_matcher(settings, kafka)
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, matcher.stop)
    runner = await start_http(matcher, settings.http_host, settings.http_port)
    log.info("health and metrics on http://%s:%d", settings.http_host, bound_port(runner))
    try:
        async with matcher.metrics.loop_lag.running():
            await matcher.run()
    finally:
        await runner.cleanup()
        log.info("matcher stopped")
