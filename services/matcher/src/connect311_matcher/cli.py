"""`connect311-matcher`: run the matcher (subscriptions + request events -> notifications)."""

from __future__ import annotations

import asyncio

import typer
from aiokafka.errors import KafkaError

from connect311_bus.logs import configure_logging
from connect311_contracts.settings import KafkaSettings
from connect311_matcher.app import run as run_matcher
from connect311_matcher.settings import MatcherSettings

__all__ = ["app", "main"]

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.callback()
def root() -> None:
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
        asyncio.run(run_matcher(settings, KafkaSettings(), handle_signals=True))
    except (OSError, KafkaError) as exc:
        typer.echo(
            f"matcher could not start: {exc}. Is Kafka reachable at KAFKA_BOOTSTRAP_SERVERS and "
            "is MATCHER_HTTP_PORT free?",
            err=True,
        )
        raise typer.Exit(1) from exc


def main() -> None:
    """Entry point for [project.scripts] and `python -m connect311_matcher`."""
    app()
