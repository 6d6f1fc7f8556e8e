"""Composition root: settings, ledger, Kafka, SMTP and HTTP wired together and run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from connect311_bus.broker_watch import BrokerWatch
from connect311_bus.kafka import consumer, ensure_topics, producer
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.topics import NOTIFICATIONS
from connect311_notifier.consumer import CommandConsumer
from connect311_notifier.http import make_app
from connect311_notifier.ledger import Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mailer import Mailer
from connect311_notifier.metrics import Metrics
from connect311_notifier.render import Renderer
from connect311_notifier.sender import Sender
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.webhook_client import DeliveryLimits, WebhookClient
from connect311_notifier.webhook_sender import WebhookSender
from connect311_notifier.webhook_target import TargetPolicy

log = logging.getLogger(__name__)


def _prepare_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _broker_watch(
    kafka: KafkaSettings, commands: CommandConsumer, settings: NotifierSettings
) -> Coroutine[Any, Any, None]:
    """Re-read notifications from the start after the broker lost them (memory-only broker).

    Positions from before the loss may point into the new log and skip records there; the
    ledger drops every command that was already handled, so re-reading loses and doubles
    nothing.
    """

    async def rewind() -> None:
        commands.rewind.request()

    watch = BrokerWatch(
        kafka, rewind, settings.broker_check_s, client_id="connect311-notifier-watch"
    )
    return watch.run()


async def run(
    settings: NotifierSettings,
    kafka: KafkaSettings,
    signing: SigningSettings,
    stop: asyncio.Event | None = None,
    handle_signals: bool = False,
) -> None:
    """Run the notifier until `stop` is set (or SIGTERM/SIGINT); then shut down gracefully."""
    signing.refuse_development_secret()  # before anything starts: one line, what to set
    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    _prepare_sqlite_dir(settings.database_url)
    engine = create_engine(settings.database_url)
    ledger = Ledger(engine, instant_cap=settings.instant_per_hour)
    await asyncio.to_thread(ledger.create_schema)
    await ensure_topics(kafka)
    metrics = Metrics()
    links = LinkBuilder(signing.public_base_url, signing.secret_key.get_secret_value())
    mailers = [Mailer(settings) for _ in range(settings.smtp_connections)]
    kafka_producer = producer(kafka, "notifier")
    kafka_consumer = consumer(
        kafka,
        settings.group_id,
        NOTIFICATIONS.name,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=settings.batch_size,
    )
    await kafka_producer.start()
    await kafka_consumer.start()
    sender = Sender(
        settings, ledger, mailers, Renderer.create(settings, links), kafka_producer, metrics
    )
    hook_client = WebhookClient(
        TargetPolicy(allow=tuple(settings.webhook_allow)),
        DeliveryLimits(
            timeout_s=settings.webhook_timeout_s,
            connect_timeout_s=min(5.0, settings.webhook_timeout_s),
        ),
    )
    hooks = WebhookSender(
        settings,
        ledger,
        hook_client,
        links,
        kafka_producer,
        metrics,
        signing.secret_key.get_secret_value(),
        on_email=sender.wake.set,
    )

    def recorded() -> None:
        sender.wake.set()
        hooks.wake.set()

    commands = CommandConsumer(
        settings, kafka_consumer, kafka_producer, ledger, metrics, on_recorded=recorded
    )
    runner = web.AppRunner(make_app(ledger, metrics, lambda: not stop.is_set()))
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info(
        "notifier running: SMTP %s:%d, HTTP %s:%d, ledger %s",
        settings.smtp_host,
        settings.smtp_port,
        settings.http_host,
        settings.http_port,
        engine.url.render_as_string(hide_password=True),
    )
    tasks = [
        asyncio.create_task(commands.run(stop), name="consumer"),
        asyncio.create_task(sender.run(stop), name="sender"),
        asyncio.create_task(hooks.run(stop), name="webhooks"),
    ]
    watch = asyncio.create_task(_broker_watch(kafka, commands, settings), name="watch")
    lag = asyncio.create_task(metrics.loop_lag.run(), name="loop-lag")
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # surface a crash of either loop
    finally:
        stop.set()
        watch.cancel()
        lag.cancel()
        await asyncio.gather(*tasks, watch, lag, return_exceptions=True)
        await kafka_consumer.stop()
        await kafka_producer.stop()
        for mailer in mailers:
            await mailer.close()
        await hook_client.aclose()
        await runner.cleanup()
        engine.dispose()
        log.info("notifier stopped")
