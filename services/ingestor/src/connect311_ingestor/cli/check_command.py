"""`check`: try a profile on a file without a broker or database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from connect311_ingestor.cli.common import (
    FileArgument,
    SourceOption,
    fail,
    readable,
    resolve_profile,
)

if TYPE_CHECKING:
    from connect311_ingestor.check import CheckReport

__all__ = ["check", "check_tables"]


def check(
    file: FileArgument,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="nyc, chicago, boston, open311, seeclickfix or a mapping .json/.toml; "
            "default: the built-in one that fits the file's columns",
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=1, help="Read the first N records")] = 1000,
    show: Annotated[int, typer.Option(min=0, help="Show the first N normalized requests")] = 5,
    source: SourceOption = None,
) -> None:
    """Try a profile on a file without a broker or database: mapping, samples, rejects."""
    from connect311_ingestor.check import check_file

    file = readable(file)
    column_profile = resolve_profile(profile, source) if profile else None
    try:
        report = check_file(
            file, column_profile, profile_name=profile or "", rows=rows, samples=show
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}; check the file") from None
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
    folded = f" from {report.rows} rows" if report.rows > report.records else ""
    counts = Table(title=f"{report.records} records read{folded}")
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
        rows = report.reject_rows[reason]
        shown = f"{n} ({rows} rows)" if rows > n else str(n)
        counts.add_row(f"rejected: {reason}", shown, f"{example.location}: {example.detail}")
    return [mapping, unmapped, samples, counts]
