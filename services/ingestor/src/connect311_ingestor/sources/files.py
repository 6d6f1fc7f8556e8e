"""File import and timed replay of city exports: CSV / JSON / JSONL with a column profile,
Open311 GeoReport v2 requests documents (XML, or JSON read with the open311 profile) and
saved SeeClickFix issues pages (JSON read with the seeclickfix profile)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from connect311_contracts.envelope import utc_now
from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.open311 import parse_requests
from connect311_ingestor.parsers.open311_document import MAX_BODY
from connect311_ingestor.parsers.open311_document import Format as Open311Format
from connect311_ingestor.parsers.profiles import BUILTIN_PROFILES, ColumnProfile
from connect311_ingestor.parsers.seeclickfix import parse_issues_page
from connect311_ingestor.parsers.tabular import parse_rows
from connect311_ingestor.parsers.tabular_rows import (
    RowOrReject,
    TabularFormat,
    detect_format,
    read_rows,
)
from connect311_ingestor.pipeline import Ingestor, IngestSummary
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.sources.open311 import iso
from connect311_ingestor.timeline import Cue, timeline, wall_offset

Progress = Callable[[int], None]
log = logging.getLogger(__name__)


def open311_format(path: Path, profile: ColumnProfile) -> Open311Format | None:
    """The GeoReport format of a file read with the Open311 parser, None for a tabular export.

    Every .xml file is a GeoReport v2 requests document (no city exports tabular XML); a
    .json file is one when read with the open311 profile's columns (whatever its source).
    """
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return "xml"
    if suffix == ".json" and profile.columns == BUILTIN_PROFILES["open311"].columns:
        return "json"
    return None


def parse_open311_file(path: Path, profile: ColumnProfile, fmt: Open311Format) -> list[ParseResult]:
    """Every request of a GeoReport v2 requests document, as the poller would read it."""
    size = path.stat().st_size
    if size > MAX_BODY:
        detail = f"{size} bytes is more than the {MAX_BODY} an Open311 document may have; split it."
        return [Rejected(RejectReason.TOO_LARGE, detail, "", path.name)]
    return parse_requests(
        path.read_bytes(),
        source=profile.source,
        fmt=fmt,
        dataset=profile.dataset,
        location=path.name,
    )


def seeclickfix_page(path: Path, profile: ColumnProfile) -> bool:
    """Whether a file is a saved SeeClickFix issues page: a .json file read with the
    seeclickfix profile's columns (whatever its source)."""
    columns = BUILTIN_PROFILES["seeclickfix"].columns
    return path.suffix.lower() == ".json" and profile.columns == columns


def parse_seeclickfix_file(path: Path, profile: ColumnProfile) -> list[ParseResult]:
    """Every issue of a saved `GET /api/v2/issues` page, as the poller would read it."""
    size = path.stat().st_size
    if size > MAX_BODY:
        detail = f"{size} bytes is more than the {MAX_BODY} a SeeClickFix page may have; split it."
        return [Rejected(RejectReason.TOO_LARGE, detail, "", path.name)]
    page = parse_issues_page(
        path.read_bytes(), source=profile.source, dataset=profile.dataset, location=path.name
    )
    return page.results


def read_records(
    path: Path, fmt: TabularFormat | None = None, *, encoding: str = "utf-8-sig"
) -> Iterator[RowOrReject]:
    """Each row of an export file as (location, row), or (location, Rejected) if unreadable."""
    kind = fmt or detect_format(path)
    # Strict UTF-8 for a JSON document (one bad byte spoils it); otherwise bad bytes survive
    # as surrogates so the parser rejects just the rows that hold them.
    errors = "strict" if kind == "json" else "surrogateescape"
    with path.open(
        encoding=encoding, errors=errors, newline="" if kind == "csv" else None
    ) as handle:
        yield from read_rows(handle, kind, path.name)


def parse_file(
    path: Path, profile: ColumnProfile, fmt: TabularFormat | None = None
) -> Iterator[ParseResult]:
    """Every row of an export as an accepted request or a reasoned rejection (rows folded
    into one record per id when the profile has `[group]`)."""
    document = open311_format(path, profile) if fmt is None else None
    if document is not None:
        yield from parse_open311_file(path, profile, document)
        return
    if fmt is None and seeclickfix_page(path, profile):
        yield from parse_seeclickfix_file(path, profile)
        return
    yield from parse_rows(read_records(path, fmt), profile)


def estimate_rows(path: Path) -> int | None:
    """A quick upper bound on the row count of line-based files (for the progress bar).

    Counts line ends of either kind: some exports end lines with a bare CR (old Mac / R).
    """
    if path.suffix.lower() not in {".csv", ".jsonl", ".ndjson"}:
        return None
    newlines = returns = 0
    tail = b""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
            tail = chunk[-1:]
    lines = max(newlines, returns) + (1 if tail not in (b"", b"\n", b"\r") else 0)
    return max(0, lines - (1 if path.suffix.lower() == ".csv" else 0))


async def import_file(
    ingestor: Ingestor,
    path: Path,
    profile: ColumnProfile,
    *,
    backfill: bool | None = None,
    limit: int | None = None,
    batch_size: int = 500,
    fmt: TabularFormat | None = None,
    progress: Progress | None = None,
) -> IngestSummary:
    """Import an export; a source's first import (no cursor yet) is marked as backfill."""
    store = ingestor.store
    ingestor.exclude(profile.source, profile.exclusion())
    cursor = await asyncio.to_thread(store.get_cursor, profile.source)
    if backfill is None:
        backfill = cursor is None
    summary = IngestSummary(backfill=backfill)
    rows = itertools.islice(parse_file(path, profile, fmt), limit)

    def next_batch() -> list[ParseResult]:
        return list(itertools.islice(rows, batch_size))

    # Parse the next batch in a thread while the current one waits for broker acks;
    # batches are still ingested strictly one after another, in file order.
    batch = await asyncio.to_thread(next_batch)
    while batch:
        publishing = asyncio.create_task(
            ingestor.ingest(batch, source=profile.source, backfill=backfill)
        )
        try:
            upcoming = await asyncio.to_thread(next_batch)
        finally:
            # Even if reading fails, the batch already in flight is finished and recorded.
            part, _ = await publishing
        summary.add(part)
        if progress:
            progress(sum(result.rows for result in batch))
        batch = upcoming
    done = {**(cursor or {}), "last_import": path.name, "imported_at": iso(utc_now())}
    await asyncio.to_thread(store.set_cursor, profile.source, done)
    return summary


def _replay_key(path: Path) -> str:
    return f"replay:{path.name}"


async def replay_file(
    ingestor: Ingestor,
    path: Path,
    profile: ColumnProfile,
    *,
    speed: float,
    shift_to_now: bool = False,
    restart: bool = False,
    limit: int | None = None,
    fmt: TabularFormat | None = None,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    progress: Progress | None = None,
    on_total: Progress | None = None,
) -> IngestSummary:
    """Play an export as a live feed at `speed` x real time, in order of requested time.

    With `shift_to_now` the earliest request happens "now"; that start is saved, so a
    restarted replay resumes on the same clock (past cues are re-offered and found unchanged).
    """
    ingestor.exclude(profile.source, profile.exclusion())
    results = list(itertools.islice(parse_file(path, profile, fmt), limit))
    requests = [r.request for r in results if isinstance(r, Accepted)]
    rejects: list[ParseResult] = [r for r in results if isinstance(r, Rejected)]
    summary = IngestSummary()
    if rejects:
        summary.add((await ingestor.ingest(rejects, source=profile.source))[0])
        if progress:
            progress(len(rejects))
    start = await _replay_start(ingestor, path, profile, clock(), shift_to_now, restart)
    cues = timeline(requests, start=start if shift_to_now else None)
    if on_total:
        on_total(len(rejects) + len(cues))
    if not cues:
        return summary
    feed_start = cues[0].at
    # Wall time passed since the saved start: a resumed replay skips ahead (but re-offers all).
    elapsed_before = (clock() - start).total_seconds() if shift_to_now else 0.0
    began = monotonic() - elapsed_before
    if elapsed_before > wall_offset(cues[-1].at, feed_start, speed):
        log.warning(
            "this replay already finished on its saved clock (started %s): nothing new will "
            "play; use --restart with a fresh database to play it again",
            iso(start),
        )
    for due in _due_groups(cues, feed_start, speed):
        wait = began + wall_offset(due[0].at, feed_start, speed) - monotonic()
        if wait > 0:
            await sleep(wait)
        batch: list[ParseResult] = [Accepted(c.request, f"{path.name} replay") for c in due]
        summary.add((await ingestor.ingest(batch, source=profile.source))[0])
        if progress:
            progress(len(due))
    return summary


async def _replay_start(
    ingestor: Ingestor,
    path: Path,
    profile: ColumnProfile,
    now: datetime,
    shift_to_now: bool,
    restart: bool,
) -> datetime:
    store = ingestor.store
    cursor = await asyncio.to_thread(store.get_cursor, profile.source) or {}
    key = _replay_key(path)
    if shift_to_now and key in cursor and not restart:
        return datetime.fromisoformat(str(cursor[key]).replace("Z", "+00:00"))
    cursor[key] = iso(now)
    await asyncio.to_thread(store.set_cursor, profile.source, cursor)
    return now.replace(microsecond=0)


def _due_groups(cues: list[Cue], feed_start: datetime, speed: float) -> Iterator[list[Cue]]:
    """Cues grouped by the wall-clock tenth of a second they are due in (bigger batches)."""
    for _, group in itertools.groupby(
        cues, key=lambda c: int(wall_offset(c.at, feed_start, speed) * 10)
    ):
        yield list(group)
