"""The filters the map, stats and clusters share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connect311_map_api.core.geo import BBox


@dataclass(frozen=True)
class RequestFilters:
    """Narrowing of stored requests; empty tuples and None mean 'any'."""

    bbox: BBox | None = None
    statuses: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


def split_csv(value: str | None) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'); blanks dropped."""
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())
