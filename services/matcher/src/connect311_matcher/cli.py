"""`connect311-matcher`: run the matcher (subscriptions + request events -> notifications)."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer
from aiokafka.errors import KafkaError

from connect311_contracts.logs import configure_logging
from connect311_contracts.settings import KafkaSettings
from connect311_matcher.http import bound_port, start_http
from connect311_matcher.service import Matcher
from connect311_matcher.settings import MatcherSettings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
log = logging.getLogger("connect311_matcher")


@app.callback()
def main() -> None:
    """Connect311 matcher: who must hear about each 311 request event."""


@app.command()
def run(
    http_port: int | None = typer.Option(None, help="Override MATCHER_HTTP_PORT (0 = any free)"),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """Run until SIGTERM/SIGINT. Settings: MATCHER_* and KAFKA_* environment variables."""
    configure_logging("matcher", log_level)  # LOG_FORMAT=json|text
    settings = MatcherSettings()
    if http_port is not None:
        settings = settings.model_copy(update={"http_port": http_port})
    try:
        asyncio.run(_serve(settings, KafkaSettings()))
    except (OSError, KafkaError) as exc:
        typer.echo(
            f"matcher could not start: {exc}. Is Kafka reachable at KAFKA_BOOTSTRAP_SERVERS and "
            "is MATCHER_HTTP_PORT free?",
            err=True,
        )
        raise typer.Exit(1) from exc


async def _serve(settings: MatcherSettings, kafka: KafkaSettings) -> None:
    matcher = Matcher(settings, kafka)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, matcher.stop)
    runner = await start_http(matcher, settings.http_host, settings.http_port)
    log.info("health and metrics on http://%s:%d", settings.http_host, bound_port(runner))
    try:
        async with matcher.metrics.loop_lag.running():
            await matcher.run()
    finally:
        await runner.cleanup()
        log.info("matcher stopped")
