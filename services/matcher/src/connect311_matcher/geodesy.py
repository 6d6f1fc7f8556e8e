"""Distances on the spherical Earth, in metres, with unit vectors (pure numpy)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG R1); every distance in the matcher uses this sphere."""

FloatArray = NDArray[np.float64]


def unit_vector(lat_deg: float, lon_deg: float) -> tuple[float, float, float]:
    """The unit vector of one point given in degrees."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    cos_lat = math.cos(lat)
    return (cos_lat * math.cos(lon), cos_lat * math.sin(lon), math.sin(lat))


def unit_vectors(lat_deg: FloatArray, lon_deg: FloatArray) -> FloatArray:
    """Unit vectors (n x 3) of many points given in degrees."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    cos_lat = np.cos(lat)
    return np.stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)), axis=-1)


def cos_threshold(radius_m: float) -> float:
    """cos of a radius's central angle: a point is inside when dot(unit(p), unit(c)) >= it."""
    return math.cos(radius_m / EARTH_RADIUS_M)


def chord_angle(a: FloatArray, b: FloatArray) -> FloatArray:
    """Central angles (radians) between rows of unit vectors, accurate at small distances."""
    chord = np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)
    return np.asarray(2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0)), dtype=np.float64)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points in degrees."""
    a = np.asarray(unit_vector(lat1, lon1))
    b = np.asarray(unit_vector(lat2, lon2))
    return float(chord_angle(a, b)) * EARTH_RADIUS_M


def destination(
    lat_deg: float, lon_deg: float, bearing_deg: float, dist_m: float
) -> tuple[float, float]:
    """The point reached going `dist_m` metres from a point on an initial bearing (degrees)."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    bearing, delta = math.radians(bearing_deg), dist_m / EARTH_RADIUS_M
    sin_lat2 = math.sin(lat) * math.cos(delta) + math.cos(lat) * math.sin(delta) * math.cos(bearing)
    lat2 = math.asin(max(-1.0, min(1.0, sin_lat2)))
    lon2 = lon + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(lat),
        math.cos(delta) - math.sin(lat) * sin_lat2,
    )
    return math.degrees(lat2), (math.degrees(lon2) + 540.0) % 360.0 - 180.0


def lon_half_width_deg(lat_deg: float, radius_m: float) -> float:
    """Half the longitude span (degrees) of a spherical cap; 180 when it reaches a pole."""
    angle = radius_m / EARTH_RADIUS_M
    cos_lat = math.cos(math.radians(lat_deg))
    if abs(lat_deg) + math.degrees(angle) >= 90.0 or math.sin(angle) >= cos_lat:
        return 180.0
    return math.degrees(math.asin(math.sin(angle) / cos_lat))


def polyline_distance_m(point: FloatArray, vertices: FloatArray) -> float:
    """Distance in metres from a unit vector to a polyline of unit vectors (k x 3), on the sphere.

    Each segment is the shorter great-circle arc between its ends; the nearest point is the
    projection onto that great circle when it falls inside the arc, otherwise an end.
    """
    a, b = vertices[:-1], vertices[1:]
    normal = np.cross(a, b)
    norm = np.linalg.norm(normal, axis=1)
    ends = chord_angle(vertices, point).min()
    usable = norm > 1e-15  # a zero-length segment is just its end point
    if not usable.any():
        return float(ends) * EARTH_RADIUS_M
    n = normal[usable] / norm[usable, None]
    a, b = a[usable], b[usable]
    # The projection lies within the arc when p is on the inner side of both end planes.
    within = (np.einsum("ij,ij->i", np.cross(a, point), n) >= 0.0) & (
        np.einsum("ij,ij->i", np.cross(point, b), n) >= 0.0
    )
    if within.any():
        across = np.abs(np.arcsin(np.clip(n[within] @ point, -1.0, 1.0))).min()
        return float(min(ends, across)) * EARTH_RADIUS_M
    return float(ends) * EARTH_RADIUS_M
