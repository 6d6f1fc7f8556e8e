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
_ROW_WIDTHS: dict[tuple[float, int], float] = {}


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
        width = _ROW_WIDTHS.get((self.cell_m, row))
        if width is None:  # same numpy arithmetic as the build, cached per row
            width = float(self.dlon(np.array([row], dtype=np.int64))[0])
            _ROW_WIDTHS[(self.cell_m, row)] = width
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
    """An immutable cover grid, built once from a batch of circles (sorted by slot)."""

    def __init__(self, shape: GridShape, batch: CircleBatch, lon_half_deg: FloatArray) -> None:
        self.shape = shape
        keys, slots, inside = _classify_all(shape, batch, lon_half_deg)
        self.cell_keys = np.unique(keys)
        in_keys, self._in_slots, self._in_off = _group(self.cell_keys, keys[inside], slots[inside])
        bd_keys, self._bd_slots, self._bd_off = _group(
            self.cell_keys, keys[~inside], slots[~inside]
        )
        del in_keys, bd_keys
        # Boundary checks read inline rows (x, y, z, cos r): one contiguous block per cell.
        pos = np.searchsorted(batch.slots, self._bd_slots)
        self._bd_rows = np.empty((len(pos), 4))
        self._bd_rows[:, :3] = unit_vectors(batch.lat, batch.lon)[pos]
        self._bd_rows[:, 3] = np.cos(batch.radius_m / EARTH_RADIUS_M)[pos]
        self.inside_entries = len(self._in_slots)
        self.boundary_entries = len(self._bd_slots)

    @property
    def nbytes(self) -> int:
        """Bytes held by the grid's arrays."""
        arrays = (self._in_slots, self._in_off, self._bd_slots, self._bd_off, self._bd_rows)
        return sum(a.nbytes for a in arrays) + self.cell_keys.nbytes

    def _cell(self, lat_deg: float, lon_deg: float) -> int | None:
        """The row of the point's cell in the CSR arrays, or None for an empty cell."""
        # A binary search over the sorted keys: ~0.5 us more than a dict lookup, but no
        # 100-byte-per-cell dict (about 94 MB for 1M circles) to build under the GIL.
        key = self.shape.key_of(lat_deg, lon_deg)
        cell = int(self.cell_keys.searchsorted(key))
        if cell < len(self.cell_keys) and self.cell_keys[cell] == key:
            return cell
        return None

    def bytes_read(self, lat_deg: float, lon_deg: float) -> int:
        """Bytes a query at this point reads from the grid (for the bandwidth bound)."""
        cell = self._cell(lat_deg, lon_deg)
        if cell is None:
            return 0
        n_in = int(self._in_off[cell + 1] - self._in_off[cell])
        n_bd = int(self._bd_off[cell + 1] - self._bd_off[cell])
        return 4 * n_in + (4 + 32) * n_bd

    def query(self, lat_deg: float, lon_deg: float, p: tuple[float, float, float]) -> SlotArray:
        """Slots of every gridded circle that contains the point (unit vector p)."""
        cell = self._cell(lat_deg, lon_deg)
        if cell is None:
            return np.empty(0, dtype=np.int32)
        b0, b1 = int(self._bd_off[cell]), int(self._bd_off[cell + 1])
        # One pass over the contiguous rows: x*px + y*py + z*pz - cos r >= 0.
        hit = self._bd_rows[b0:b1] @ np.array((p[0], p[1], p[2], -1.0)) >= 0.0
        boundary: SlotArray = self._bd_slots[b0:b1][hit]
        i0, i1 = int(self._in_off[cell]), int(self._in_off[cell + 1])
        if i0 == i1:
            return boundary
        return np.concatenate((self._in_slots[i0:i1], boundary))


def _group(
    cells: IntArray, keys: IntArray, slots: SlotArray
) -> tuple[IntArray, SlotArray, IntArray]:
    """Entries sorted by cell, and each cell's [start, end) offsets (CSR layout)."""
    order = np.argsort(keys, kind="stable")
    keys, slots = keys[order], slots[order].astype(np.int32)
    offsets = np.searchsorted(keys, np.append(cells, np.iinfo(np.int64).max)).astype(np.int64)
    offsets[-1] = len(keys)
    return keys, slots, offsets


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
    at = rows - first
    widths = shape.dlon(table)
    width = widths[at]
    cols = np.floor((lon[which] - half[which]) / width).astype(np.int64) + k % ncols[which]
    centre_lat = (table + 0.5) * dlat
    # cos of the centre-to-centre angle (spherical law of cosines; its rounding, ~1e-8 rad
    # near zero, is far inside the 0.5 m margin).
    cos_d = np.sin(lat)[which] * np.sin(centre_lat)[at] + np.cos(lat)[which] * np.cos(centre_lat)[
        at
    ] * np.cos((cols + 0.5) * width - lon[which])
    reach = shape.cell_radius(table)[at]
    a = ang[which]
    touching = cos_d >= np.cos(np.minimum(a + reach + _MARGIN, np.pi))
    inside = (a >= reach) & (cos_d >= np.cos(np.maximum(a - reach, 0.0)))
    keys = (rows + _ROW_BIAS) * _COL_SPAN + (cols + _COL_BIAS)
    return keys[touching], batch.slots[part][which[touching]], inside[touching]
