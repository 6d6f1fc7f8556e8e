"""What every ingestor command shares: settings, profiles, one-line errors, the async runner.

Heavy modules (Kafka, SQLAlchemy, FastAPI) are imported inside functions so --help is quick.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pydantic import ValidationError

    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.parsers.profiles import ColumnProfile
    from connect311_ingestor.pipeline import IngestSummary
    from connect311_ingestor.settings import IngestorSettings
    from connect311_ingestor.store import IngestorStore

__all__ = [
    "FileArgument",
    "LimitOption",
    "NameArgument",
    "ProfileOption",
    "SourceOption",
    "console",
    "database_problem",
    "fail",
    "first_line",
    "load_settings",
    "one_shot",
    "one_shot_setup",
    "profile_problem",
    "progress_bar",
    "readable",
    "resolve_profile",
    "run_async",
    "settings_error",
    "summary_table",
    "with_store",
]

console = Console(stderr=True)
T = TypeVar("T")

ProfileOption = Annotated[
    str,
    typer.Option(
        "--profile",
        "-p",
        help="Column profile: nyc, chicago, boston, open311, seeclickfix, "
        "or a path to a mapping .json/.toml",
    ),
]
FileArgument = Annotated[
    Path,
    typer.Argument(
        help="CSV, JSON or JSONL export, an Open311 GeoReport v2 requests .xml/.json, "
        "or a saved SeeClickFix issues page .json"
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Source name instead of the profile's (request ids become '<source>:<id>')",
    ),
]
LimitOption = Annotated[int | None, typer.Option(min=1, help="Read at most N rows")]
NameArgument = Annotated[str, typer.Argument(help="Source name, e.g. sf311")]
_FORMATS = {".csv", ".json", ".jsonl", ".ndjson", ".xml"}


def fail(message: str) -> typer.Exit:
    """Exit 2 after ONE line on stderr (never wrapped, never read as markup)."""
    console.print(Text.assemble(("error: ", "bold red"), first_line(message)), soft_wrap=True)
    return typer.Exit(code=2)


def first_line(message: str) -> str:
    """The first line of an error message (driver errors append SQL and links below it)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def readable(file: Path) -> Path:
    """The export to read, or a one-line error saying what is wrong with the path."""
    if not file.exists():
        raise fail(f"no file {str(file)!r}: check the path (relative to {Path.cwd()})")
    if not file.is_file():
        raise fail(f"{str(file)!r} is a folder: give the path of one export file")
    if file.suffix.lower() not in _FORMATS:
        raise fail(
            f"cannot tell the format of {file.name}: name it .csv, .json, .jsonl or "
            ".xml (Open311 GeoReport v2)"
        )
    return file


def settings_error(exc: ValidationError, env_prefix: str) -> str:
    """One line for invalid settings: the env variable, what is wrong, what to do."""
    errors = exc.errors()
    first = errors[0]
    location = [str(part) for part in first["loc"]]
    variable = f"{env_prefix}{location[0].upper()}" if location else env_prefix.rstrip("_")
    inside = f" (at {'.'.join(location[1:])})" if len(location) > 1 else ""
    more = f"; {len(errors) - 1} more problem(s) after it" if len(errors) > 1 else ""
    return (
        f"{variable} is invalid{inside}: {first['msg']}{more}. "
        f"Fix or unset {variable} (docs/feeds.md lists every setting)."
    )


def load_settings() -> tuple[IngestorSettings, KafkaSettings]:
    from pydantic import ValidationError

    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.settings import IngestorSettings

    try:
        settings = IngestorSettings()
    except ValidationError as exc:
        raise fail(settings_error(exc, "INGESTOR_")) from None
    try:
        return settings, KafkaSettings()
    except ValidationError as exc:
        raise fail(settings_error(exc, "KAFKA_")) from None


def one_shot(settings: IngestorSettings) -> IngestorSettings:
    """Settings for import/replay: no re-publish window (a rerun publishes what is missing)."""
    return settings.model_copy(update={"republish_window_s": 0.0})


def one_shot_setup(
    file: Path, profile: str, source: str | None
) -> tuple[Path, IngestorSettings, KafkaSettings, ColumnProfile]:
    """What import and replay check first: the file, one-shot settings, the profile."""
    readable_file = readable(file)
    settings, kafka = load_settings()
    return readable_file, one_shot(settings), kafka, resolve_profile(profile, source)


def resolve_profile(name: str, source: str | None = None) -> ColumnProfile:
    """The named or loaded profile, its source renamed by --source; one-line errors."""
    profile = _load_profile(name)
    return profile.model_copy(update={"source": source}) if source else profile


def _load_profile(name: str) -> ColumnProfile:
    from pydantic import ValidationError

    from connect311_ingestor.parsers.profiles import get_profile

    try:
        return get_profile(name)
    except ValidationError as exc:
        raise fail(f"profile {name!r} is invalid: {profile_problem(exc)}") from None
    except (KeyError, ValueError, OSError) as exc:
        if Path(name).is_file():
            raise fail(
                f"cannot read profile {name!r}: {first_line(str(exc))}; fix the file "
                "(JSON or TOML, keys in docs/feeds.md)"
            ) from None
        raise fail(
            f"unknown profile {name!r}: use nyc, chicago, boston, open311, seeclickfix "
            "or the path of a mapping .json/.toml (docs/feeds.md)"
        ) from None


def profile_problem(exc: ValidationError) -> str:
    """The first problem of a profile file, named by its key path, in one line."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    return f"{where}: {first['msg']} (fix that key; docs/feeds.md lists every profile key)"


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work; SIGTERM and Ctrl-C stop it cleanly, with a clear error on outages."""
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import SQLAlchemyError

    from connect311_ingestor.app import BrokerUnreachable

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await work()

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("stopped.")
        raise typer.Exit(code=0) from None
    except BrokerUnreachable as exc:
        raise fail(str(exc)) from exc
    except KafkaError as exc:
        raise fail(
            f"the Kafka broker failed mid-run ({exc.__class__.__name__}: {first_line(str(exc))})"
            ". Nothing was "
            "recorded as done that was not acknowledged: run the same command again once the "
            "broker is back (`connect311 broker` starts the local one)."
        ) from exc
    except SQLAlchemyError as exc:
        raise fail(database_problem(exc)) from None
    except OSError as exc:
        raise fail(
            f"cannot use {exc.filename or 'a file'}: {exc.strerror or exc}. Check the path, "
            "its permissions and INGESTOR_DATABASE_URL (default sqlite:///var/ingestor.db)."
        ) from None


def database_problem(exc: Exception) -> str:
    """One line for a database that cannot be reached or used."""
    return (
        f"database problem: {exc.__class__.__name__}: {first_line(str(exc))}. "
        "Check that the database is running and INGESTOR_DATABASE_URL points at it "
        "(default sqlite:///var/ingestor.db)."
    )


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def summary_table(title: str, summary: IngestSummary) -> Table:
    """The end-of-run summary: accepted, events by type, unchanged, anomalies per kind,
    excluded, rejects per reason."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("records read", str(summary.records))
    if summary.rows > summary.records:
        table.add_row("  from export rows (several rows per record)", str(summary.rows))
    table.add_row("accepted", str(summary.accepted))
    for event_type, n in sorted(summary.events.items()):
        table.add_row(f"  event {event_type}", str(n))
    table.add_row("  unchanged (no event)", str(summary.unchanged))
    if summary.backfill:
        table.add_row("  events marked backfill (history, no alerts)", "yes")
    if summary.past_notes:
        table.add_row("  past status notes filed as history", str(summary.past_notes))
    if summary.unmatched_updates:
        table.add_row("  updates of requests not seen yet", str(summary.unmatched_updates))
    if summary.anomalies:
        table.add_row("  kept with a data-quality anomaly (by kind)", "")
        for kind, n in sorted(summary.anomalies.items()):
            table.add_row(f"    {kind}", str(n))
    if summary.excluded:
        table.add_row("excluded (exclude_service_codes/names)", str(summary.excluded))
    rejected = sum(summary.rejects.values())
    table.add_row("rejected", f"{rejected} ({summary.new_rejects} new)")
    for reason, n in sorted(summary.rejects.items()):
        table.add_row(f"  {reason}", str(n))
    return table


def with_store(settings: IngestorSettings, work: Callable[[IngestorStore], T]) -> T:
    """Run `work` on the database, with one-line errors when it cannot be reached."""
    from sqlalchemy.exc import SQLAlchemyError

    from connect311_ingestor.store import IngestorStore

    try:
        store = IngestorStore.from_url(settings.database_url)
        try:
            return work(store)
        finally:
            store.close()
    except (SQLAlchemyError, OSError) as exc:
        raise fail(database_problem(exc)) from None
