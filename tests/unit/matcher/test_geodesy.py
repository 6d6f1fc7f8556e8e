"""Spherical distances: 1 m inside a radius matches, 1 m outside does not."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_matcher.geodesy import (
    EARTH_RADIUS_M,
    chord_angle,
    cos_threshold,
    destination,
    distance_m,
    lon_half_width_deg,
    polyline_distance_m,
    unit_vector,
    unit_vectors,
)
from connect311_matcher.index import SubscriptionIndex, circle_distances_m
from connect311_matcher.targets import compile_subscription
from tests.unit.matcher.factories import subscription


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """An independent distance formula to check ours against."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def inside(lat: float, lon: float, clat: float, clon: float, radius_m: float) -> bool:
    p, c = np.array(unit_vector(lat, lon)), np.array(unit_vector(clat, clon))
    return bool(p @ c >= cos_threshold(radius_m))


@pytest.mark.parametrize("lat", [27.77, 60.0, -33.9])
@pytest.mark.parametrize("radius", [50.0, 500.0, 10_000.0])
@pytest.mark.parametrize("bearing", [0.0, 45.0, 90.0, 180.0, 270.0, 333.0])
def test_one_metre_inside_matches_and_one_metre_outside_does_not(
    lat: float, radius: float, bearing: float
) -> None:
    lon = -82.64
    in_lat, in_lon = destination(lat, lon, bearing, radius - 1.0)
    out_lat, out_lon = destination(lat, lon, bearing, radius + 1.0)
    assert inside(in_lat, in_lon, lat, lon, radius)
    assert not inside(out_lat, out_lon, lat, lon, radius)
    assert haversine_m(lat, lon, in_lat, in_lon) == pytest.approx(radius - 1.0, abs=1e-3)
    assert haversine_m(lat, lon, out_lat, out_lon) == pytest.approx(radius + 1.0, abs=1e-3)


@given(
    st.floats(-80, 80),
    st.floats(-179, 179),
    st.floats(-80, 80),
    st.floats(-179, 179),
)
def test_distance_agrees_with_haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    assert distance_m(lat1, lon1, lat2, lon2) == pytest.approx(
        haversine_m(lat1, lon1, lat2, lon2), abs=1e-3, rel=1e-9
    )


def test_unit_vectors_match_the_scalar_version() -> None:
    lats, lons = np.array([27.77, 60.0, -45.0]), np.array([-82.64, 30.3, 170.0])
    vectors = unit_vectors(lats, lons)
    for i in range(3):
        assert vectors[i] == pytest.approx(unit_vector(lats[i], lons[i]))
        assert np.linalg.norm(vectors[i]) == pytest.approx(1.0)


@pytest.mark.parametrize("lat", [27.77, 60.0, 75.0])
def test_lon_half_width_reaches_the_widest_point_of_the_cap(lat: float) -> None:
    radius = 5_000.0
    half = lon_half_width_deg(lat, radius)
    # Points along the cap's edge never go further east than the half width.
    east = max(destination(lat, 0.0, b, radius)[1] for b in np.linspace(0, 180, 3601))
    assert east == pytest.approx(half, rel=1e-6)
    assert lon_half_width_deg(89.99, radius) == 180.0


def _sampled_polyline_distance(lat: float, lon: float, line: list[tuple[float, float]]) -> float:
    """Brute force: the nearest of many points sampled along each great-circle arc."""
    vs = unit_vectors(np.array([p[1] for p in line]), np.array([p[0] for p in line]))
    best = math.inf
    for a, b in itertools.pairwise(vs):
        omega = math.acos(min(1.0, float(a @ b)))
        t = np.linspace(0, 1, 20001)[:, None]
        if omega < 1e-15:
            pts = np.repeat(a[None, :], 2, axis=0)
        else:
            pts = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)
        p = np.array(unit_vector(lat, lon))
        chord = np.linalg.norm(pts - p, axis=1).min()
        best = min(best, 2 * math.asin(min(1.0, chord / 2)) * EARTH_RADIUS_M)
    return best


@given(
    base_lat=st.floats(-70, 70),
    base_lon=st.floats(-170, 170),
    offsets=st.lists(
        st.tuples(st.floats(-0.02, 0.02), st.floats(-0.02, 0.02)), min_size=2, max_size=4
    ),
    point=st.tuples(st.floats(-0.03, 0.03), st.floats(-0.03, 0.03)),
)
def test_polyline_distance_agrees_with_dense_sampling(
    base_lat: float,
    base_lon: float,
    offsets: list[tuple[float, float]],
    point: tuple[float, float],
) -> None:
    line = [(base_lon + dx, base_lat + dy) for dx, dy in offsets]
    lat, lon = base_lat + point[1], base_lon + point[0]
    vs = unit_vectors(np.array([p[1] for p in line]), np.array([p[0] for p in line]))
    ours = polyline_distance_m(np.array(unit_vector(lat, lon)), vs)
    sampled = _sampled_polyline_distance(lat, lon, line)
    # Sampling can only overestimate, by at most half a sample spacing (< 0.3 m here).
    assert ours <= sampled + 1e-3
    assert ours >= sampled - 0.3


def test_polyline_distance_to_a_meridian_segment_is_the_cross_track_distance() -> None:
    line = unit_vectors(np.array([59.9, 60.1]), np.array([30.0, 30.0]))
    lat, lon = destination(60.0, 30.0, 90.0, 250.0)
    assert polyline_distance_m(np.array(unit_vector(lat, lon)), line) == pytest.approx(
        250.0, abs=0.01
    )


lats, lons = st.floats(-89.9, 89.9), st.floats(-180.0, 180.0)


@given(
    st.lists(st.tuples(lats, lons, st.floats(50.0, 10_000.0)), min_size=1, max_size=20), lats, lons
)
def test_circle_distances_are_chord_angles_to_the_last_bit(
    centres: list[tuple[float, float, float]], lat: float, lon: float
) -> None:
    """circle_distances_m inlines chord_angle (for speed): every float must be the same,
    since the commands print it with repr."""
    subs = [
        subscription({"kind": "circle", "lat": a, "long": o, "radius_m": r}) for a, o, r in centres
    ]
    units = np.array([compile_subscription(i, sub).unit for i, sub in enumerate(subs)])
    want = (chord_angle(units, np.asarray(unit_vector(lat, lon))) * EARTH_RADIUS_M).tolist()
    assert circle_distances_m(units, lat, lon) == want
    index = SubscriptionIndex()  # and from the rows the index keeps, in any order
    for sub in subs:
        index.upsert(sub)
    slots = np.arange(len(subs))[::-1]
    assert circle_distances_m(index.slots.unit[slots], lat, lon) == want[::-1]
