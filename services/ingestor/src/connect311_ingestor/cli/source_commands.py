"""`status` and `sources`: what the database remembers per source; moving a watermark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from connect311_ingestor.cli.common import NameArgument, console, fail, load_settings, with_store

if TYPE_CHECKING:
    from connect311_ingestor.store import IngestorStore

__all__ = ["sources_app", "status"]


def status() -> None:
    """Show what the database remembers: requests and watermarks per source, reject counts."""
    settings, _ = load_settings()
    requests, cursors, rejects = with_store(
        settings,
        lambda store: (store.request_counts(), store.cursors(), store.reject_counts()),
    )
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


@sources_app.callback(invoke_without_command=True)
def sources_command(ctx: typer.Context) -> None:
    """Every configured or remembered source: watermark, last poll, last error, rejects."""
    if ctx.invoked_subcommand is not None:
        return
    from connect311_ingestor.sources.admin import source_rows

    settings, _ = load_settings()
    rows = with_store(
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


@sources_app.command("reset")
def sources_reset(name: NameArgument) -> None:
    """Forget a source's watermark: its next poll is a first poll (backfill_days, history)."""
    settings, _ = load_settings()
    if not with_store(settings, lambda store: store.delete_cursor(name)):
        raise fail(f"source {name!r} has no watermark; `connect311-ingestor sources` lists them")
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

    settings, _ = load_settings()
    try:
        moment = parse_when(when)
    except ValueError as exc:
        raise fail(str(exc)) from None
    kind = configured_sources(settings).get(name)
    if kind not in ("open311", "seeclickfix"):
        raise fail(
            f"{name!r} is not a configured Open311 or SeeClickFix feed: check the name "
            "against INGESTOR_OPEN311_FEEDS / INGESTOR_SEECLICKFIX_FEEDS"
        )
    updates = any(f.updates for f in settings.open311_feeds if f.source == name)

    def move(store: IngestorStore) -> dict[str, Any]:
        cursor = moved_watermark(kind, store.get_cursor(name), moment, updates=updates)
        store.set_cursor(name, cursor)
        return cursor

    cursor = with_store(settings, move)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(cursor.items()))
    Console().print(f"{name}: watermark set ({shown}); the next poll reads from there")
