"""What each stored request adds to the aggregate tables (pure: the store applies it).

Stats and low-zoom clusters read small pre-counted tables instead of scanning every request.
A request contributes one count to each of: opened per (agency, dataset, day, status),
resolved per (agency, dataset, closed day), time to close per (agency, dataset, counted
minutes: see
`core.stats.close_bucket_minutes`), per (grid cell at zoom 12 and at zoom 16, dataset, status)
with its coordinates summed in integer micro-degrees (exact under + and -, so replacing a
snapshot never leaves rounding residue), and per (dataset, agency, service code and name): the
map's category, department and layer lists, which a GROUP BY over every request made slow.
When a snapshot replaces another, the change is "new contributions minus old ones".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connect311_map_api.core.geo import grid_index
from connect311_map_api.core.stats import close_bucket_minutes, seconds_between

CLOSED = "closed"
NO_AGENCY = ""  # primary-key stand-in for a missing agency (stats show it as "(unknown)")
NONE = ""  # primary-key stand-in for a missing service code or name
CELLS_PER_TILE = 4  # grid cells across a 256-pixel map tile
BASE_ZOOM = 12  # cells of this zoom serve every coarser view: unions of these
# Street tiles (data tiles at z11-z14 over their marker limit) group by finer cells: counted
# at this zoom too, they are read from a few hundred rows instead of grouping every request
# in the tile (a cold z14 tile at 1M grouped ~5,600 rows).
FINE_ZOOM = 16
MICRO = 1_000_000

Key = tuple[str, tuple[Any, ...]]  # (table name, key columns)


def cell_degrees(zoom: int) -> float:
    """Grid cell size (degrees) for a web-map zoom level."""
    return 360.0 / ((1 << zoom) * CELLS_PER_TILE)


BASE_CELL = cell_degrees(BASE_ZOOM)
FINE_CELL = cell_degrees(FINE_ZOOM)
CELL_ZOOMS = (BASE_ZOOM, FINE_ZOOM)


def coarsening(cell_deg: float, base_cell: float = BASE_CELL) -> int | None:
    """How many base cells make one cell of this size across (None: not a union of them)."""
    ratio = cell_deg / base_cell
    factor = round(ratio)
    if factor < 1 or ratio != factor or factor & (factor - 1):
        return None
    return factor


def cell_source(cell_deg: float) -> tuple[int, int] | None:
    """(cell zoom, factor): the coarsest counted cells that make cells of this size, and how
    many of them across make one (None: no counted cells do)."""
    for zoom in CELL_ZOOMS:
        factor = coarsening(cell_deg, cell_degrees(zoom))
        if factor is not None:
            return zoom, factor
    return None


@dataclass(frozen=True)
class Facts:
    """The columns of a stored request the aggregates count."""

    agency: str
    dataset: str
    opened_day: str
    status: str
    closed_day: str | None
    close_minutes: int | None
    lat: float
    long: float
    service_code: str = NONE
    service_name: str = NONE


def facts(row: Mapping[Any, Any]) -> Facts:
    """The facts of a `requests` row (a dict or a row mapping)."""
    closed_at = row["closed_datetime"]
    minutes = None
    if row["status"] == CLOSED and closed_at is not None:
        minutes = close_bucket_minutes(seconds_between(row["requested_datetime"], closed_at))
    return Facts(
        agency=row["agency_responsible"] or NO_AGENCY,
        dataset=row["dataset"],
        opened_day=row["opened_day"],
        status=row["status"],
        closed_day=row["closed_day"],
        close_minutes=minutes,
        lat=float(row["lat"]),
        long=float(row["long"]),
        service_code=row["service_code"] or NONE,
        service_name=row["service_name"] or NONE,
    )


def contributions(f: Facts) -> dict[Key, tuple[int, ...]]:
    """Each aggregate row this request adds to, with what it adds."""
    out: dict[Key, tuple[int, ...]] = {
        ("opened", (f.agency, f.dataset, f.opened_day, f.status)): (1,)
    }
    if f.status == CLOSED and f.closed_day is not None:
        out["resolved", (f.agency, f.dataset, f.closed_day)] = (1,)
    if f.status == CLOSED and f.close_minutes is not None:
        out["close_minutes", (f.agency, f.dataset, f.close_minutes)] = (1,)
    sums = (1, round(f.lat * MICRO), round(f.long * MICRO))
    for zoom, cell in ((BASE_ZOOM, BASE_CELL), (FINE_ZOOM, FINE_CELL)):
        cx = grid_index(f.long, -180.0, cell)
        cy = grid_index(f.lat, -90.0, cell)
        out["cells", (zoom, cx, cy, f.dataset, f.status)] = sums
    out["kinds", (f.dataset, f.agency, f.service_code, f.service_name)] = (1,)
    return out


def change(old: Facts | None, new: Facts | None) -> dict[Key, tuple[int, ...]]:
    """Deltas that turn the aggregates of `old` into those of `new` (zero deltas dropped)."""
    acc: dict[Key, list[int]] = defaultdict(list)
    for sign, side in ((-1, old), (1, new)):
        if side is None:
            continue
        for key, values in contributions(side).items():
            current = acc[key] or [0] * len(values)
            acc[key] = [a + sign * v for a, v in zip(current, values, strict=True)]
    return {key: tuple(v) for key, v in acc.items() if any(v)}


def merge(
    into: dict[Key, tuple[int, ...]], more: Mapping[Key, tuple[int, ...]]
) -> dict[Key, tuple[int, ...]]:
    """Sum two sets of deltas (keys with all-zero sums dropped)."""
    for key, values in more.items():
        if key in into:
            summed = tuple(a + b for a, b in zip(into[key], values, strict=True))
            if any(summed):
                into[key] = summed
            else:
                del into[key]
        else:
            into[key] = values
    return into
