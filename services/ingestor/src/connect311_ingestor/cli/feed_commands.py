"""`poll`, `run` and `backfill`: the configured Open311 and SeeClickFix feeds."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from connect311_ingestor.cli.common import (
    NameArgument,
    console,
    fail,
    load_settings,
    one_shot,
    run_async,
    summary_table,
)

if TYPE_CHECKING:
    from connect311_ingestor.pipeline import IngestSummary

__all__ = ["backfill", "poll", "run_command"]


def poll() -> None:
    """Poll the configured Open311 and SeeClickFix feeds forever (INGESTOR_*_FEEDS)."""
    from connect311_ingestor.app import run_pollers, running

    settings, kafka = load_settings()
    if not settings.open311_feeds and not settings.seeclickfix_feeds:
        raise fail(
            "no feeds configured: set INGESTOR_OPEN311_FEEDS or INGESTOR_SEECLICKFIX_FEEDS "
            'to a JSON list, e.g. \'[{"source": "sf311", "base_url": "https://host/open311/v2"}]\''
        )

    async def work() -> None:
        async with running(settings, kafka) as runtime:
            await run_pollers(runtime, asyncio.Event())

    run_async(work)


def run_command() -> None:
    """Run the service: push (POST /api/v1/requests), /healthz, /metrics and the pollers."""
    from connect311_ingestor.app import running, serve

    settings, kafka = load_settings()

    async def work() -> None:
        async with running(settings, kafka) as runtime:
            console.print(
                f"ingestor on http://{settings.http_host}:{settings.http_port} "
                f"(push {'on' if settings.tokens() else 'off'}; "
                f"{len(settings.open311_feeds) + len(settings.seeclickfix_feeds)} feeds)"
            )
            await serve(runtime)

    run_async(work)


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

    settings, kafka = load_settings()
    try:
        start = parse_when(since)
        end = parse_when(until) if until else None
    except ValueError as exc:
        raise fail(str(exc)) from None
    if end is not None and end <= start:
        raise fail(f"--until {until} is not after --since {since}: swap or fix them")
    configured = [f.source for f in settings.open311_feeds]
    configured += [f.source for f in settings.seeclickfix_feeds]
    if name not in configured:
        raise fail(
            f"{name!r} is not a configured feed ({', '.join(configured) or 'none'}): "
            "add it to INGESTOR_OPEN311_FEEDS or INGESTOR_SEECLICKFIX_FEEDS"
        )
    settings = one_shot(settings)

    async def work() -> IngestSummary:
        async with running(settings, kafka) as runtime, http_client(settings) as client:
            poller = next(p for p in make_pollers(runtime, client) if p.source == name)
            return await poller.backfill_window(start, end)

    summary = run_async(work)
    summary.backfill = True
    Console().print(summary_table(f"backfill of {name} from {since} to {until or 'now'}", summary))
