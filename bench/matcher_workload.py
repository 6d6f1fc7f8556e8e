"""bench/matcher.py's workloads: synthetic subscriptions (dense city, sparse cities), their
events, and the PostgreSQL the PostGIS baselines use."""

from __future__ import annotations

import gc
import os
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from connect311_bus.kafka import encode
from connect311_contracts.events import RequestOpened
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import Subscription

BOX = (27.60, 27.96, -82.85, -82.44)  # lat min, lat max, lon min, lon max: ~40 x 40 km


CONFIRMED = datetime(2024, 1, 1, tzinfo=UTC)


PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Workload:
    """Circles as arrays, shapes as subscriptions, events as points."""

    lat: np.ndarray
    lon: np.ndarray
    radius: np.ndarray
    shapes: list[dict[str, Any]]
    points: np.ndarray


def workload(
    n: int,
    n_events: int,
    seed: int,
    box: tuple[float, float, float, float] = BOX,
    radii: tuple[float, float] = (100.0, 5_000.0),
) -> Workload:
    """Dense: every circle in one city box, radii up to 5 km (~1.7 % of circles per event)."""
    rng = np.random.default_rng(seed)
    n_shapes = n // 100
    n_circles = n - 2 * n_shapes
    lat = rng.uniform(box[0], box[1], n_circles)
    lon = rng.uniform(box[2], box[3], n_circles)
    radius = rng.uniform(*radii, n_circles)
    shapes = [_area(rng, box) for _ in range(n_shapes)]
    shapes += [_corridor(rng, box) for _ in range(n_shapes)]
    margin = 0.02
    points = np.column_stack(
        (
            rng.uniform(box[0] + margin, box[1] - margin, n_events),
            rng.uniform(box[2] + margin, box[3] - margin, n_events),
        )
    )
    return Workload(lat, lon, radius, shapes, points)


PER_CITY = 10_000


def sparse_workload(n: int, n_events: int, seed: int) -> Workload:
    """Sparse: 10k subscriptions per city box (one city per 10k, across the US), radii
    100 m-1 km: a handful of matches per event at every size, as a real city sees."""
    cities = max(1, n // PER_CITY)
    parts = []
    for c in range(cities):
        south, west = 26.0 + 2.0 * (c // 10), -122.0 + 5.0 * (c % 10)
        box = (south, south + BOX[1] - BOX[0], west, west + BOX[3] - BOX[2])
        size = n // cities + (n % cities if c == 0 else 0)
        events = n_events // cities + (n_events % cities if c == 0 else 0)
        parts.append(workload(size, events, seed + c, box, (100.0, 1_000.0)))
    return Workload(
        np.concatenate([p.lat for p in parts]),
        np.concatenate([p.lon for p in parts]),
        np.concatenate([p.radius for p in parts]),
        [shape for p in parts for shape in p.shapes],
        np.random.default_rng(seed).permutation(np.concatenate([p.points for p in parts])),
    )


def _area(rng: np.random.Generator, box: tuple[float, float, float, float]) -> dict[str, Any]:
    lat, lon = rng.uniform(box[0], box[1]), rng.uniform(box[2], box[3])
    s = rng.uniform(0.002, 0.01)
    outer = [[lon - s, lat - s], [lon + s, lat - s], [lon + s, lat + s], [lon - s, lat + s]]
    h = s / 3
    hole = [[lon - h, lat - h], [lon + h, lat - h], [lon + h, lat + h], [lon - h, lat + h]]
    ring = [*outer, outer[0]]
    return {
        "kind": "area",
        "geometry": {"type": "Polygon", "coordinates": [ring, [*hole, hole[0]]]},
    }


def _corridor(rng: np.random.Generator, box: tuple[float, float, float, float]) -> dict[str, Any]:
    lat, lon = rng.uniform(box[0], box[1]), rng.uniform(box[2], box[3])
    pts = [(lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01)) for _ in range(3)]
    return {"kind": "corridor", "coordinates": pts, "width_m": float(rng.uniform(20, 200))}


def subscriptions(w: Workload) -> list[Subscription]:
    """One person per subscription (one email each, as residents are); every 4th labelled."""
    base = {"status": "active", "created_at": CONFIRMED}
    targets = [
        {"kind": "circle", "lat": float(a), "long": float(o), "radius_m": float(r)}
        for a, o, r in zip(w.lat, w.lon, w.radius, strict=True)
    ]
    targets += w.shapes
    subs = []
    for i, t in enumerate(targets):
        mine = {"subscription_id": f"s{i}", "email": f"resident{i}@example.org", "target": t}
        if i % 4 == 0:
            mine["label"] = "Home"
        subs.append(Subscription.model_validate({**base, **mine}))
        if len(targets) >= 200_000 and (i + 1) % 200_000 == 0:
            print(f"    {i + 1:,} of {len(targets):,} models built", flush=True)
    return subs


def model_bytes(subs: list[Subscription]) -> float:
    """Bytes per Subscription model (traced while re-validating a sample of them)."""
    sample = [s.model_dump() for s in subs[:2000]]
    gc.collect()
    tracemalloc.start()
    kept = [Subscription.model_validate(s) for s in sample]
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return size / max(1, len(kept))


def template_event() -> RequestOpened:
    request = ServiceRequest(
        service_request_id="bench:1",
        source="bench",
        source_request_id="1",
        status="open",
        raw_status="Open",
        lat=BOX[0],
        long=BOX[2],
        requested_datetime=datetime(2024, 6, 1, tzinfo=UTC),
    )
    return RequestOpened(request=request)


def event_values(w: Workload, seed: int) -> list[bytes]:
    """The request events as the matcher reads them off Kafka (a realistic request each)."""
    rng = np.random.default_rng(seed)
    values = []
    for i, (lat, lon) in enumerate(w.points):
        words = "Deep pothole in the right lane, about 40 cm across. " * int(rng.integers(1, 5))
        request = ServiceRequest(
            service_request_id=f"bench:{i}",
            source="bench",
            source_request_id=str(i),
            status="open",
            raw_status="Open",
            service_code="POTHOLE",
            service_name="Pothole",
            agency_responsible="Public Works",
            description=words.strip(),
            address=f"{100 + i % 900} 5th St N",
            lat=float(lat),
            long=float(lon),
            requested_datetime=datetime(2024, 6, 1, tzinfo=UTC),
        )
        values.append(encode(RequestOpened(request=request, trace_id=uuid.uuid4().hex)))
    return values
