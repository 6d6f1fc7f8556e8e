"""Corridor segments in one R-tree, checked together with one vectorized spherical test.

Indexing segments (each box widened by its corridor's width) rather than whole corridors
keeps candidates few, and holding every segment's planes in shared arrays lets one numpy
pass settle all candidates of an event instead of one call per corridor.
"""

from __future__ import annotations

import math

import numpy as np
from rtree import index as rtree_index

from connect311_matcher.geodesy import EARTH_RADIUS_M, FloatArray, lon_half_width_deg, unit_vectors

_FIELDS = ("a", "b", "normal", "start", "end")


class SegmentIndex:
    """Segments of every corridor held, by the corridor's slot."""

    def __init__(self) -> None:
        self._tree = rtree_index.Index()
        self._next = 0
        size = 256
        self._vec = {name: np.zeros((size, 3)) for name in _FIELDS}
        self._width = np.zeros(size)
        self._usable = np.zeros(size, dtype=np.bool_)
        self._slot = np.zeros(size, dtype=np.int64)
        self._boxes: dict[int, list[tuple[int, tuple[float, float, float, float]]]] = {}

    def __len__(self) -> int:
        return len(self._boxes)

    def add(self, slot: int, coords: FloatArray, width_m: float) -> None:
        """Index a corridor's segments; coords are (lon, lat) rows in degrees."""
        units = unit_vectors(coords[:, 1], coords[:, 0])
        a, b = units[:-1], units[1:]
        normal = np.cross(a, b)
        norm = np.linalg.norm(normal, axis=1)
        usable = norm > 1e-15  # a zero-length segment is just its end point
        normal = np.where(usable[:, None], normal / np.where(norm > 0, norm, 1.0)[:, None], 0.0)
        first, k = self._next, len(a)
        self._grow(first + k)
        rows = slice(first, first + k)
        # (a x p) . n = p . (n x a) and (p x b) . n = p . (b x n): both planes precomputed.
        values = {"a": a, "b": b, "normal": normal}
        values["start"], values["end"] = np.cross(normal, a), np.cross(b, normal)
        for name in _FIELDS:
            self._vec[name][rows] = values[name]
        self._width[rows], self._usable[rows], self._slot[rows] = width_m, usable, slot
        boxes = []
        for i in range(k):
            box = segment_box(coords[i], coords[i + 1], width_m)
            self._tree.insert(first + i, box)
            boxes.append((first + i, box))
        self._boxes[slot] = boxes
        self._next += k

    def remove(self, slot: int) -> None:
        """Forget a corridor's segments."""
        for seg, box in self._boxes.pop(slot, []):
            self._tree.delete(seg, box)

    def near(self, lat: float, lon: float, p: FloatArray) -> dict[int, float]:
        """Slots of corridors within their width of the point, with the distance in metres."""
        if not self._boxes:
            return {}
        ids = self._tree.intersection_v(np.array([[lon, lat]]), np.array([[lon, lat]]))[0]  # type: ignore[no-untyped-call]
        if not len(ids):
            return {}
        v = {name: self._vec[name][ids] for name in _FIELDS}
        chord = np.minimum(np.linalg.norm(v["a"] - p, axis=1), np.linalg.norm(v["b"] - p, axis=1))
        angle = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0))
        within = self._usable[ids] & (v["start"] @ p >= 0.0) & (v["end"] @ p >= 0.0)
        across = np.arcsin(np.minimum(np.abs(v["normal"] @ p), 1.0))
        dist = np.where(within, np.minimum(angle, across), angle) * EARTH_RADIUS_M
        found: dict[int, float] = {}
        for slot, d, width in zip(
            self._slot[ids].tolist(), dist.tolist(), self._width[ids].tolist(), strict=True
        ):
            if d <= width and d < found.get(slot, math.inf):
                found[slot] = d
        return found

    def _grow(self, needed: int) -> None:
        size = len(self._width)
        if needed <= size:
            return
        new = max(needed, 2 * size)
        for name in _FIELDS:
            grown = np.zeros((new, 3))
            grown[:size] = self._vec[name]
            self._vec[name] = grown
        self._width = np.concatenate((self._width, np.zeros(new - size)))
        self._usable = np.concatenate((self._usable, np.zeros(new - size, dtype=np.bool_)))
        self._slot = np.concatenate((self._slot, np.zeros(new - size, dtype=np.int64)))

    @property
    def nbytes(self) -> int:
        """Bytes of the segment arrays."""
        arrays = [*self._vec.values(), self._width, self._usable, self._slot]
        return sum(a.nbytes for a in arrays)


def segment_box(
    start: FloatArray, end: FloatArray, width_m: float
) -> tuple[float, float, float, float]:
    """A (lon, lat) box holding every point within width_m of the arc start-end."""
    lon1, lat1, lon2, lat2 = float(start[0]), float(start[1]), float(end[0]), float(end[1])
    dlat = math.degrees(width_m / EARTH_RADIUS_M) * 1.000001 + 1e-9
    # Arcs bulge poleward of their ends by about dlon^2 sin(2 lat) / 16: doubled, plus a floor.
    dlon = math.radians(abs(lon2 - lon1))
    top = max(abs(lat1), abs(lat2))
    bulge = math.degrees(dlon**2 * abs(math.sin(2 * math.radians(top))) / 8) + 1e-7
    reach = min(top + dlat + bulge, 89.9)
    half = min(180.0, lon_half_width_deg(reach, width_m) * 1.000001 + 1e-9)
    return (
        min(lon1, lon2) - half,
        max(-90.0, min(lat1, lat2) - dlat - bulge),
        max(lon1, lon2) + half,
        min(90.0, max(lat1, lat2) + dlat + bulge),
    )
