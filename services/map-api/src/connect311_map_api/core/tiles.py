"""Map data tiles: slippy-map tile math and the canonical filter key of a tile URL (pure).

The web map asks for data by tile (`/api/tiles/{z}/{x}/{y}.json?<filter key>`) instead of by
its own bbox, so that every client looking at the same place with the same filters asks the
very same URL and a shared cache (a reverse proxy, the browser) can answer for the server.

Tiles are Web Mercator (the base map's tiles). Membership is half-open as in the slippy-map
formula (a tile holds its north-west corner: west and north edges in, east and south edges out)
so that every point lies in exactly one tile at each zoom: the northern row also holds
everything north of the Mercator limit (up to the pole), the southern row everything south of
it (the pole itself included), and the last column the antimeridian itself. The SQL query
(`db/tile_queries.py`) uses these same edges, so a marker is never sent in two tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from connect311_map_api.core.filters import RequestFilters, split_csv

__all__ = [
    "FILTER_PARAMS",
    "MAX_ZOOM",
    "STATUSES",
    "FilterKeyError",
    "Tile",
    "as_request_filters",
    "canonical_filters",
    "contains",
    "filter_key",
    "membership",
    "tile_of",
]

MAX_ZOOM = 22
STATUSES = ("open", "acknowledged", "in_progress", "closed")
FILTER_PARAMS = ("agency", "dataset", "q", "service_code", "since", "status", "until")
"""The only query parameters a tile URL takes: the map's filters (a bbox is the tile itself)."""
MAX_VALUE_CHARS = 2000


class FilterKeyError(ValueError):
    """A tile's query string the API refuses, with what to do instead."""


@dataclass(frozen=True)
class Tile:
    """One slippy-map tile; `west <= long < east`, `south < lat <= north` (see module doc)."""

    z: int
    x: int
    y: int

    @property
    def n(self) -> int:
        """Tiles across the world at this zoom."""
        return 1 << self.z

    @property
    def west(self) -> float:
        return _edge_long(self.x, self.n)

    @property
    def east(self) -> float:
        return _edge_long(self.x + 1, self.n)

    @property
    def north(self) -> float:
        """The north edge; the northern row reaches the pole."""
        return 90.0 if self.y == 0 else _edge_lat(self.y, self.n)

    @property
    def south(self) -> float:
        """The south edge; the southern row reaches the pole."""
        return -90.0 if self.y == self.n - 1 else _edge_lat(self.y + 1, self.n)

    @property
    def closes_east(self) -> bool:
        """The last column also holds longitude 180 itself."""
        return self.x == self.n - 1

    @property
    def closes_south(self) -> bool:
        """The last row also holds latitude -90 itself."""
        return self.y == self.n - 1

    def valid(self) -> bool:
        """Whether z/x/y name a tile that exists."""
        return 0 <= self.z <= MAX_ZOOM and 0 <= self.x < self.n and 0 <= self.y < self.n


def _edge_long(x: int, n: int) -> float:
    return x / n * 360.0 - 180.0


def _edge_lat(y: int, n: int) -> float:
    # One function for both neighbours of an edge: the same float, so no gap and no overlap.
    return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * y / n))))


def contains(tile: Tile, lat: float, long: float) -> bool:
    """Whether the point lies in the tile (the membership the SQL query applies too)."""
    return membership(tile)(lat, long)


def membership(tile: Tile) -> Callable[[float, float], bool]:
    """`contains(tile, lat, long)` as a function of (lat, long), its edges computed once (each
    edge is trigonometry: per point, it was a third of a street tile's grouping)."""
    west, east, south, north = tile.west, tile.east, tile.south, tile.north
    closes_east, closes_south = tile.closes_east, tile.closes_south

    def holds(lat: float, long: float) -> bool:
        in_long = west <= long < east or (closes_east and long == east)
        in_lat = south < lat <= north or (closes_south and lat == south)
        return in_long and in_lat

    return holds


def tile_of(lat: float, long: float, z: int) -> Tile:
    """The one tile at zoom `z` that holds the point (lat in [-90, 90], long in [-180, 180])."""
    n = 1 << z
    x = min(n - 1, max(0, math.floor((long + 180.0) / 360.0 * n)))
    clamped = max(-85.0511287798, min(85.0511287798, lat))
    rad = math.radians(clamped)
    y_float = (1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * n
    y = min(n - 1, max(0, math.floor(y_float)))
    # The formula can land one tile off right at an edge (rounding): the edges decide.
    for dx in (0, -1, 1):
        for dy in (0, -1, 1):
            candidate = Tile(z, x + dx, y + dy)
            if candidate.valid() and contains(candidate, lat, long):
                return candidate
    raise ValueError(f"no tile holds lat={lat}, long={long}: use WGS84 degrees")


def canonical_filters(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The canonical filter values of a tile URL's query (raises FilterKeyError).

    Lists are sorted and de-duplicated, a status list naming every status is dropped (the
    same as none), times become UTC `...Z`, `q` is trimmed and lower-cased (matching ignores
    case), and empty values are dropped: equal filters always give the same key.
    """
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name not in FILTER_PARAMS:
            raise FilterKeyError(
                f"unknown parameter {name[:40]!r}; a tile takes only {', '.join(FILTER_PARAMS)}"
            )
        if name in seen:
            raise FilterKeyError(f"give {name} once, with its values comma-separated")
        if len(value) > MAX_VALUE_CHARS:
            raise FilterKeyError(f"{name} is too long; at most {MAX_VALUE_CHARS} characters")
        # A NUL reached SQLite's LIKE as the end of the pattern (see api/params.py).
        if any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in value):
            raise FilterKeyError(f"{name} must not contain control characters such as NUL")
        seen[name] = value
    out: dict[str, str] = {}
    for name in ("agency", "dataset", "service_code"):
        values = sorted(set(split_csv(seen.get(name))))
        if values:
            out[name] = ",".join(values)
    statuses = sorted(set(split_csv(seen.get("status"))))
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise FilterKeyError(f"unknown status {unknown[0]!r}; use one of {', '.join(STATUSES)}")
    if statuses and len(statuses) < len(STATUSES):
        out["status"] = ",".join(statuses)
    for name in ("since", "until"):
        when = _utc(name, seen.get(name, "").strip())
        if when is not None:
            out[name] = _iso_z(when)
    q = seen.get("q", "").strip().lower()
    if q:
        out["q"] = q
    if "since" in out and "until" in out and out["since"] > out["until"]:
        raise FilterKeyError("since must not be after until")
    return out


def filter_key(canonical: dict[str, str]) -> str:
    """The query string of canonical filters: sorted names, `encodeURIComponent` escaping
    (so the web map builds the very same string)."""
    return "&".join(f"{name}={quote(canonical[name], safe=_JS_SAFE)}" for name in sorted(canonical))


_JS_SAFE = "!*'()"  # what encodeURIComponent leaves alone besides A-Z a-z 0-9 - _ . ~


def as_request_filters(canonical: dict[str, str]) -> RequestFilters:
    """The query filters of canonical values (no bbox: the tile bounds the query)."""
    since = canonical.get("since")
    until = canonical.get("until")
    return RequestFilters(
        statuses=split_csv(canonical.get("status")),
        service_codes=split_csv(canonical.get("service_code")),
        agencies=split_csv(canonical.get("agency")),
        datasets=split_csv(canonical.get("dataset")),
        since=datetime.fromisoformat(since) if since else None,
        until=datetime.fromisoformat(until) if until else None,
        q=canonical.get("q"),
    )


def _utc(name: str, text: str) -> datetime | None:
    if not text:
        return None
    if len(text) > 40:
        raise FilterKeyError(f"{name} is too long; use ISO-8601, e.g. 2024-05-01T00:00:00Z")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise FilterKeyError(f"{name} must be ISO-8601, e.g. 2024-05-01T00:00:00Z") from exc
    if when.tzinfo is None:
        raise FilterKeyError(f"{name} needs a time zone, e.g. 2024-05-01T00:00:00Z")
    return when.astimezone(UTC)


def _iso_z(when: datetime) -> str:
    text = when.isoformat(timespec="microseconds" if when.microsecond else "seconds")
    return text.replace("+00:00", "Z")
