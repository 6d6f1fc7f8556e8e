"""`connect311-ingestor`: import, replay and poll city 311 feeds, or run the service.

One module per command group; this one only builds the Typer app in help order.
"""

from __future__ import annotations

import typer

from connect311_ingestor.cli.check_command import check
from connect311_ingestor.cli.feed_commands import backfill, poll, run_command
from connect311_ingestor.cli.file_commands import import_command, replay
from connect311_ingestor.cli.source_commands import sources_app, status

__all__ = ["app", "main"]

app = typer.Typer(
    help="Connect311 ingestor: city 311 feeds onto Kafka as request events.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _logging(
    log_level: str = typer.Option(
        "INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR (every command)"
    ),
) -> None:
    """Connect311 ingestor: city 311 feeds onto Kafka as request events."""
    from connect311_bus.logs import configure_logging

    if log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise typer.BadParameter("use DEBUG, INFO, WARNING or ERROR", param_hint="--log-level")
    configure_logging("ingestor", log_level.upper())  # LOG_FORMAT=json|text


app.command("import")(import_command)
app.command()(replay)
app.command()(check)
app.command()(poll)
app.command("run")(run_command)
app.command()(status)
app.add_typer(sources_app, name="sources")
app.command()(backfill)


def main() -> None:
    """Console-script entry point (logging is set up by the `--log-level` callback)."""
    app()
