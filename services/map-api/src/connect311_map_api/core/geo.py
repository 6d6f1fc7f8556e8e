"""Geometry: bounding boxes, subscription target checks and point-in-target tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shapely import prepared
from shapely.geometry import LineString, Point, shape
from shapely.validation import explain_validity

from connect311_contracts.subscriptions import (
    AreaTarget,
    CircleTarget,
    CityWideTarget,
    CorridorTarget,
    DepartmentDigestTarget,
    FollowTarget,
)

EARTH_RADIUS_M = 6_371_008.8
Target = (
    CircleTarget
    | AreaTarget
    | CorridorTarget
    | FollowTarget
    | CityWideTarget
    | DepartmentDigestTarget
)


class InvalidGeometry(ValueError):
    """A bbox or target geometry the API refuses, with a reason a person can act on."""


@dataclass(frozen=True)
class BBox:
    """A WGS84 bounding box."""

    min_long: float
    min_lat: float
    max_long: float
    max_lat: float


def parse_bbox(text: str) -> BBox:
    """Parse 'minlon,minlat,maxlon,maxlat'; raises InvalidGeometry with the reason."""
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidGeometry("bbox must be four numbers: minlon,minlat,maxlon,maxlat")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise InvalidGeometry("bbox values must be numbers") from exc
    if not all(math.isfinite(v) for v in values):
        raise InvalidGeometry("bbox values must be finite numbers")
    box = BBox(*values)
    if not (-180 <= box.min_long <= 180 and -180 <= box.max_long <= 180):
        raise InvalidGeometry("bbox longitudes must be between -180 and 180")
    if not (-90 <= box.min_lat <= 90 and -90 <= box.max_lat <= 90):
        raise InvalidGeometry("bbox latitudes must be between -90 and 90")
    if box.min_long > box.max_long or box.min_lat > box.max_lat:
        raise InvalidGeometry("bbox minimum must not exceed its maximum (minlon,minlat,...)")
    return box


def haversine_m(lat1: float, long1: float, lat2: float, long2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(long2 - long1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _vertex_count(geometry: dict[str, Any]) -> int:
    coords = geometry.get("coordinates")
    if geometry.get("type") == "Polygon":
        rings = coords if isinstance(coords, list) else []
    else:
        rings = [r for poly in (coords if isinstance(coords, list) else []) for r in poly]
    return sum(len(r) for r in rings if isinstance(r, list))


def validate_target(target: Target, max_vertices: int) -> None:
    """Raise InvalidGeometry when an area is too large, malformed or self-intersecting."""
    if isinstance(target, AreaTarget):
        count = _vertex_count(target.geometry)
        if count > max_vertices:
            raise InvalidGeometry(f"area has {count} vertices; at most {max_vertices} allowed")
        try:
            geom = shape(target.geometry)
        except Exception as exc:  # shapely raises several types for malformed GeoJSON
            raise InvalidGeometry(f"area is not valid GeoJSON: {exc}") from exc
        if geom.is_empty:
            raise InvalidGeometry("area is empty")
        if not geom.is_valid:
            raise InvalidGeometry(f"area is not a valid polygon: {explain_validity(geom)}")
        minx, miny, maxx, maxy = geom.bounds
        if not (minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90):
            raise InvalidGeometry("area coordinates must be [long, lat] in WGS84 degrees")
    if isinstance(target, CorridorTarget) and len(target.coordinates) > max_vertices:
        raise InvalidGeometry(f"corridor has more than {max_vertices} points")


def target_bbox(target: Target) -> BBox | None:
    """A box that contains every point the target can match (None: anywhere)."""
    if isinstance(target, CircleTarget):
        return _grow(BBox(target.long, target.lat, target.long, target.lat), target.radius_m)
    if isinstance(target, AreaTarget):
        return BBox(*shape(target.geometry).bounds)
    if isinstance(target, CorridorTarget):
        longs = [c[0] for c in target.coordinates]
        lats = [c[1] for c in target.coordinates]
        return _grow(BBox(min(longs), min(lats), max(longs), max(lats)), target.width_m)
    return None


def _grow(box: BBox, metres: float) -> BBox:
    dlat = math.degrees(metres / EARTH_RADIUS_M)
    coslat = max(0.01, math.cos(math.radians(max(abs(box.min_lat), abs(box.max_lat)))))
    dlong = min(180.0, dlat / coslat)
    return BBox(
        max(-180.0, box.min_long - dlong),
        max(-90.0, box.min_lat - dlat),
        min(180.0, box.max_long + dlong),
        min(90.0, box.max_lat + dlat),
    )


def point_matcher(target: Target) -> Callable[[str, float, float], bool]:
    """A predicate (service_request_id, lat, long) -> inside the target."""
    if isinstance(target, CircleTarget):
        return lambda _id, lat, long: (
            haversine_m(target.lat, target.long, lat, long) <= target.radius_m
        )
    if isinstance(target, AreaTarget):
        area = prepared.prep(shape(target.geometry))
        return lambda _id, lat, long: bool(area.covers(Point(long, lat)))
    if isinstance(target, CorridorTarget):
        return _corridor_matcher(target)
    if isinstance(target, FollowTarget):
        return lambda rid, _lat, _long: rid == target.service_request_id
    return lambda _id, _lat, _long: True


def _corridor_matcher(target: CorridorTarget) -> Callable[[str, float, float], bool]:
    # Local equirectangular projection in metres around the line: accurate at city scale.
    lat0 = sum(c[1] for c in target.coordinates) / len(target.coordinates)
    kx = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    ky = math.radians(1) * EARTH_RADIUS_M
    line = LineString([(long * kx, lat * ky) for long, lat in target.coordinates])
    return lambda _id, lat, long: bool(line.distance(Point(long * kx, lat * ky)) <= target.width_m)


def grid_index(value: float, origin: float, size: float) -> int:
    """The grid cell number of a coordinate (same formula as the SQL aggregation)."""
    return math.floor((value - origin) / size)


def grid_range(box: BBox, size: float) -> tuple[int, int, int, int]:
    """Cell numbers (x0, y0, x1, y1) of the cells a box touches, inclusive."""
    return (
        grid_index(box.min_long, -180.0, size),
        grid_index(box.min_lat, -90.0, size),
        grid_index(box.max_long, -180.0, size),
        grid_index(box.max_lat, -90.0, size),
    )
