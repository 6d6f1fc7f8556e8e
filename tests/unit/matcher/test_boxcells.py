"""Shapes' boxes filed by coarse cell (boxcells.py): the R-trees are asked only when some box
holds the event's point, and never skipped when one does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_matcher.boxcells import MAX_BIG, MAX_CELLS, BoxCells, corridor_box
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.segments import segment_box
from tests.unit.matcher.test_index_oracle import area_sub, corridor_sub

BOX = (-82.65, 27.76, -82.63, 27.78)


def test_a_box_holds_its_edges_and_nothing_past_them() -> None:
    cells = BoxCells()
    cells.add(1, BOX)
    assert cells.may_hold(27.76, -82.65) and cells.may_hold(27.78, -82.63)  # corners, as R-trees
    assert cells.may_hold(27.77, -82.64)
    assert not cells.may_hold(27.7801, -82.64)
    assert not cells.may_hold(27.77, -82.6299)


def test_removed_and_moved_boxes_leave_no_trace() -> None:
    cells = BoxCells()
    cells.add(1, BOX)
    cells.add(1, (10.0, 10.0, 10.001, 10.001))  # the same slot moved: the old cells are freed
    assert not cells.may_hold(27.77, -82.64)
    assert cells.may_hold(10.0005, 10.0005)
    cells.remove(1)
    cells.remove(1)  # twice: harmless
    assert not cells.may_hold(10.0005, 10.0005) and len(cells) == 0


def test_boxes_over_many_cells_are_kept_apart_and_still_found() -> None:
    cells = BoxCells()
    cells.add(7, (-90.0, 20.0, -70.0, 40.0))  # far more than MAX_CELLS cells
    assert len(cells._cells) == 0 and len(cells._big) == 1
    assert cells.may_hold(30.0, -80.0) and not cells.may_hold(50.0, -80.0)
    for slot in range(MAX_BIG + 1):  # too many to scan: "maybe", the R-tree decides
        cells.add(100 + slot, (0.0, 0.0, 0.01 * MAX_CELLS, 0.01 * MAX_CELLS))
    assert cells.may_hold(50.0, -80.0)


coords = st.floats(-60.0, 60.0, allow_nan=False)
sizes = st.floats(0.0, 0.05, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(coords, coords, sizes, sizes), min_size=1, max_size=8),
    st.data(),
)
def test_says_no_only_when_no_box_holds_the_point(boxes: list[Any], data: st.DataObject) -> None:
    cells = BoxCells()
    filed = []
    for slot, (lat, lon, w, h) in enumerate(boxes):
        box = (lon, lat, lon + w, lat + h)
        cells.add(slot, box)
        filed.append(box)
    x0, y0, x1, y1 = data.draw(st.sampled_from(filed))
    # Points on, inside and a hair outside a box's edges, and anywhere near.
    lon = data.draw(st.sampled_from([x0, x1, (x0 + x1) / 2, x1 + 1e-9]) | st.floats(x0 - 1, x1 + 1))
    lat = data.draw(st.sampled_from([y0, y1, (y0 + y1) / 2, y0 - 1e-9]) | st.floats(y0 - 1, y1 + 1))
    held = any(a <= lon <= c and b <= lat <= d for a, b, c, d in filed)
    assert cells.may_hold(lat, lon) == held


def test_an_event_far_from_every_shape_never_asks_the_r_trees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = SubscriptionIndex()
    index.upsert(area_sub(27.77, -82.64, 0.01))
    index.upsert(corridor_sub([(-82.60, 27.70), (-82.59, 27.71)], 50.0))

    def asked(*_: object) -> None:
        raise AssertionError("an R-tree was asked")

    monkeypatch.setattr(index._shapes, "intersection", asked)
    monkeypatch.setattr(index._segments, "near", asked)
    assert index.shapes_at(27.90, -82.40) == []  # miles from both: answered from the cells
    with pytest.raises(AssertionError, match="R-tree"):
        index.shapes_at(27.77, -82.64)  # inside the area's box: the R-tree must answer
    with pytest.raises(AssertionError, match="R-tree"):
        index.shapes_at(27.705, -82.595)  # on the route


def test_shapes_are_found_again_after_changes() -> None:
    index = SubscriptionIndex()
    area, route = (
        area_sub(27.77, -82.64, 0.01),
        corridor_sub([(-82.60, 27.70), (-82.59, 27.71)], 50.0),
    )
    index.upsert(area)
    index.upsert(route)
    ids = lambda lat, lon: {c.subscription_id for c, _ in index.shapes_at(lat, lon)}  # noqa: E731
    assert ids(27.77, -82.647) == {area.subscription_id}
    assert ids(27.705, -82.595) == {route.subscription_id}
    index.remove(area.subscription_id)
    index.remove(route.subscription_id)
    assert ids(27.77, -82.647) == set() and ids(27.705, -82.595) == set()
    assert len(index._area_cells) == len(index._corridor_cells) == 0
    index.upsert(route)
    assert ids(27.705, -82.595) == {route.subscription_id}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-179, 179), st.floats(-85, 85)), min_size=2, max_size=6),
    st.floats(1.0, 5_000.0),
)
def test_a_corridors_box_holds_every_segment_box(points: list[Any], width: float) -> None:
    """What the segment R-tree can return for a corridor lies in the box the cells file."""
    coords = np.array(points, dtype=np.float64)
    x0, y0, x1, y1 = corridor_box(coords, width)
    for i in range(len(coords) - 1):
        a, b, c, d = segment_box(coords[i], coords[i + 1], width)
        assert x0 <= a and y0 <= b and c <= x1 and d <= y1
