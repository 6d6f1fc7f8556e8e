"""Composition root: wires settings, database, Kafka, sources and the HTTP app together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from fastapi import FastAPI

from connect311_bus.broker_watch import BrokerWatch
from connect311_bus.http_limits import HttpLimits, guarded_http
from connect311_bus.kafka import ensure_topics, producer
from connect311_bus.proxies import proxy_options
from connect311_contracts.settings import KafkaSettings
from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.overdue_sweep import OverdueSweeper
from connect311_ingestor.pipeline import Ingestor
from connect311_ingestor.publisher import Publisher
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.sources.http import Backoff, Fetcher
from connect311_ingestor.sources.loop import Poller, run_forever
from connect311_ingestor.sources.open311 import Open311Poller
from connect311_ingestor.sources.seeclickfix import SeeClickFixPoller
from connect311_ingestor.store import IngestorStore
from connect311_ingestor.web import create_app

log = logging.getLogger(__name__)


class BrokerUnreachable(RuntimeError):
    """Kafka could not be reached; the message says how to start the local broker."""


def broker_hint(kafka: KafkaSettings) -> str:
    """What to tell a user whose broker is not answering."""
    return (
        f"cannot reach the Kafka broker at {kafka.bootstrap_servers}. Start the local one with "
        "`connect311 broker` (or point KAFKA_BOOTSTRAP_SERVERS at yours) and try again."
    )


@dataclass
class Runtime:
    """Everything a running ingestor holds."""

    settings: IngestorSettings
    kafka: KafkaSettings
    store: IngestorStore
    producer: AIOKafkaProducer
    ingestor: Ingestor
    metrics: IngestMetrics

    async def health(self) -> dict[str, str]:
        """Whether the database and the broker answer right now."""
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(self.store.ping)
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not healthy", with the reason
            checks["database"] = f"error: {exc.__class__.__name__}"
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3)
            checks["broker"] = "ok"
        except (TimeoutError, KafkaError) as exc:
            checks["broker"] = f"error: {exc.__class__.__name__}"
        return checks

    def http_app(self) -> FastAPI:
        """The push / health / metrics app over this runtime."""
        return create_app(self.ingestor, self.settings, self.health)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's logger for a moment (its errors are reported another way)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.asynccontextmanager
async def running(settings: IngestorSettings, kafka: KafkaSettings) -> AsyncIterator[Runtime]:
    """Open the store, ensure topics, start the producer; close all on exit."""
    store = await asyncio.to_thread(IngestorStore.from_url, settings.database_url)
    try:
        kafka_producer = producer(
            kafka,
            "ingestor",
            linger_ms=20,
            max_batch_size=1024 * 1024,
            compression_type=settings.kafka_compression,
        )
        with _quiet("aiokafka"):  # a refused connection is explained once, by BrokerUnreachable
            try:
                await ensure_topics(kafka, attempts=settings.broker_connect_attempts)
                await kafka_producer.start()
            except KafkaConnectionError as exc:
                await kafka_producer.stop()
                raise BrokerUnreachable(broker_hint(kafka)) from exc
        metrics = IngestMetrics()
        keep = timedelta(seconds=settings.republish_window_s)
        ingestor = Ingestor(
            store,
            Publisher(kafka_producer, settings.publish_timeout_s),
            metrics,
            keep_published=keep,
        )
        try:
            yield Runtime(settings, kafka, store, kafka_producer, ingestor, metrics)
        finally:
            await kafka_producer.stop()
    finally:
        store.close()


def http_client(settings: IngestorSettings) -> httpx.AsyncClient:
    """The HTTP client pollers share."""
    return httpx.AsyncClient(
        timeout=settings.http_timeout_s,
        headers={"User-Agent": settings.user_agent},
        follow_redirects=True,
    )


def make_pollers(runtime: Runtime, client: httpx.AsyncClient) -> list[Poller]:
    """One poller per configured feed."""
    settings = runtime.settings
    fetcher = Fetcher(
        client,
        max_bytes=int(settings.max_response_mb * 1024 * 1024),
        retries=settings.http_retries,
        backoff=Backoff(),
    )
    pollers: list[Poller] = [
        Open311Poller(f, fetcher, runtime.ingestor) for f in settings.open311_feeds
    ]
    pollers += [SeeClickFixPoller(f, fetcher, runtime.ingestor) for f in settings.seeclickfix_feeds]
    return pollers


async def run_pollers(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run every configured poller, the broker watch and the overdue clock until `stop`."""
    watch = asyncio.create_task(watch_broker(runtime, stop))
    overdue = asyncio.create_task(
        overdue_sweeper(runtime).run(runtime.settings.overdue_check_s, stop)
    )
    try:
        async with runtime.metrics.loop_lag.running(), http_client(runtime.settings) as client:
            pollers = make_pollers(runtime, client)
            if not pollers:
                log.info(
                    "no feeds configured (INGESTOR_OPEN311_FEEDS / INGESTOR_SEECLICKFIX_FEEDS)"
                )
            interval = runtime.settings.poll_interval_s
            await asyncio.gather(
                *(run_forever(p, interval, runtime.metrics, stop, runtime.store) for p in pollers)
            )
            await stop.wait()  # without feeds the watch still guards pushed events
    finally:
        watch.cancel()
        overdue.cancel()
        await asyncio.gather(watch, overdue, return_exceptions=True)


def overdue_sweeper(runtime: Runtime) -> OverdueSweeper:
    """The overdue clock over this runtime's store and producer (see overdue_sweep.py)."""
    settings = runtime.settings
    return OverdueSweeper(
        runtime.ingestor,
        settings.service_levels_file,
        settings.city_timezone,
        timedelta(seconds=settings.overdue_alert_window_s),
        batch_size=settings.batch_size,
    )


async def watch_broker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Re-create topics and re-publish recent events whenever the broker lost them."""

    async def restore() -> None:
        runtime.metrics.broker_recoveries.inc()
        count = await runtime.ingestor.republish_recent()
        log.warning("re-published %d recent events after a broker loss", count)

    watch = BrokerWatch(
        runtime.kafka,
        restore,
        runtime.settings.broker_check_s,
        client_id="connect311-ingestor-watch",
    )
    run = asyncio.create_task(watch.run())
    try:
        await stop.wait()
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


def http_protocol(runtime: Runtime) -> type[asyncio.Protocol]:
    """uvicorn's protocol with the settings' size caps and read deadlines, refusals counted."""
    settings = runtime.settings
    limits = HttpLimits(
        max_request_line_bytes=settings.http_max_request_line_bytes,
        max_header_bytes=settings.http_max_header_bytes,
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
    )
    refused = runtime.metrics.http_refused
    return guarded_http(limits, lambda status: refused.labels(str(status)).inc())


async def serve(runtime: Runtime) -> None:
    """HTTP push/health/metrics plus every poller, until SIGTERM or Ctrl-C."""
    settings = runtime.settings
    config = uvicorn.Config(
        runtime.http_app(),
        host=settings.http_host,
        port=settings.http_port,
        # The CLI's --log-level (uvicorn would otherwise set its own loggers, the access
        # log too, to INFO whatever was asked).
        log_level=logging.getLogger().getEffectiveLevel(),
        log_config=None,  # uvicorn's lines go through configure_logging's handler
        lifespan="off",
        http=http_protocol(runtime),  # 414/431/408 before the app sees a request
        **proxy_options(settings.trusted_proxies),  # empty: X-Forwarded-For is ignored
    )
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    pollers = asyncio.create_task(run_pollers(runtime, stop))
    try:
        await server.serve()
    finally:
        stop.set()
        await pollers
