"""`connect311-ingestor`: import, replay, poll and serve city 311 feeds."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pydantic import ValidationError

    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.adapters.profiles import ColumnProfile
    from connect311_ingestor.check import CheckReport
    from connect311_ingestor.pipeline import IngestSummary
    from connect311_ingestor.settings import IngestorSettings
    from connect311_ingestor.store import IngestorStore

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
    typer.Argument(
        help="CSV, JSON or JSONL export, or an Open311 GeoReport v2 requests .xml/.json"
    ),
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Source name instead of the profile's (request ids become '<source>:<id>')",
    ),
]
_FORMATS = {".csv", ".json", ".jsonl", ".ndjson", ".xml"}


def _fail(message: str) -> typer.Exit:
    """Exit 2 after ONE line on stderr (never wrapped, never read as markup)."""
    console.print(Text.assemble(("error: ", "bold red"), first_line(message)), soft_wrap=True)
    return typer.Exit(code=2)


def first_line(message: str) -> str:
    """The first line of an error message (driver errors append SQL and links below it)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _readable(file: Path) -> Path:
    """The export to read, or a one-line error saying what is wrong with the path."""
    if not file.exists():
        raise _fail(f"no file {str(file)!r}: check the path (relative to {Path.cwd()})")
    if not file.is_file():
        raise _fail(f"{str(file)!r} is a folder: give the path of one export file")
    if file.suffix.lower() not in _FORMATS:
        raise _fail(
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


def _settings() -> tuple[IngestorSettings, KafkaSettings]:
    from pydantic import ValidationError

    from connect311_contracts.settings import KafkaSettings
    from connect311_ingestor.settings import IngestorSettings

    try:
        settings = IngestorSettings()
    except ValidationError as exc:
        raise _fail(settings_error(exc, "INGESTOR_")) from None
    try:
        return settings, KafkaSettings()
    except ValidationError as exc:
        raise _fail(settings_error(exc, "KAFKA_")) from None


def _one_shot(settings: IngestorSettings) -> IngestorSettings:
    """Settings for import/replay: no re-publish window (a rerun publishes what is missing)."""
    return settings.model_copy(update={"republish_window_s": 0.0})


def _profile(name: str, source: str | None = None) -> ColumnProfile:
    """The named or loaded profile, its source renamed by --source; one-line errors."""
    profile = _load_profile(name)
    return profile.model_copy(update={"source": source}) if source else profile


def _load_profile(name: str) -> ColumnProfile:
    from pydantic import ValidationError

    from connect311_ingestor.adapters.profiles import get_profile

    try:
        return get_profile(name)
    except ValidationError as exc:
        raise _fail(f"profile {name!r} is invalid: {profile_problem(exc)}") from None
    except (KeyError, ValueError, OSError) as exc:
        if Path(name).is_file():
            raise _fail(
                f"cannot read profile {name!r}: {first_line(str(exc))}; fix the file "
                "(JSON or TOML, keys in docs/feeds.md)"
            ) from None
        raise _fail(
            f"unknown profile {name!r}: use nyc, chicago, boston, open311 "
            "or the path of a mapping .json/.toml (docs/feeds.md)"
        ) from None


def profile_problem(exc: ValidationError) -> str:
    """The first problem of a profile file, named by its key path, in one line."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    return f"{where}: {first['msg']} (fix that key; docs/feeds.md lists every profile key)"


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
            f"the Kafka broker failed mid-run ({exc.__class__.__name__}: {first_line(str(exc))})"
            ". Nothing was "
            "recorded as done that was not acknowledged: run the same command again once the "
            "broker is back (`connect311 broker` starts the local one)."
        ) from exc
    except SQLAlchemyError as exc:
        raise _fail(database_problem(exc)) from None
    except OSError as exc:
        raise _fail(
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


def _progress() -> Progress:
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
    source: SourceOption = None,
) -> None:
    """Import an export once: publish what is new or changed, reject what is unusable."""
    from connect311_ingestor.app import running
    from connect311_ingestor.sources.files import estimate_rows, import_file

    file = _readable(file)
    settings, kafka = _settings()
    settings = _one_shot(settings)
    column_profile = _profile(profile, source)

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
    source: SourceOption = None,
) -> None:
    """Play an export as a live feed at N x speed, in order of requested time."""
    from connect311_ingestor.app import running
    from connect311_ingestor.sources.files import replay_file

    file = _readable(file)
    settings, kafka = _settings()
    settings = _one_shot(settings)
    column_profile = _profile(profile, source)

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
def check(
    file: FileArgument,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="nyc, chicago, boston, open311 or a mapping .json/.toml; "
            "default: the built-in one that fits the file's columns",
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=1, help="Read the first N records")] = 1000,
    show: Annotated[int, typer.Option(min=0, help="Show the first N normalized requests")] = 5,
    source: SourceOption = None,
) -> None:
    """Try a profile on a file without a broker or database: mapping, samples, rejects."""
    from connect311_ingestor.check import check_file

    file = _readable(file)
    column_profile = _profile(profile, source) if profile else None
    try:
        report = check_file(
            file, column_profile, profile_name=profile or "", rows=rows, samples=show
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror or exc}; check the file") from None
    for table in check_tables(report):
        Console().print(table)


def check_tables(report: CheckReport) -> list[Table]:
    """What `check` prints: mapping, unmapped columns, sample requests, rejects."""
    from connect311_ingestor.check import describe

    how = "inferred from the columns" if report.inferred else "given"
    mapping = Table(
        title=f"{report.file}: {report.kind}, profile {report.profile_name} ({how}), "
        f"source {report.profile.source}"
    )
    for column in ("field", "source column(s)", "in file"):
        mapping.add_column(column)
    for item in report.mapping:
        mapping.add_row(item.field, " / ".join(item.columns), "yes" if item.found else "NO")
    unmapped = Table(title="source columns not used by the profile")
    unmapped.add_column("column")
    for name in report.unmapped:
        unmapped.add_row(name)
    samples = Table(title=f"first {len(report.samples)} normalized requests")
    fields = ("service_request_id", "status", "requested_datetime", "service_name", "lat", "long")
    for name in fields:
        samples.add_column(name)
    for request in report.samples:
        samples.add_row(*(describe(getattr(request, name)) for name in fields))
    counts = Table(title=f"{report.records} records read")
    for column in ("outcome", "count", "first example (where: why)"):
        counts.add_column(column)
    counts.add_row("accepted", str(report.accepted), "")
    for kind, n in sorted(report.anomalies.items()):
        example = report.anomaly_examples[kind]
        counts.add_row(
            f"  kept with anomaly: {kind}", str(n), f"{example.location}: {example.detail}"
        )
    if report.excluded or report.profile.exclusion():
        first = report.excluded_example
        shown = f"{first.location}: {first.detail}" if first else ""
        counts.add_row("excluded (exclude_service_codes/names)", str(report.excluded), shown)
    for reason, n in sorted(report.rejects.items()):
        example = report.examples[reason]
        counts.add_row(f"rejected: {reason}", str(n), f"{example.location}: {example.detail}")
    return [mapping, unmapped, samples, counts]


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
    except (SQLAlchemyError, OSError) as exc:
        raise _fail(database_problem(exc)) from None
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


sources_app = typer.Typer(
    help="List sources (watermark, last poll, last error, rejects); reset or move a watermark.",
    add_completion=False,
)
app.add_typer(sources_app, name="sources")


def _with_store(settings: IngestorSettings, work: Callable[[IngestorStore], T]) -> T:
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
        raise _fail(database_problem(exc)) from None


@sources_app.callback(invoke_without_command=True)
def sources_command(ctx: typer.Context) -> None:
    """Every configured or remembered source: watermark, last poll, last error, rejects."""
    if ctx.invoked_subcommand is not None:
        return
    from connect311_ingestor.sources.admin import source_rows

    settings, _ = _settings()
    rows = _with_store(
        settings,
        lambda store: source_rows(
            settings,
            store.cursors(),
            store.source_health(),
            store.reject_counts(),
            store.request_counts(),
        ),
    )
    table = Table(title=f"sources in {settings.database_url}")
    columns = ("source", "kind", "requests", "rejected", "watermark", "last poll", "last error")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.source,
            row.kind,
            str(row.requests),
            str(row.rejected),
            row.watermark,
            row.last_poll,
            row.last_error,
        )
    Console().print(table)
    if not rows:
        console.print("no sources yet: configure INGESTOR_*_FEEDS or import a file")


NameArgument = Annotated[str, typer.Argument(help="Source name, e.g. sf311")]


@sources_app.command("reset")
def sources_reset(name: NameArgument) -> None:
    """Forget a source's watermark: its next poll is a first poll (backfill_days, history)."""
    settings, _ = _settings()
    if not _with_store(settings, lambda store: store.delete_cursor(name)):
        raise _fail(f"source {name!r} has no watermark; `connect311-ingestor sources` lists them")
    Console().print(
        f"{name}: watermark forgotten; the next poll reads the last backfill_days as history "
        "(requests already stored are found unchanged)"
    )


@sources_app.command("set-watermark")
def sources_set_watermark(
    name: NameArgument,
    when: Annotated[str, typer.Argument(help="YYYY-MM-DD or ISO 8601 time (no offset: UTC)")],
) -> None:
    """Move a polled feed's watermark: the next poll reads from WHEN (changes are live)."""
    from connect311_ingestor.sources.admin import configured_sources, moved_watermark, parse_when

    settings, _ = _settings()
    try:
        moment = parse_when(when)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    kind = configured_sources(settings).get(name)
    if kind not in ("open311", "seeclickfix"):
        raise _fail(
            f"{name!r} is not a configured Open311 or SeeClickFix feed: check the name "
            "against INGESTOR_OPEN311_FEEDS / INGESTOR_SEECLICKFIX_FEEDS"
        )
    updates = any(f.updates for f in settings.open311_feeds if f.source == name)

    def move(store: IngestorStore) -> dict[str, Any]:
        cursor = moved_watermark(kind, store.get_cursor(name), moment, updates=updates)
        store.set_cursor(name, cursor)
        return cursor

    cursor = _with_store(settings, move)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(cursor.items()))
    Console().print(f"{name}: watermark set ({shown}); the next poll reads from there")


@app.command()
def backfill(
    name: NameArgument,
    since: Annotated[str, typer.Option(help="Start: YYYY-MM-DD or ISO 8601 (no offset: UTC)")],
    until: Annotated[
        str | None, typer.Option(help="End (default: now): YYYY-MM-DD or ISO 8601")
    ] = None,
) -> None:
    """Fetch a past window of a configured feed once, as history (never alerted).

    The watermark does not move. Use it for history older than the first poll read
    (changing backfill_days after the first poll has no effect).
    """
    from connect311_ingestor.app import http_client, make_pollers, running
    from connect311_ingestor.sources.admin import parse_when

    settings, kafka = _settings()
    try:
        start = parse_when(since)
        end = parse_when(until) if until else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if end is not None and end <= start:
        raise _fail(f"--until {until} is not after --since {since}: swap or fix them")
    configured = [f.source for f in settings.open311_feeds]
    configured += [f.source for f in settings.seeclickfix_feeds]
    if name not in configured:
        raise _fail(
            f"{name!r} is not a configured feed ({', '.join(configured) or 'none'}): "
            "add it to INGESTOR_OPEN311_FEEDS or INGESTOR_SEECLICKFIX_FEEDS"
        )
    settings = _one_shot(settings)

    async def work() -> IngestSummary:
        async with running(settings, kafka) as runtime, http_client(settings) as client:
            poller = next(p for p in make_pollers(runtime, client) if p.source == name)
            return await poller.backfill_window(start, end)

    summary = _run(work)
    summary.backfill = True
    Console().print(summary_table(f"backfill of {name} from {since} to {until or 'now'}", summary))


def main() -> None:
    """Console-script entry point."""
    from connect311_contracts.logs import configure_logging

    configure_logging("ingestor", "INFO")  # LOG_FORMAT=json|text
    app()
