"""Query parameters shared by the map, clusters, stats and preview endpoints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import HTTPException, Query

from connect311_contracts.service_levels import ServiceLevels, ServiceLevelsError, load
from connect311_map_api.core.filters import RequestFilters, split_csv
from connect311_map_api.core.geo import InvalidGeometry, parse_bbox

STATUSES = ("open", "acknowledged", "in_progress", "closed")


def unprocessable(message: str) -> HTTPException:
    """A 422 with a message a person can act on."""
    return HTTPException(status_code=422, detail=message)


def service_levels(file: Path | None, zone: str) -> ServiceLevels:
    """The operator's targets, or a 503 saying why they cannot be read (as the stats do)."""
    try:
        return load(file, zone)
    except ServiceLevelsError as exc:
        raise HTTPException(503, detail=f"service levels unusable: {exc}") from exc


async def request_filters(
    bbox: Annotated[
        str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)", max_length=200)
    ] = None,
    status: Annotated[
        str | None, Query(description=f"Comma-separated: {', '.join(STATUSES)}", max_length=200)
    ] = None,
    service_code: Annotated[
        str | None, Query(description="Comma-separated service codes", max_length=2000)
    ] = None,
    agency: Annotated[
        str | None, Query(description="Comma-separated departments", max_length=2000)
    ] = None,
    dataset: Annotated[
        str | None, Query(description="Comma-separated datasets", max_length=500)
    ] = None,
    since: Annotated[datetime | None, Query(description="Requested at or after (ISO-8601)")] = None,
    until: Annotated[datetime | None, Query(description="Requested before (ISO-8601)")] = None,
    q: Annotated[
        str | None, Query(description="Text in description, address or category", max_length=200)
    ] = None,
) -> RequestFilters:
    """Parse and check the shared filters; 422 with the reason when they are wrong.

    Async although it awaits nothing: FastAPI runs a sync dependency in the thread pool, a
    hop there and back for a parse of at most a few kilobytes (no measurable change in
    bench/map_threads.py at 16 clients; it is simply work the loop need not hand off).
    """
    texts = {"bbox": bbox, "status": status, "service_code": service_code, "agency": agency}
    for name, value in {**texts, "dataset": dataset, "q": q}.items():
        _printable(name, value)
    box = None
    if bbox:
        try:
            box = parse_bbox(bbox)
        except InvalidGeometry as exc:
            raise unprocessable(str(exc)) from exc
    statuses = split_csv(status)
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise unprocessable(f"unknown status {unknown[0]!r}; use one of {', '.join(STATUSES)}")
    since_utc, until_utc = _aware(since, "since"), _aware(until, "until")
    if since_utc and until_utc and since_utc > until_utc:
        raise unprocessable("since must not be after until")
    return RequestFilters(
        bbox=box,
        statuses=statuses,
        service_codes=split_csv(service_code),
        agencies=split_csv(agency),
        datasets=split_csv(dataset),
        since=since_utc,
        until=until_utc,
        q=q.strip() or None if q else None,
    )


def _printable(name: str, value: str | None) -> None:
    # A NUL reached SQLite's LIKE as the end of the pattern, so `q=%00` matched everything.
    if value is not None and any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in value):
        raise unprocessable(f"{name} must not contain control characters such as NUL or newline")


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise unprocessable(f"{name} needs a time zone, e.g. 2024-05-01T00:00:00Z")
    return value
