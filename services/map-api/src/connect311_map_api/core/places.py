"""Finding a place: the data's extent, address-search queries and merging their answers (pure).

The map opens on its data when the deployment set no centre: the extent comes from grid
cells (counts and centroids), trimmed of the few requests far from the rest, so one stray
record at (0, 0) does not make the first view a map of the world.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_QUERY_CHARS",
    "MIN_QUERY_CHARS",
    "OUTLIER_SHARE",
    "Extent",
    "Place",
    "data_extent",
    "merge_places",
    "normalize_query",
    "parse_geocoder_answer",
]

MIN_QUERY_CHARS = 3  # fewer letters match half the city: ask for more
MAX_QUERY_CHARS = 100  # longer than any street address
OUTLIER_SHARE = 0.005  # requests trimmed at each edge of each axis before fitting the view


@dataclass(frozen=True)
class Extent:
    """Where the requests are: [west, south, east, north] in WGS84, and how many."""

    west: float
    south: float
    east: float
    north: float
    count: int

    def as_json(self) -> dict[str, Any]:
        """The extent as /api/extent answers it."""
        return {
            "count": self.count,
            "bbox": [self.west, self.south, self.east, self.north],
            "center": [(self.south + self.north) / 2, (self.west + self.east) / 2],
        }


def _trimmed(values: Sequence[tuple[float, int]], share: float) -> tuple[float, float]:
    """(low, high) of weighted values once `share` of the weight is dropped at each end."""
    ordered = sorted(values)
    total = sum(w for _, w in ordered)
    drop = math.floor(total * share)  # whole requests only: a small city loses none
    low_seen = 0
    low = ordered[0][0]
    for value, weight in ordered:
        low_seen += weight
        low = value
        if low_seen > drop:
            break
    high_seen = 0
    high = ordered[-1][0]
    for value, weight in reversed(ordered):
        high_seen += weight
        high = value
        if high_seen > drop:
            break
    return low, high


def data_extent(
    cells: Iterable[Mapping[str, Any]], cell_deg: float, share: float = OUTLIER_SHARE
) -> Extent | None:
    """The box around the cells' centroids (weighted by count, outliers trimmed), padded by
    half a cell so a single busy corner still shows as a neighbourhood, not one building.

    None when there are no requests.
    """
    points = [(float(c["lat"]), float(c["long"]), int(c["count"])) for c in cells if c["count"]]
    if not points:
        return None
    south, north = _trimmed([(lat, n) for lat, _, n in points], share)
    west, east = _trimmed([(long, n) for _, long, n in points], share)
    pad = cell_deg / 2
    return Extent(
        west=max(-180.0, west - pad),
        south=max(-85.0, south - pad),
        east=min(180.0, east + pad),
        north=min(85.0, north + pad),
        count=sum(n for _, _, n in points),
    )


@dataclass(frozen=True)
class Place:
    """One answer to an address search."""

    label: str
    lat: float
    long: float
    source: str  # "requests" (the city's own data) or "geocoder"
    requests: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The place as /api/places answers it."""
        return {
            "label": self.label,
            "lat": round(self.lat, 6),
            "long": round(self.long, 6),
            "source": self.source,
            "requests": self.requests,
        }


def normalize_query(text: str) -> str:
    """The search text with runs of whitespace folded to one space, trimmed."""
    return " ".join(text.split())


def parse_geocoder_answer(body: Any, limit: int) -> tuple[list[Place], int]:
    """Places from a Nominatim-style JSON list, and how many entries were unusable."""
    if not isinstance(body, list):
        return [], 1
    places: list[Place] = []
    skipped = 0
    for item in body:
        place = _geocoder_place(item)
        if place is None:
            skipped += 1
        elif len(places) < limit:
            places.append(place)
    return places, skipped


def _geocoder_place(item: Any) -> Place | None:
    if not isinstance(item, dict):
        return None
    label, raw_lat, raw_long = item.get("display_name"), item.get("lat"), item.get("lon")
    # Nominatim sends coordinates as strings; numbers are accepted too, nothing else.
    if not isinstance(raw_lat, str | int | float) or not isinstance(raw_long, str | int | float):
        return None
    try:
        lat, long = float(raw_lat), float(raw_long)
    except ValueError:
        return None
    if not isinstance(label, str) or not label.strip():
        return None
    finite = math.isfinite(lat) and math.isfinite(long)
    if not (finite and -90 <= lat <= 90 and -180 <= long <= 180):
        return None
    return Place(label=" ".join(label.split())[:300], lat=lat, long=long, source="geocoder")


def merge_places(local: Sequence[Place], remote: Sequence[Place], limit: int) -> list[Place]:
    """The city's own addresses first, then the geocoder's, without repeating a label."""
    seen: set[str] = set()
    out: list[Place] = []
    for place in (*local, *remote):
        key = place.label.casefold()
        if key in seen:
            continue
        seen.add(key)
        out.append(place)
        if len(out) == limit:
            break
    return out
