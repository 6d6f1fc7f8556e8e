"""All active subscriptions, indexed so one point finds every place that contains it.

- circles: a cover grid snapshot (fast, immutable) plus a small R-tree "delta" of circles
  added since the last build; removed circles are masked by slot, so changes apply live and
  the grid is rebuilt off the matching path when the delta grows;
- areas and corridors: an R-tree of bounding boxes, then an exact check;
- follows: a dict by request id; city-wide feeds: filed by the filter value every event
  they hear of must carry (see `citywide_keys`), so an event looks at only its own feeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

import numpy as np
import shapely
from rtree import index as rtree_index

from connect311_contracts.notifications import recipient_key
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import (
    AreaTarget,
    CircleTarget,
    CityWideTarget,
    CorridorTarget,
    DepartmentDigestTarget,
    FollowTarget,
    Subscription,
    SubscriptionFilters,
    SubscriptionStatus,
)
from connect311_matcher.boxcells import BoxCells, corridor_box
from connect311_matcher.geodesy import EARTH_RADIUS_M, FloatArray, unit_vector
from connect311_matcher.grid import CircleBatch, CoverGrid, GridShape, SlotArray, griddable
from connect311_matcher.segments import SegmentIndex
from connect311_matcher.targets import Compiled, compile_subscription

_EMPTY = np.empty(0, dtype=np.int32)

CityKey = tuple[str, str | None]
_UNFILED: CityKey = ("any", None)


def citywide_keys(filters: SubscriptionFilters | None) -> list[CityKey]:
    """Where a city-wide feed is filed: under each value of one filter it has.

    Filters narrow together (all of them must pass), so an event a feed hears of carries
    one of that filter's values: looking up the event's own category, agency and dataset
    finds every feed that could hear of it, and no other. Categories first (the narrowest),
    then agencies, then datasets. Every city-wide feed has one of them (the contract says
    so); one without would be filed where every event looks.

    Scanning every feed instead cost ~4 us per feed per event: 11,100 feeds held made each
    event take 50 ms to match (bench/e2e.py), whichever feed it was for.
    """
    f = filters
    if f is not None and f.service_codes:
        return [("service_code", code) for code in f.service_codes]
    if f is not None and f.agencies:
        return [("agency", agency) for agency in f.agencies]
    if f is not None and f.datasets:
        return [("dataset", dataset) for dataset in f.datasets]
    return [_UNFILED]


def request_keys(request: ServiceRequest) -> tuple[CityKey, ...]:
    """The city-wide filings an event for this request looks in."""
    return (
        ("service_code", request.service_code),
        ("agency", request.agency_responsible),
        ("dataset", request.dataset),
        _UNFILED,
    )


@dataclass
class _Slots:
    """Per-slot arrays (grown by doubling) for vectorized rules and grid builds."""

    alive: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.bool_))
    confirmed_ts: np.ndarray = field(default_factory=lambda: np.zeros(1024))
    filtered: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.bool_))
    gridded: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.bool_))
    lat: np.ndarray = field(default_factory=lambda: np.zeros(1024))
    lon: np.ndarray = field(default_factory=lambda: np.zeros(1024))
    radius_m: np.ndarray = field(default_factory=lambda: np.zeros(1024))
    lon_half: np.ndarray = field(default_factory=lambda: np.zeros(1024))
    # A circle's centre as a unit vector (Compiled.unit), in rows: a dense event's distances
    # read 16k of them in one gather instead of chasing 16k tuples of floats.
    unit: np.ndarray = field(default_factory=lambda: np.zeros((1024, 3)))
    # recipient_key of the owner's address, so grouping matches by person parses nothing.
    recipient: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype="S32"))

    def ensure(self, slot: int) -> None:
        """Grow every array so `slot` fits."""
        size = len(self.alive)
        if slot < size:
            return
        new = max(slot + 1, size * 2)
        for name in self.__dataclass_fields__:
            old = getattr(self, name)
            grown = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
            grown[:size] = old
            setattr(self, name, grown)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(getattr(self, name).nbytes for name in self.__dataclass_fields__)


class SubscriptionIndex:
    """Active subscriptions by id, with spatial, follow and city-wide lookups."""

    def __init__(self, cell_m: float = 500.0, min_delta: int = 2_000, delta_ratio: float = 0.05):
        self.shape = GridShape(cell_m)
        self.min_delta, self.delta_ratio = min_delta, delta_ratio
        self._by_id: dict[str, Compiled] = {}
        self._by_slot: dict[int, Compiled] = {}
        self._next_slot = 0
        self.slots = _Slots()
        self._grid: CoverGrid | None = None
        self._grid_upto = 0
        self._grid_dead = 0
        self._grid_circles = 0
        self._counts = dict.fromkeys(("circle", "area", "corridor", "follow", "citywide"), 0)
        self._delta = rtree_index.Index()
        self._delta_boxes: dict[int, tuple[float, float, float, float]] = {}
        self._ungridded: dict[int, Compiled] = {}
        self._shapes = rtree_index.Index()
        self._segments = SegmentIndex()
        # Asked before either R-tree: most events lie in no shape's box (see boxcells.py).
        self._area_cells, self._corridor_cells = BoxCells(), BoxCells()
        self._follows: dict[str, set[int]] = {}
        self._citywide: dict[CityKey, set[int]] = {}
        self.bulk_loading = False
        self.latest_confirmed = float("-inf")  # an upper bound: never lowered on removal
        self.filtered_count = 0
        self._raw_bytes = 0

    # ---- changes -------------------------------------------------------------------------

    def upsert(self, sub: Subscription) -> Compiled | None:
        """Hold the new state of a subscription (only ACTIVE ones are held); None if not held.

        Raises UnusableGeometry for an area that cannot be read (the old state is dropped).
        """
        self.remove(sub.subscription_id)
        if sub.status is not SubscriptionStatus.ACTIVE:
            return None
        if sub.target.kind == "department_digest":
            return None  # matches no event: the map API sends it once a day
        compiled = compile_subscription(self._next_slot, sub)
        self._next_slot += 1
        self._add(compiled, sub)
        return compiled

    def remove(self, subscription_id: str) -> bool:
        """Forget a subscription; True if it was held."""
        compiled = self._by_id.pop(subscription_id, None)
        if compiled is None:
            return False
        slot = compiled.slot
        del self._by_slot[slot]
        self._counts[compiled.kind] -= 1
        self.slots.alive[slot] = False
        self.filtered_count -= compiled.has_filters
        self._raw_bytes -= len(compiled.raw)
        kind = compiled.kind
        if kind == "circle":
            self._remove_circle(compiled)
        elif kind == "area":
            assert compiled.bbox is not None
            self._shapes.delete(slot, compiled.bbox)
            self._area_cells.remove(slot)
        elif kind == "corridor":
            self._segments.remove(slot)
            self._corridor_cells.remove(slot)
        elif kind == "follow":
            request_id = compiled.follows or ""
            followed = self._follows.get(request_id, set())
            followed.discard(slot)
            if not followed:
                self._follows.pop(request_id, None)
        else:
            for key in citywide_keys(compiled.filters):
                filed = self._citywide.get(key, set())
                filed.discard(slot)
                if not filed:
                    self._citywide.pop(key, None)
        return True

    def _add(self, c: Compiled, sub: Subscription) -> None:
        slot = c.slot
        self._by_id[c.subscription_id] = c
        self._by_slot[slot] = c
        self._counts[c.kind] += 1
        s = self.slots
        s.ensure(slot)
        s.alive[slot], s.confirmed_ts[slot], s.filtered[slot] = True, c.confirmed_ts, c.has_filters
        s.recipient[slot] = recipient_key(sub.email).encode()
        self.latest_confirmed = max(self.latest_confirmed, c.confirmed_ts)
        self.filtered_count += c.has_filters
        self._raw_bytes += len(c.raw)
        match sub.target:  # c.kind is the target's kind; matching narrows the target's type
            case CircleTarget() as circle:
                self._add_circle(c, circle)
            case AreaTarget():
                assert c.bbox is not None
                self._shapes.insert(slot, c.bbox)
                self._area_cells.add(slot, c.bbox)
            case CorridorTarget(coordinates=coordinates, width_m=width_m):
                points = np.asarray(coordinates, dtype=np.float64)
                self._segments.add(slot, points, width_m)
                self._corridor_cells.add(slot, corridor_box(points, width_m))
            case FollowTarget():
                self._follows.setdefault(c.follows or "", set()).add(slot)
            case CityWideTarget():
                for key in citywide_keys(c.filters):
                    self._citywide.setdefault(key, set()).add(slot)
            case DepartmentDigestTarget():
                raise ValueError("a department digest is never indexed (see upsert)")
            case _:
                assert_never(sub.target)

    def _add_circle(self, c: Compiled, target: CircleTarget) -> None:
        lat, lon, radius = target.lat, target.long, target.radius_m
        s, slot = self.slots, c.slot
        s.lat[slot], s.lon[slot], s.radius_m[slot], s.lon_half[slot] = (
            lat,
            lon,
            radius,
            c.lon_half_deg,
        )
        s.unit[slot] = c.unit
        arrays = (np.array([lat]), np.array([lon]), np.array([radius]), np.array([c.lon_half_deg]))
        ok = bool(griddable(*arrays)[0])
        s.gridded[slot] = ok
        if not ok:
            self._ungridded[slot] = c
        elif not self.bulk_loading:
            assert c.bbox is not None
            self._delta.insert(slot, c.bbox)
            self._delta_boxes[slot] = c.bbox

    def _remove_circle(self, c: Compiled) -> None:
        slot = c.slot
        self._ungridded.pop(slot, None)
        box = self._delta_boxes.pop(slot, None)
        if box is not None:
            self._delta.delete(slot, box)
        elif self._grid is not None and slot < self._grid_upto:
            self._grid_dead += 1

    # ---- grid rebuilds (the build itself is pure and may run in a thread) --------------------

    def rebuild_due(self) -> bool:
        """True when the circles outside the grid are many enough to rebuild it."""
        if self.bulk_loading:
            return False
        pending = len(self._delta_boxes) + self._grid_dead
        return pending > max(self.min_delta, self.delta_ratio * self._grid_circles)

    def grid_input(self) -> tuple[CircleBatch, FloatArray, int]:
        """A copy of every live griddable circle, and the slot bound it covers."""
        upto = self._next_slot
        s = self.slots
        slots = np.flatnonzero(s.alive[:upto] & s.gridded[:upto]).astype(np.int32)
        batch = CircleBatch(slots, s.lat[slots], s.lon[slots], s.radius_m[slots])
        return batch, s.lon_half[slots], upto

    def build_grid(self, batch: CircleBatch, lon_half: FloatArray) -> CoverGrid:
        """Build a cover grid (pure; safe to run in a worker thread or process)."""
        return CoverGrid(self.shape, batch, lon_half)

    def install_grid(self, grid: CoverGrid, batch: CircleBatch, upto: int) -> None:
        """Swap in a grid built from `grid_input()`; circles added since stay in the delta."""
        self._grid, self._grid_upto, self._grid_circles = grid, upto, len(batch.slots)
        self._grid_dead = int((~self.slots.alive[batch.slots]).sum())
        # The few circles added during the build stay in a fresh delta; deleting the many
        # that moved into the grid one by one would hold the GIL for about a second at 1M.
        kept = {slot: box for slot, box in self._delta_boxes.items() if slot >= upto}
        self._delta, self._delta_boxes = _rtree_of(kept), kept
        self.bulk_loading = False

    def rebuild_now(self) -> None:
        """Build and install a grid synchronously (tests, benchmarks, start-up)."""
        batch, half, upto = self.grid_input()
        self.install_grid(self.build_grid(batch, half), batch, upto)

    # ---- lookups ---------------------------------------------------------------------------

    def circles_at(self, lat: float, lon: float) -> SlotArray:
        """Slots of every held circle containing the point."""
        p = unit_vector(lat, lon)
        parts: list[SlotArray] = []
        if self._grid is not None:
            found = self._grid.query(lat, lon, p)
            if self._grid_dead and len(found):
                found = found[self.slots.alive[found]]
            parts.append(found)
        if self._delta_boxes:
            near = self._delta.intersection_v(  # type: ignore[no-untyped-call]
                np.array([[lon, lat]]), np.array([[lon, lat]])
            )[0]
            parts.append(self._exact_circles([self._by_slot[int(i)] for i in near], p))
        if self._ungridded:
            parts.append(self._exact_circles(list(self._ungridded.values()), p))
        if not parts:
            return _EMPTY
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @staticmethod
    def _exact_circles(circles: list[Compiled], p: tuple[float, float, float]) -> SlotArray:
        if not circles:
            return _EMPTY
        units = np.array([c.unit for c in circles])
        cos_r = np.array([c.cos_r for c in circles])
        slots = np.array([c.slot for c in circles], dtype=np.int32)
        hit: SlotArray = slots[units @ np.asarray(p) >= cos_r]
        return hit

    def shapes_at(self, lat: float, lon: float) -> list[tuple[Compiled, float | None]]:
        """Areas containing the point and corridors within their width, with distances."""
        found: list[tuple[Compiled, float | None]] = []
        if self._counts["area"] and self._area_cells.may_hold(lat, lon):
            for slot in self._shapes.intersection((lon, lat, lon, lat)):
                c = self._by_slot[slot]
                if shapely.intersects_xy(c.area, lon, lat):
                    found.append((c, None))
        if self._counts["corridor"] and self._corridor_cells.may_hold(lat, lon):
            p = np.asarray(unit_vector(lat, lon))
            for slot, d in self._segments.near(lat, lon, p).items():
                found.append((self._by_slot[slot], d))
        return found

    def followers(self, service_request_id: str) -> list[Compiled]:
        """Follow subscriptions of one request."""
        return [self._by_slot[s] for s in self._follows.get(service_request_id, ())]

    def citywide(self, request: ServiceRequest) -> list[Compiled]:
        """The city-wide subscriptions that could hear of this request (filters still to
        check), oldest first."""
        found: set[int] = set()
        for key in request_keys(request):
            found.update(self._citywide.get(key, ()))
        return [self._by_slot[s] for s in sorted(found)]

    def get(self, slot: int) -> Compiled:
        """The subscription held in a slot."""
        return self._by_slot[slot]

    def recipient(self, slot: int) -> bytes:
        """The recipient key (contracts' recipient_key, as bytes) of a slot's owner."""
        return bytes(self.slots.recipient[slot])

    def recipients(self, slots: SlotArray) -> list[bytes]:
        """The recipient keys of many slots' owners."""
        keys: list[bytes] = self.slots.recipient[slots].tolist()
        return keys

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._by_id

    def counts(self) -> dict[str, int]:
        """How many subscriptions are held, by target kind."""
        return dict(self._counts)

    def index_bytes(self) -> int:
        """Bytes of the index's arrays (grid, segments, per-slot) and the subscriptions' JSON."""
        grid = self._grid.nbytes if self._grid else 0
        return self.slots.nbytes + grid + self._segments.nbytes + self._raw_bytes


def _rtree_of(boxes: dict[int, tuple[float, float, float, float]]) -> rtree_index.Index:
    """An R-tree holding these boxes (bulk-loaded)."""
    if not boxes:
        return rtree_index.Index()
    return rtree_index.Index((slot, box, None) for slot, box in boxes.items())


def circle_distances_m(units: FloatArray, lat: float, lon: float) -> list[float]:
    """Distances in metres from circles' centres (unit vectors, n x 3) to a point.

    geodesy.chord_angle's arithmetic, step for step (np.linalg.norm is sqrt(add.reduce(x*x))),
    so every distance is the same float, without norm's checks: ~7 of a sparse event's
    ~15 us here went to numpy's Python layer on arrays of a few rows.
    """
    x = units - np.array(unit_vector(lat, lon))
    chord = np.sqrt(np.add.reduce(x * x, axis=-1))
    away = 2.0 * np.arcsin(np.minimum(chord / 2.0, 1.0)) * EARTH_RADIUS_M
    distances: list[float] = away.tolist()
    return distances
