"""Subscriptions compiled for matching: unit vectors, thresholds, boxes, prepared shapes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.errors import GEOSException
from shapely.geometry import shape

from connect311_contracts.subscriptions import (
    AreaTarget,
    CircleTarget,
    CorridorTarget,
    FollowTarget,
    Subscription,
    SubscriptionFilters,
)
from connect311_matcher.geodesy import (
    EARTH_RADIUS_M,
    cos_threshold,
    lon_half_width_deg,
    unit_vector,
)

BBox = tuple[float, float, float, float]
"""(min lon, min lat, max lon, max lat) in degrees."""


class UnusableGeometry(ValueError):
    """A subscription's geometry cannot be matched (invalid or empty polygon)."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """One active subscription, ready for fast checks; `slot` is its index position.

    The full subscription is kept as its JSON (about a sixth of a model's memory) and parsed
    only when a match needs it; what the checks need is held unpacked.
    """

    slot: int
    subscription_id: str
    kind: str
    raw: bytes
    confirmed_ts: float
    filters: SubscriptionFilters | None = None
    follows: str | None = None
    bbox: BBox | None = None
    unit: tuple[float, float, float] | None = None
    cos_r: float = 2.0
    lon_half_deg: float = 0.0
    area: Any = None
    label: str | None = None  # the rule text needs these two: no parse per match
    width_m: float = 0.0  # a corridor's width

    @property
    def subscription(self) -> Subscription:
        """The full subscription (parsed from its JSON on each call)."""
        return Subscription.model_validate_json(self.raw)

    @property
    def has_filters(self) -> bool:
        """True when any filter narrows this subscription."""
        return self.filters is not None


def compile_subscription(slot: int, sub: Subscription) -> Compiled:
    """Precompute everything the index and the exact checks need for one subscription."""
    confirmed = sub.confirmed_at or sub.created_at
    f = sub.filters
    narrowed = bool(f.service_codes or f.agencies or f.datasets or f.event_kinds)
    base: dict[str, Any] = {
        "slot": slot,
        "subscription_id": sub.subscription_id,
        "kind": sub.target.kind,
        "raw": sub.model_dump_json().encode(),
        "confirmed_ts": confirmed.timestamp(),
        "filters": f if narrowed else None,
        "follows": followed_request(sub),
        "label": sub.label,
    }
    match sub.target:
        case CircleTarget() as circle:
            return Compiled(**base, **_circle(circle))
        case AreaTarget() as area:
            return Compiled(**base, **_area(area))
        case CorridorTarget() as corridor:
            return Compiled(**base, **_corridor(corridor))
        case _:  # follow and city-wide need no geometry
            return Compiled(**base)


def followed_request(sub: Subscription) -> str | None:
    """The request id a follow subscription tracks, else None."""
    match sub.target:
        case FollowTarget(service_request_id=request_id):
            return request_id
        case _:
            return None


def circle_bbox(lat: float, lon: float, radius_m: float) -> tuple[BBox, float]:
    """A circle's bounding box (degrees) and its longitude half-width."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.000001 + 1e-9
    half = min(180.0, lon_half_width_deg(lat, radius_m) * 1.000001 + 1e-9)
    box = (lon - half, max(-90.0, lat - dlat), lon + half, min(90.0, lat + dlat))
    return box, half


def _circle(target: CircleTarget) -> dict[str, Any]:
    box, half = circle_bbox(target.lat, target.long, target.radius_m)
    return {
        "bbox": box,
        "unit": unit_vector(target.lat, target.long),
        "cos_r": cos_threshold(target.radius_m),
        "lon_half_deg": half,
    }


def _area(target: AreaTarget) -> dict[str, Any]:
    try:
        geom = shape(target.geometry)
        if not geom.is_empty and not geom.is_valid:
            geom = shapely.make_valid(geom)  # self-intersections: keep the area the user drew
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, GEOSException) as exc:
        raise UnusableGeometry(f"area geometry cannot be read: {exc}") from exc
    if geom.is_empty or geom.area == 0:
        raise UnusableGeometry("area geometry is empty")
    shapely.prepare(geom)
    return {"bbox": tuple(float(v) for v in geom.bounds), "area": geom}


def _corridor(target: CorridorTarget) -> dict[str, Any]:
    """Only a plain box: the segment index does the real work (see segments.py)."""
    lons = [lon for lon, _ in target.coordinates]
    lats = [lat for _, lat in target.coordinates]
    return {"bbox": (min(lons), min(lats), max(lons), max(lats)), "width_m": target.width_m}
