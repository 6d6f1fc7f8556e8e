"""The `connect311-notifier` command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Annotated

import typer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import SQLAlchemyError

from connect311_bus.logs import configure_logging
from connect311_contracts.settings import (
    DevelopmentSecretRefused,
    KafkaSettings,
    SigningSettings,
)
from connect311_notifier.ledger import Ledger, create_engine
from connect311_notifier.policy import Channel, EmailStatus
from connect311_notifier.settings import NotifierSettings

__all__ = ["app", "main", "status_lines"]

app = typer.Typer(
    help="Connect311 notifier: notification commands from Kafka to email, each sent once.",
    no_args_is_help=True,
)


@app.command()
def run(
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Consume notifications.v1 and send email until SIGTERM/Ctrl-C (then finish and commit).

    Configure with NOTIFIER_* (SMTP, database, limits), KAFKA_* and CONNECT311_* variables.
    """
    from connect311_notifier.app import run as run_notifier

    configure_logging("notifier", log_level)  # LOG_FORMAT=json|text
    settings = NotifierSettings()
    try:
        asyncio.run(run_notifier(settings, KafkaSettings(), SigningSettings(), handle_signals=True))
    except DevelopmentSecretRefused as exc:
        _fail(str(exc))
    except KafkaConnectionError as exc:
        _fail(f"Kafka is not reachable ({exc}): start it or set KAFKA_BOOTSTRAP_SERVERS.")
    except SQLAlchemyError as exc:
        _fail(f"the ledger database failed ({exc}): check NOTIFIER_DATABASE_URL.")
    except OSError as exc:
        _fail(
            f"could not start ({exc}): is NOTIFIER_HTTP_PORT ({settings.http_port}) free and "
            f"the ledger's directory writable?"
        )


def _fail(message: str) -> None:
    typer.echo(f"connect311-notifier: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def status() -> None:
    """Print the ledger's emails and webhooks per delivery status, and the digest queue."""
    settings = NotifierSettings()
    ledger_path = settings.database_url.removeprefix("sqlite:///")
    if settings.database_url.startswith("sqlite:///") and not os.path.exists(ledger_path):
        # A relative path is relative to here: say where that is (the local run uses var/).
        typer.echo(
            f"no ledger at {os.path.abspath(ledger_path)} yet: start the notifier from the "
            "project root (`make run` or `connect311-notifier run`), or set NOTIFIER_DATABASE_URL"
        )
        raise typer.Exit(1)
    ledger = Ledger(create_engine(settings.database_url))
    lines = status_lines(
        ledger.status_counts(Channel.EMAIL),
        ledger.status_counts(Channel.WEBHOOK),
        ledger.digest_queue_size(),
    )
    for line in lines:
        typer.echo(line)


def status_lines(
    emails: Mapping[EmailStatus, int], webhooks: Mapping[EmailStatus, int], digest_queue: int
) -> list[str]:
    """The status table: emails and webhooks in separate columns (the outbox holds both, and
    a webhook is not an email), every state in delivery order, then the digest queue."""
    lines = [f"{'state':12} {'emails':>8} {'webhooks':>8}"]
    for state in EmailStatus:
        lines.append(f"{state.value:12} {emails.get(state, 0):>8} {webhooks.get(state, 0):>8}")
    lines.append(f"{'digest queue':12} {digest_queue:>8}  (digest items waiting for their email)")
    return lines


def main() -> None:
    """Entry point for [project.scripts]."""
    app()
