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
    """Console-script entry point (logging is set up by the `--log-level` callback).

    A usage mistake (unknown option or command, missing or invalid argument) is one line
    naming the help to read, like every other error, instead of Click's boxed usage text.
    """
    import sys

    from connect311_ingestor.cli.common import fail

    try:
        code = app(prog_name="connect311-ingestor", standalone_mode=False)
    except typer.Abort:
        code = fail("interrupted: nothing more was done; run the command again").exit_code
    except typer.TyperException as exc:  # Click's usage and parameter errors
        context = getattr(exc, "ctx", None)
        code = getattr(exc, "exit_code", 2)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            typer.echo(context.get_help())  # no arguments: the help, as before
            sys.exit(code)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        code = fail(f"{exc.format_message().rstrip('.')}{where}").exit_code
    sys.exit(code if isinstance(code, int) else 0)
