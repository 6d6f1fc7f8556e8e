"""`import` and `replay`: an export file read once, or played as a live feed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from connect311_ingestor.cli.common import (
    FileArgument,
    LimitOption,
    ProfileOption,
    SourceOption,
    one_shot_setup,
    progress_bar,
    run_async,
    summary_table,
)

if TYPE_CHECKING:
    from connect311_ingestor.pipeline import IngestSummary

__all__ = ["import_command", "replay"]


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
    limit: LimitOption = None,
    source: SourceOption = None,
) -> None:
    """Import an export once: publish what is new or changed, reject what is unusable."""
    from connect311_ingestor.app import running
    from connect311_ingestor.sources.files import estimate_rows, import_file

    file, settings, kafka, column_profile = one_shot_setup(file, profile, source)

    async def work() -> IngestSummary:
        async with running(settings, kafka) as runtime:
            total = estimate_rows(file)
            if limit is not None and total is not None:
                total = min(total, limit)
            with progress_bar() as bar:
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
                done = max(summary.rows, summary.records)
                bar.update(task, total=done, completed=done)
            return summary

    summary = run_async(work)
    Console().print(summary_table(f"{file.name} ({column_profile.source})", summary))


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
    limit: LimitOption = None,
    source: SourceOption = None,
) -> None:
    """Play an export as a live feed at N x speed, in order of requested time."""
    from connect311_ingestor.app import running
    from connect311_ingestor.sources.files import replay_file

    file, settings, kafka, column_profile = one_shot_setup(file, profile, source)

    async def work() -> IngestSummary:
        async with running(settings, kafka) as runtime:
            with progress_bar() as bar:
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

    summary = run_async(work)
    Console().print(summary_table(f"replay of {file.name}", summary))
