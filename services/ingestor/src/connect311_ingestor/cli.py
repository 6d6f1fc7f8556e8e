"""`connect311-ingestor`: import, replay, poll and serve city 311 feeds."""

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

if TYPE_CHECKING:
    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.adapters.profiles import ColumnProfile
    from connect311_ingestor.pipeline import IngestSummary
    from connect311_ingestor.settings import IngestorSettings

# Heavy modules (Kafka, SQLAlchemy, FastAPI) are imported inside commands so --help is quick.

app = typer.Typer(
    help="Connect311 ingestor: city 311 feeds onto Kafka as request events.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
T = TypeVar("T")

ProfileOption = Annotated[
    str,
    typer.Option(
        "--profile",
        "-p",
        help="Column profile: nyc, chicago, boston, open311, or a path to a mapping .json",
    ),
]
FileArgument = Annotated[
    Path,
    typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV, JSON or JSONL export"),
]


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _settings() -> tuple[IngestorSettings, KafkaSettings]:
    from pydantic import ValidationError

    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.settings import IngestorSettings

    try:
        return IngestorSettings(), KafkaSettings()
    except ValidationError as exc:
        raise _fail(f"invalid INGESTOR_/KAFKA_ settings:\n{exc}") from exc


def _one_shot(settings: IngestorSettings) -> IngestorSettings:
    """Settings for import/replay: no re-publish window (a rerun publishes what is missing)."""
    return settings.model_copy(update={"republish_window_s": 0.0})


def _profile(name: str) -> ColumnProfile:
    from connect311_ingestor.adapters.profiles import get_profile

    try:
        return get_profile(name)
    except (KeyError, ValueError, OSError) as exc:
        raise _fail(
            f"unknown profile {name!r} ({exc}); use nyc, chicago, boston, open311 "
            "or the path of a mapping .json"
        ) from exc


def _run(work: Callable[[], Awaitable[T]]) -> T:
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
        raise _fail(str(exc)) from exc
    except KafkaError as exc:
        raise _fail(
            f"the Kafka broker failed mid-run ({exc.__class__.__name__}: {exc}). Nothing was "
            "recorded as done that was not acknowledged: run the same command again once the "
            "broker is back (`connect311 broker` starts the local one)."
        ) from exc
    except SQLAlchemyError as exc:
        raise _fail(
            f"database problem: {exc.__class__.__name__}: {exc}. "
            "Check INGESTOR_DATABASE_URL (default sqlite:///var/ingestor.db)."
        ) from exc


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def summary_table(title: str, summary: IngestSummary) -> Table:
    """The end-of-run summary: accepted, events by type, unchanged, rejects per reason."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("records read", str(summary.records))
    table.add_row("accepted", str(summary.accepted))
    for event_type, n in sorted(summary.events.items()):
        table.add_row(f"  event {event_type}", str(n))
    table.add_row("  unchanged (no event)", str(summary.unchanged))
    if summary.backfill:
        table.add_row("  events marked backfill (history, no alerts)", "yes")
    table.add_row("rejected", str(sum(summary.rejects.values())))
    for reason, n in sorted(summary.rejects.items()):
        table.add_row(f"  {reason}", str(n))
    return table


@app.command("import")
def import_command(
    file: FileArgument,
    profile: ProfileOption,
    backfill: Annotated[
        bool | None,
        typer.Option(
            "--backfill/--live",
            help="Mark events as history (never alerted). Default: only a source's first import",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Read at most N rows")] = None,
) -> None:
    """Import an export once: publish what is new or changed, reject what is unusable."""
    from connect311_ingestor.app import running
    from connect311_ingestor.sources.files import estimate_rows, import_file

    settings, kafka = _settings()
    settings = _one_shot(settings)
    column_profile = _profile(profile)

    async def work() -> IngestSummary:
        async with running(settings, kafka) as runtime:
            total = estimate_rows(file)
            if limit is not None and total is not None:
                total = min(total, limit)
            with _progress() as bar:
                task = bar.add_task(f"importing {file.name}", total=total)
                summary = await import_file(
                    runtime.ingestor,
                    file,
                    column_profile,
                    backfill=backfill,
                    limit=limit,
                    batch_size=settings.batch_size,
                    progress=lambda n: bar.advance(task, n),
                )
                bar.update(task, total=summary.records, completed=summary.records)
            return summary

    summary = _run(work)
    Console().print(summary_table(f"{file.name} ({column_profile.source})", summary))


@app.command()
def replay(
    file: FileArgument,
    profile: ProfileOption,
    speed: Annotated[float, typer.Option(min=0.001, help="Feed seconds per real second")] = 60.0,
    shift_to_now: Annotated[
        bool, typer.Option("--shift-to-now", help="Move times so the earliest request is now")
    ] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="Forget a saved replay clock and start over")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Read at most N rows")] = None,
) -> None:
    """Play an export as a live feed at N x speed, in order of requested time."""
    from connect311_ingestor.app import running
    from connect311_ingestor.sources.files import replay_file

    settings, kafka = _settings()
    settings = _one_shot(settings)
    column_profile = _profile(profile)

    async def work() -> IngestSummary:
        async with running(settings, kafka) as runtime:
            with _progress() as bar:
                task = bar.add_task(f"replaying {file.name} at {speed:g}x", total=None)
                return await replay_file(
                    runtime.ingestor,
                    file,
                    column_profile,
                    speed=speed,
                    shift_to_now=shift_to_now,
                    restart=restart,
                    limit=limit,
                    progress=lambda n: bar.advance(task, n),
                    on_total=lambda n: bar.update(task, total=n),
                )

    summary = _run(work)
    Console().print(summary_table(f"replay of {file.name}", summary))


@app.command()
def poll() -> None:
    """Poll the configured Open311 and SeeClickFix feeds forever (INGESTOR_*_FEEDS)."""
    from connect311_ingestor.app import run_pollers, running

    settings, kafka = _settings()
    if not settings.open311_feeds and not settings.seeclickfix_feeds:
        raise _fail(
            "no feeds configured: set INGESTOR_OPEN311_FEEDS or INGESTOR_SEECLICKFIX_FEEDS "
            'to a JSON list, e.g. \'[{"source": "sf311", "base_url": "https://host/open311/v2"}]\''
        )

    async def work() -> None:
        async with running(settings, kafka) as runtime:
            await run_pollers(runtime, asyncio.Event())

    _run(work)


@app.command("serve")
def serve_command() -> None:
    """Serve push (POST /api/v1/requests), /healthz and /metrics, and run the pollers."""
    from connect311_ingestor.app import running, serve

    settings, kafka = _settings()

    async def work() -> None:
        async with running(settings, kafka) as runtime:
            console.print(
                f"ingestor on http://{settings.http_host}:{settings.http_port} "
                f"(push {'on' if settings.tokens() else 'off'}; "
                f"{len(settings.open311_feeds) + len(settings.seeclickfix_feeds)} feeds)"
            )
            await serve(runtime)

    _run(work)


@app.command()
def status() -> None:
    """Show what the database remembers: requests and watermarks per source, reject counts."""
    from sqlalchemy.exc import SQLAlchemyError

    from connect311_ingestor.store import IngestorStore

    settings, _ = _settings()
    try:
        store = IngestorStore.from_url(settings.database_url)
        try:
            requests, cursors, rejects = (
                store.request_counts(),
                store.cursors(),
                store.reject_counts(),
            )
        finally:
            store.close()
    except SQLAlchemyError as exc:
        raise _fail(f"cannot read {settings.database_url}: {exc}") from exc
    sources = Table(title=f"sources in {settings.database_url}")
    for column in ("source", "requests", "rejected", "watermark / cursor"):
        sources.add_column(column)
    for source in sorted(set(requests) | set(cursors) | {s for s, _ in rejects}):
        rejected = sum(n for (s, _), n in rejects.items() if s == source)
        cursor = ", ".join(f"{k}={v}" for k, v in sorted(cursors.get(source, {}).items()))
        sources.add_row(source, str(requests.get(source, 0)), str(rejected), cursor or "-")
    reasons = Table(title="rejects by source and reason (also on requests.rejects.v1)")
    for column in ("source", "reason", "count"):
        reasons.add_column(column)
    for (source, reason), n in sorted(rejects.items()):
        reasons.add_row(source, reason, str(n))
    out = Console()
    out.print(sources)
    out.print(reasons)


def main() -> None:
    """Console-script entry point."""
    from connect311_contracts.logs import configure_logging

    configure_logging("ingestor", "INFO")  # LOG_FORMAT=json|text
    app()
