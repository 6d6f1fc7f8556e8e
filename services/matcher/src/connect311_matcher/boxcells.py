"""Boxes filed by the coarse cells they touch: does any box hold a point? (a dict lookup)

The R-trees of areas and corridor segments answer a point query in ~10-20 us each through
their Python binding, and most events lie in no shape's box (sparse cities: ~30 us of a
~200 us event, bench/matcher.py --parts). Asking this first skips them when nothing can
match; when a box does hold the point, the R-trees still answer (their order, hence the
commands' order, is unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from connect311_matcher.geodesy import FloatArray
from connect311_matcher.segments import segment_box

BBox = tuple[float, float, float, float]
"""(min lon, min lat, max lon, max lat) in degrees."""

CELL_DEG = 0.01
"""~1 km: a neighbourhood area or a street corridor touches a few cells."""
MAX_CELLS = 1024
"""A box over more cells than this (a whole-city area) is scanned with the few others alike."""
MAX_BIG = 64
"""More big boxes than this: stop scanning them, answer "maybe" (the R-tree decides)."""


class BoxCells:
    """Which boxes (by slot) touch each cell; boxes over many cells kept apart."""

    def __init__(self, cell_deg: float = CELL_DEG) -> None:
        self.cell_deg = cell_deg
        self._cells: dict[tuple[int, int], dict[int, BBox]] = {}
        self._boxes: dict[int, BBox] = {}
        self._big: dict[int, BBox] = {}

    def __len__(self) -> int:
        return len(self._boxes)

    def _span(self, box: BBox) -> tuple[range, range]:
        c = self.cell_deg
        rows = range(math.floor(box[1] / c), math.floor(box[3] / c) + 1)
        cols = range(math.floor(box[0] / c), math.floor(box[2] / c) + 1)
        return rows, cols

    def add(self, slot: int, box: BBox) -> None:
        """File a slot's box (replacing any it had)."""
        self.remove(slot)
        self._boxes[slot] = box
        rows, cols = self._span(box)
        if len(rows) * len(cols) > MAX_CELLS:
            self._big[slot] = box
            return
        for row in rows:
            for col in cols:
                self._cells.setdefault((row, col), {})[slot] = box

    def remove(self, slot: int) -> None:
        """Forget a slot's box (if filed)."""
        box = self._boxes.pop(slot, None)
        if box is None:
            return
        if self._big.pop(slot, None) is not None:
            return
        rows, cols = self._span(box)
        for row in rows:
            for col in cols:
                cell = self._cells[(row, col)]
                del cell[slot]
                if not cell:
                    del self._cells[(row, col)]

    def may_hold(self, lat: float, lon: float) -> bool:
        """False only when no filed box holds the point (edges included, as the R-tree's)."""
        c = self.cell_deg
        cell = self._cells.get((math.floor(lat / c), math.floor(lon / c)))
        if cell and _any_holds(cell.values(), lat, lon):
            return True
        if len(self._big) > MAX_BIG:
            return True
        return _any_holds(self._big.values(), lat, lon)


def _any_holds(boxes: Iterable[BBox], lat: float, lon: float) -> bool:
    return any(x0 <= lon <= x1 and y0 <= lat <= y1 for x0, y0, x1, y1 in boxes)


def corridor_box(points: FloatArray, width_m: float) -> BBox:
    """The union of a corridor's segment boxes (as SegmentIndex files them): every point
    the segment R-tree can return for this corridor lies in it."""
    boxes = [segment_box(points[i], points[i + 1], width_m) for i in range(len(points) - 1)]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
