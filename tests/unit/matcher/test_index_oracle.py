"""The index finds exactly what a brute-force scan of every subscription finds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from connect311_contracts.subscriptions import Subscription
from connect311_matcher.geodesy import cos_threshold, destination, polyline_distance_m, unit_vector
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.targets import BBox
from tests.unit.matcher.factories import subscription

CENTRES = [(27.77, -82.64), (60.0, 30.3), (-41.3, 174.8), (69.65, 18.96)]


def brute_force(subs: list[Subscription], lat: float, lon: float) -> set[str]:
    """The ids of every subscription whose place contains the point, checked one by one."""
    p = np.array(unit_vector(lat, lon))
    found = set()
    for sub in subs:
        t: Any = sub.target
        if t.kind == "circle":
            hit = np.array(unit_vector(t.lat, t.long)) @ p >= cos_threshold(t.radius_m)
        elif t.kind == "area":
            hit = shape(t.geometry).covers(shapely.Point(lon, lat))
        else:
            vs = np.array([unit_vector(la, lo) for lo, la in t.coordinates])
            hit = polyline_distance_m(p, vs) <= t.width_m
        if hit:
            found.add(sub.subscription_id)
    return found


def indexed(index: SubscriptionIndex, lat: float, lon: float) -> set[str]:
    ids = {index.get(int(s)).subscription.subscription_id for s in index.circles_at(lat, lon)}
    ids |= {c.subscription.subscription_id for c, _ in index.shapes_at(lat, lon)}
    return ids


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[Subscription], list[tuple[float, float]]]:
    """Subscriptions around one city and points, many of them a hair from some boundary."""
    clat, clon = draw(st.sampled_from(CENTRES))
    offset = st.floats(-0.05, 0.05)
    subs: list[Subscription] = []
    edges: list[tuple[float, float, float]] = []  # (lat, lon, distance) of circle edges
    for _ in range(draw(st.integers(1, 25))):
        lat, lon = clat + draw(offset), clon + draw(offset)
        r = draw(st.floats(50, 5_000))
        subs.append(circle_sub(lat, lon, r))
        edges.append((lat, lon, r))
    for _ in range(draw(st.integers(0, 4))):
        subs.append(
            area_sub(clat + draw(offset), clon + draw(offset), draw(st.floats(0.002, 0.03)))
        )
    for _ in range(draw(st.integers(0, 4))):
        n = draw(st.integers(2, 5))
        pts = [(clon + draw(offset), clat + draw(offset)) for _ in range(n)]
        width = draw(st.floats(5, 500))
        subs.append(corridor_sub(pts, width))
        vlon, vlat = draw(st.sampled_from(pts))  # probes a hair either side of the width
        edges.append((vlat, vlon, width))
    points = [(clat + draw(offset), clon + draw(offset)) for _ in range(draw(st.integers(1, 15)))]
    for _ in range(draw(st.integers(0, 10))):
        lat, lon, r = draw(st.sampled_from(edges))
        d = r + draw(st.sampled_from([-1.0, -0.01, 0.01, 1.0, -30.0, 30.0]))
        points.append(destination(lat, lon, draw(st.floats(0, 360)), d))
    return subs, points


def circle_sub(lat: float, lon: float, r: float) -> Subscription:
    return subscription({"kind": "circle", "lat": lat, "long": lon, "radius_m": r})


def area_sub(lat: float, lon: float, size: float) -> Subscription:
    outer = [
        (lon - size, lat - size),
        (lon + size, lat - size),
        (lon + size, lat + size),
        (lon - size / 3, lat + size * 1.5),
        (lon - size, lat + size),
        (lon - size, lat - size),
    ]
    h = size / 3
    hole = [
        (lon - h, lat - h),
        (lon + h, lat - h),
        (lon + h, lat + h),
        (lon - h, lat + h),
        (lon - h, lat - h),
    ]
    geometry = {"type": "Polygon", "coordinates": [outer, hole]}
    return subscription({"kind": "area", "geometry": geometry})


def corridor_sub(points: list[tuple[float, float]], width: float) -> Subscription:
    return subscription({"kind": "corridor", "coordinates": points, "width_m": width})


def build(subs: list[Subscription], gridded: bool, cell_m: float = 500.0) -> SubscriptionIndex:
    index = SubscriptionIndex(cell_m=cell_m)
    index.bulk_loading = gridded
    for sub in subs:
        index.upsert(sub)
    if gridded:
        index.rebuild_now()
    return index


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.booleans(), st.sampled_from([250.0, 500.0, 1000.0]))
def test_index_agrees_with_brute_force(
    scene: tuple[list[Subscription], list[tuple[float, float]]], gridded: bool, cell_m: float
) -> None:
    subs, points = scene
    index = build(subs, gridded, cell_m)
    for lat, lon in points:
        assert indexed(index, lat, lon) == brute_force(subs, lat, lon)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.data())
def test_live_changes_between_rebuilds_agree_with_brute_force(
    scene: tuple[list[Subscription], list[tuple[float, float]]], data: st.DataObject
) -> None:
    """Half the circles go into a grid, then some are removed, moved and added live."""
    subs, points = scene
    half = len(subs) // 2
    index = build(subs[:half], gridded=True)
    live = {s.subscription_id: s for s in subs[:half]}
    for sub in subs[half:]:
        index.upsert(sub)
        live[sub.subscription_id] = sub
    for sid in data.draw(st.lists(st.sampled_from(sorted(live)), max_size=5, unique=True)):
        old: Any = live[sid].target
        if old.kind == "circle" and data.draw(st.booleans()):
            moved = live[sid].model_copy(
                update={"target": old.model_copy(update={"radius_m": 60.0})}
            )
            index.upsert(moved)
            live[sid] = moved
        else:
            index.remove(sid)
            del live[sid]
    if data.draw(st.booleans()):
        index.rebuild_now()
    for lat, lon in points:
        assert indexed(index, lat, lon) == brute_force(list(live.values()), lat, lon)


def test_circles_near_a_pole_and_the_antimeridian_are_still_found() -> None:
    subs = [circle_sub(89.99, 0.0, 5_000), circle_sub(0.0, 179.999, 1_000), circle_sub(10, 10, 100)]
    index = build(subs, gridded=True)
    for lat, lon in [(89.97, 120.0), (0.0, -179.996), (10.0, 10.0005), (0.0, 179.0)]:
        assert indexed(index, lat, lon) == brute_force(subs, lat, lon)
    assert indexed(index, 89.97, 120.0) == {subs[0].subscription_id}
    assert indexed(index, 0.0, -179.996) == {subs[1].subscription_id}


def test_area_hole_is_not_inside() -> None:
    sub = area_sub(27.77, -82.64, 0.01)
    index = build([sub], gridded=False)
    assert indexed(index, 27.77, -82.64) == set()  # centre of the hole
    assert indexed(index, 27.775, -82.64 + 0.008) == {sub.subscription_id}


def test_bbox_type_is_lon_lat_order() -> None:
    index = build([circle_sub(27.77, -82.64, 1000)], gridded=False)
    c = next(iter(index._by_id.values()))
    box: BBox | None = c.bbox
    assert box is not None and box[0] < -82.64 < box[2] and box[1] < 27.77 < box[3]


@pytest.mark.parametrize("lat", [27.77, 60.0])
@pytest.mark.parametrize("gridded", [True, False], ids=["grid", "delta"])
def test_index_one_metre_inside_matches_one_metre_outside_does_not(
    lat: float, gridded: bool
) -> None:
    subs = [circle_sub(lat, -82.64, r) for r in (50.0, 500.0, 4_999.0)]
    index = build(subs, gridded)
    for sub in subs:
        r = sub.target.radius_m  # type: ignore[union-attr]
        for bearing in range(0, 360, 15):
            inside = destination(lat, -82.64, bearing, r - 1.0)
            outside = destination(lat, -82.64, bearing, r + 1.0)
            assert sub.subscription_id in indexed(index, *inside)
            assert sub.subscription_id not in indexed(index, *outside)
