"""Feed coordinates as validated WGS84 (lat, long).

Missing -> MISSING_COORDINATES; not a number, NaN, infinite, out of range or (0, 0) ("null
island") -> INVALID_COORDINATES; a source's listed placeholder point -> MISSING_COORDINATES;
a real point outside the profile's `bounds` (geocoded in another state) -> OUTSIDE_BOUNDS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from connect311_contracts.rejects import RejectReason, clip
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.text import present

__all__ = ["Bounds", "coordinates"]

Bounds = tuple[tuple[float, float], tuple[float, float]]
"""((south, west), (north, east)) in degrees, edges included."""


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise RecordError(RejectReason.INVALID_COORDINATES, f"{name} {value!r} is not a number.")
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise RecordError(
            RejectReason.INVALID_COORDINATES, f"{name} {clip(str(value), 40)!r} is not a number."
        ) from None


def coordinates(
    lat_raw: Any,
    long_raw: Any,
    *,
    names: tuple[str, str] = ("lat", "long"),
    kind: str = "fields",
    placeholders: Iterable[tuple[float, float]] = (),
    bounds: Bounds | None = None,
) -> tuple[float, float]:
    """Validated WGS84 (lat, long); RecordError for missing or impossible coordinates."""
    missing = [n for n, v in zip(names, (lat_raw, long_raw), strict=True) if not present(v)]
    if missing:
        label = kind if len(missing) > 1 else kind.rstrip("s")
        raise RecordError(
            RejectReason.MISSING_COORDINATES,
            f"no latitude/longitude ({label} {', '.join(missing)} empty): "
            "the request cannot be mapped.",
        )
    lat, long = _number(lat_raw, names[0]), _number(long_raw, names[1])
    for name, val, bound in ((names[0], lat, 90.0), (names[1], long, 180.0)):
        if not math.isfinite(val):
            raise RecordError(
                RejectReason.INVALID_COORDINATES, f"{name} is not a finite number ({val})."
            )
        if not -bound <= val <= bound:
            raise RecordError(
                RejectReason.INVALID_COORDINATES,
                f"{name} {val} is outside -{bound:g}..{bound:g}: not a WGS84 coordinate.",
            )
    if lat == 0.0 and long == 0.0:
        raise RecordError(
            RejectReason.INVALID_COORDINATES,
            "coordinates (0, 0) are 'null island', a placeholder for a missing location.",
        )
    for p_lat, p_long in placeholders:
        if math.isclose(lat, p_lat, abs_tol=1e-9) and math.isclose(long, p_long, abs_tol=1e-9):
            raise RecordError(
                RejectReason.MISSING_COORDINATES,
                f"coordinates ({lat}, {long}) are this source's placeholder for a request "
                "without a real location (listed in its profile), so it cannot be mapped.",
            )
    if bounds is not None:
        (south, west), (north, east) = bounds
        if not (south <= lat <= north and west <= long <= east):
            raise RecordError(
                RejectReason.OUTSIDE_BOUNDS,
                f"coordinates ({lat}, {long}) are outside the city's bounds "
                f"({south}..{north}, {west}..{east} in its profile): geocoded elsewhere.",
            )
    return lat, long
