"""A precomputed cover grid for circles: per cell, who surely matches and who must be checked.

Cells are about `cell_m` square (rows of equal latitude height, columns widened by
1/cos(latitude)). For each circle every cell it touches is classified once at build time:
- "inside": the whole cell lies within the circle (no check needed at match time);
- "boundary": the cell crosses the circle's edge; the circle's unit vector and cos threshold
  are stored inline in the cell so one vectorized dot product settles them all.
Both tests use the triangle inequality on the sphere with a safety margin, so they are exact
for every point, not just cell centres. Circles beyond +-80 deg or that straddle the
antimeridian are not gridded (the index checks those few exhaustively).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from connect311_matcher.geodesy import EARTH_RADIUS_M, FloatArray, chord_angle, unit_vectors

IntArray = NDArray[np.int64]
SlotArray = NDArray[np.int32]

MAX_GRID_LAT = 80.0
"""Circles reaching past this latitude are checked exhaustively instead of gridded."""
_MARGIN = 0.5 / EARTH_RADIUS_M  # 0.5 m: covers the bulge of parallels and rounding error
_ROW_BIAS = 1 << 20
_COL_BIAS = 1 << 21
_COL_SPAN = 1 << 22
_CHUNK = 20_000


@dataclass(frozen=True)
class GridShape:
    """The cell layout: row height and each row's column width, in radians."""

    cell_m: float

    @property
    def dlat(self) -> float:
        """Row height in radians."""
        return self.cell_m / EARTH_RADIUS_M

    def dlon(self, rows: IntArray) -> FloatArray:
        """Column widths (radians) of the given rows."""
        centre = (rows.astype(np.float64) + 0.5) * self.dlat
        return np.asarray(self.dlat / np.maximum(np.cos(centre), 0.05), dtype=np.float64)

    def cell_radius(self, rows: IntArray) -> FloatArray:
        """Angular distance from a cell's centre to its farthest corner, plus the margin."""
        dlat, dlon = self.dlat, self.dlon(rows)
        centre_lat = (rows.astype(np.float64) + 0.5) * dlat
        centre = unit_vectors(np.degrees(centre_lat), np.zeros_like(centre_lat))
        corners = [
            unit_vectors(np.degrees(centre_lat + s * dlat / 2), np.degrees(dlon / 2))
            for s in (-1.0, 1.0)
        ]
        far = np.maximum(chord_angle(centre, corners[0]), chord_angle(centre, corners[1]))
        return np.asarray(far + _MARGIN, dtype=np.float64)

    def key_of(self, lat_deg: float, lon_deg: float) -> int:
        """The cell key of one point."""
        row = math.floor(math.radians(lat_deg) / self.dlat)
        width = float(self.dlon(np.array([row], dtype=np.int64))[0])
        col = math.floor(math.radians(lon_deg) / width)
        return (row + _ROW_BIAS) * _COL_SPAN + (col + _COL_BIAS)


def griddable(
    lat_deg: FloatArray, lon_deg: FloatArray, radius_m: FloatArray, lon_half_deg: FloatArray
) -> NDArray[np.bool_]:
    """Which circles the grid can hold (away from the poles and the antimeridian)."""
    reach = np.degrees(radius_m / EARTH_RADIUS_M)
    return np.asarray(np.abs(lat_deg) + reach <= MAX_GRID_LAT) & (
        np.abs(lon_deg) + lon_half_deg < 180.0
    )


@dataclass(frozen=True)
class CircleBatch:
    """The circles to grid, as parallel arrays (slot ids, centres in degrees, radii in m)."""

    slots: SlotArray
    lat: FloatArray
    lon: FloatArray
    radius_m: FloatArray


class CoverGrid:
    """An immutable cover grid, built once from a batch of circles."""

    def __init__(self, shape: GridShape, batch: CircleBatch, lon_half_deg: FloatArray) -> None:
        self.shape = shape
        keys, slots, inside = _classify_all(shape, batch, lon_half_deg)
        order = np.lexsort((slots, ~inside, keys))
        keys, slots, inside = keys[order], slots[order], inside[order]
        self.cell_keys, starts = np.unique(keys, return_index=True)
        self._cell_of = {int(k): i for i, k in enumerate(self.cell_keys)}
        ends = np.append(starts[1:], len(keys))
        # Inside entries come first within each cell (sorted on ~inside), boundary after.
        n_inside = np.add.reduceat(inside.astype(np.int64), starts) if len(keys) else starts
        self._in_start, self._in_end = starts, starts + n_inside
        self._bd_end = ends
        self.slots = slots.astype(np.int32)
        # Boundary checks read inline copies of each circle's data (contiguous per cell).
        xyz = np.zeros((len(slots), 3))
        cos_r = np.full(len(slots), 2.0)  # inside entries never get checked
        if len(batch.slots):
            pos = np.searchsorted(batch.slots, slots)
            bd = ~inside
            xyz[bd] = unit_vectors(batch.lat[pos[bd]], batch.lon[pos[bd]])
            cos_r[bd] = np.cos(batch.radius_m[pos[bd]] / EARTH_RADIUS_M)
        self._x, self._y, self._z = (np.ascontiguousarray(xyz[:, i]) for i in range(3))
        self._cos = cos_r
        self.inside_entries = int(inside.sum())
        self.boundary_entries = len(slots) - self.inside_entries

    @property
    def nbytes(self) -> int:
        """Bytes held by the grid's arrays (the dict of cells is small beside them)."""
        arrays = (self.slots, self._x, self._y, self._z, self._cos, self.cell_keys)
        return sum(a.nbytes for a in arrays) + 3 * self._in_start.nbytes + 100 * len(self._cell_of)

    def query(self, lat_deg: float, lon_deg: float, p: tuple[float, float, float]) -> SlotArray:
        """Slots of every gridded circle that contains the point (unit vector p)."""
        cell = self._cell_of.get(self.shape.key_of(lat_deg, lon_deg))
        if cell is None:
            return np.empty(0, dtype=np.int32)
        s, m, e = int(self._in_start[cell]), int(self._in_end[cell]), int(self._bd_end[cell])
        x, y, z = p
        hit = self._x[m:e] * x + self._y[m:e] * y + self._z[m:e] * z >= self._cos[m:e]
        boundary = self.slots[m:e][hit]
        if s == m:
            return boundary
        return np.concatenate((self.slots[s:m], boundary))


def _classify_all(
    shape: GridShape, batch: CircleBatch, lon_half_deg: FloatArray
) -> tuple[IntArray, SlotArray, NDArray[np.bool_]]:
    parts = [
        _classify(shape, batch, lon_half_deg, slice(i, i + _CHUNK))
        for i in range(0, len(batch.slots), _CHUNK)
    ]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.bool_)
    keys, slots, inside = zip(*parts, strict=True)
    return np.concatenate(keys), np.concatenate(slots), np.concatenate(inside)


def _classify(
    shape: GridShape, batch: CircleBatch, lon_half_deg: FloatArray, part: slice
) -> tuple[IntArray, SlotArray, NDArray[np.bool_]]:
    """Every (cell, circle) pair of one chunk of circles, as inside or boundary."""
    lat, lon = np.radians(batch.lat[part]), np.radians(batch.lon[part])
    ang = batch.radius_m[part] / EARTH_RADIUS_M
    half = np.radians(lon_half_deg[part]) + _MARGIN
    dlat = shape.dlat
    row_lo = np.floor((lat - ang - _MARGIN) / dlat).astype(np.int64)
    row_hi = np.floor((lat + ang + _MARGIN) / dlat).astype(np.int64)
    # The narrowest column in a circle's rows bounds how many columns any row can need.
    spans_equator = (row_lo < 0) & (row_hi >= 0)
    nearest = np.where(spans_equator, 0, np.where(row_lo >= 0, row_lo, row_hi))
    ncols = np.ceil(2 * half / shape.dlon(nearest)).astype(np.int64) + 2
    nrows = row_hi - row_lo + 1
    count = nrows * ncols
    which = np.repeat(np.arange(len(lat)), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    rows = row_lo[which] + k // ncols[which]
    # Per-row constants come from small tables over the rows this chunk spans.
    first = int(rows.min()) if len(rows) else 0
    table = np.arange(first, (int(rows.max()) if len(rows) else 0) + 1, dtype=np.int64)
    width = shape.dlon(table)[rows - first]
    cols = np.floor((lon[which] - half[which]) / width).astype(np.int64) + k % ncols[which]
    centre_lat, centre_lon = (rows + 0.5) * dlat, (cols + 0.5) * width
    centres = unit_vectors(np.degrees(centre_lat), np.degrees(centre_lon))
    circle = unit_vectors(batch.lat[part], batch.lon[part])[which]
    d = chord_angle(centres, circle)
    reach = shape.cell_radius(table)[rows - first]
    touching = d - reach <= ang[which] + _MARGIN
    inside = d + reach <= ang[which]
    keys = (rows + _ROW_BIAS) * _COL_SPAN + (cols + _COL_BIAS)
    return keys[touching], batch.slots[part][which[touching]], inside[touching]
