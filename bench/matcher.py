"""Matcher benchmark: the path the service runs per event, against PostGIS, in one run.

For each size and workload, every design handles the same request events, in turns (A B C D
A B C D ...) so a busy machine weighs on each alike, keeping its per-event output:
- new:      what the service runs (commands.encoded_commands): decode the event, match, write
            each notification command's Kafka key and JSON value;
- today:    the design before issue 15 (a Match and a Subscription model per hit, a
            SubscriberMatched per command, encode), on a tenth of the events;
- lookup:   the index lookup alone (what earlier figures timed), for scale;
- postgis:  PostgreSQL + PostGIS returning the same fields per match (subscription,
            distance, radius or width, label): one prepared query per event, GiST indexes.
Workloads: dense (one 40 x 40 km city, circles 100 m-5 km, 1 % areas with holes, 1 %
corridors: ~1.7 % of circles match each event) and sparse (10k subscriptions per city box,
radii 100 m-1 km: a handful of matches per event at every size). One email per subscription.
Every design must name the same subscriptions per event (checked; 1 cm edge cases excepted).
With --lookup, also the index lookup against an R-tree and brute force; with --process, the
whole matcher process (consume, match, produce) on a private local broker.

    uv run python bench/matcher.py                 # 10k and 100k subscriptions
    uv run python bench/matcher.py --million       # also 1M (slow to build: minutes)
    uv run python bench/matcher.py --quick         # CI: 2,000 subscriptions, 40 events
    uv run python bench/matcher.py --lookup        # also the lookup-only comparison
    uv run python bench/matcher.py --process       # also the whole process on the broker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from machine_info import machine
from rtree import index as rtree_index

from connect311_bus.kafka import decode, encode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER, RequestOpened
from connect311_contracts.notifications import recipient_key
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import Subscription
from connect311_matcher.commands import encoded_commands
from connect311_matcher.geodesy import EARTH_RADIUS_M, unit_vector, unit_vectors
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import eligible_slots, find_matches, grouped_notifications
from connect311_matcher.targets import circle_bbox

BOX = (27.60, 27.96, -82.85, -82.44)  # lat min, lat max, lon min, lon max: ~40 x 40 km
CONFIRMED = datetime(2024, 1, 1, tzinfo=UTC)
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# ---- workload ---------------------------------------------------------------------------


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


# ---- measurement helpers ----------------------------------------------------------------


def memory_bandwidth() -> float:
    """Read bandwidth in bytes/s (best of several sums over a 400 MB array)."""
    a = np.ones(50_000_000)
    best = min(_timed(a.sum) for _ in range(5))
    return a.nbytes / best


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@dataclass
class Row:
    size: int
    method: str
    build_s: float
    mem_bytes: float
    events: int
    seconds: float
    matches: int
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def eps(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def mps(self) -> float:
        return self.matches / self.seconds if self.seconds else 0.0


# ---- the methods ------------------------------------------------------------------------


def run_core(
    n: int, w: Workload, subs: list[Subscription], cell_m: float, sample: np.ndarray
) -> tuple[Row, list[set[int]], SubscriptionIndex]:
    gc.collect()
    # Memory of everything the index holds for the subscriptions (compiled entries, per-slot
    # arrays, grid, shapes), traced by Python and numpy; the models themselves are counted apart.
    tracemalloc.start()
    index = SubscriptionIndex(cell_m=cell_m)
    index.bulk_loading = True
    t = time.perf_counter()
    for sub in subs:
        index.upsert(sub)
    load_s = time.perf_counter() - t
    index.rebuild_now()
    mem = float(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    t = time.perf_counter()
    index.rebuild_now()  # timed again without tracing
    build_s = time.perf_counter() - t
    ev = template_event()
    matches = 0
    t = time.perf_counter()
    for lat, lon in w.points:  # a set per event, as every baseline builds
        found_here = set(eligible_slots(index, index.circles_at(lat, lon), ev).tolist())
        matches += len(found_here) + len(index.shapes_at(lat, lon))
    seconds = time.perf_counter() - t
    found = [set(index.circles_at(lat, lon).tolist()) for lat, lon in w.points[sample]]
    read = np.mean([index._grid.bytes_read(a, o) for a, o in w.points[:2000]])  # type: ignore[union-attr]
    row = Row(n, f"core {cell_m:g} m", build_s, mem, len(w.points), seconds, matches)
    row.extra = {"load_s": load_s, "index_bytes": index.index_bytes(), "bytes_read": float(read)}
    return row, found, index


def run_rtree(n: int, w: Workload, sample: np.ndarray) -> tuple[Row, list[set[int]]]:
    t = time.perf_counter()
    boxes = (
        (i, circle_bbox(float(a), float(o), float(r))[0], None)
        for i, (a, o, r) in enumerate(zip(w.lat, w.lon, w.radius, strict=True))
    )
    tree = rtree_index.Index(boxes)
    units = unit_vectors(w.lat, w.lon)
    cos_r = np.cos(w.radius / EARTH_RADIUS_M)
    build_s = time.perf_counter() - t
    mem = float("nan")  # libspatialindex's C++ heap is not traced; RSS deltas were noise
    found, matches = [], 0
    t = time.perf_counter()
    for lat, lon in w.points[sample]:
        cand = np.fromiter(tree.intersection((lon, lat, lon, lat)), dtype=np.int64)
        hit = cand[units[cand] @ np.asarray(unit_vector(lat, lon)) >= cos_r[cand]]
        matches += len(hit)
        found.append(set(hit.tolist()))
    return Row(
        n, "rtree (naive)", build_s, mem, len(sample), time.perf_counter() - t, matches
    ), found


def run_numpy(n: int, w: Workload, sample: np.ndarray) -> tuple[Row, list[set[int]]]:
    t = time.perf_counter()
    units = unit_vectors(w.lat, w.lon)
    cos_r = np.cos(w.radius / EARTH_RADIUS_M)
    build_s = time.perf_counter() - t
    found, matches = [], 0
    t = time.perf_counter()
    for lat, lon in w.points[sample]:
        hit = np.flatnonzero(units @ np.asarray(unit_vector(lat, lon)) >= cos_r)
        matches += len(hit)
        found.append(set(hit.tolist()))
    mem = units.nbytes + cos_r.nbytes
    return Row(n, "numpy brute", build_s, mem, len(sample), time.perf_counter() - t, matches), found


def run_postgis(n: int, w: Workload, sample: np.ndarray) -> tuple[Row | None, list[set[int]], str]:
    try:
        import psycopg
    except ImportError:
        return None, [], "psycopg is not installed"
    name = f"c311_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        return None, [], f"PostgreSQL unreachable at {PG_URL}: {exc}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(PG_URL.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as db:
            try:
                db.execute("CREATE EXTENSION postgis")
            except psycopg.Error as exc:
                hint = "install it: apt-get install postgresql-15-postgis-3"
                return None, [], f"PostGIS missing ({exc}); {hint}"
            return (*_postgis_rows(db, n, w, sample), "")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _postgis_rows(db: Any, n: int, w: Workload, sample: np.ndarray) -> tuple[Row, list[set[int]]]:
    t = time.perf_counter()
    db.execute("CREATE TABLE circles (id int, geog geography(Point, 4326), radius_m float8)")
    with db.cursor().copy("COPY circles (id, geog, radius_m) FROM STDIN") as copy:
        for i, (a, o, r) in enumerate(zip(w.lat, w.lon, w.radius, strict=True)):
            copy.write_row((i, f"SRID=4326;POINT({float(o)!r} {float(a)!r})", float(r)))
    db.execute("CREATE INDEX ON circles USING gist (geog)")
    db.execute("ANALYZE circles")
    build_s = time.perf_counter() - t
    size = db.execute("SELECT pg_total_relation_size('circles')").fetchone()[0]
    # The index narrows by the largest radius, then the exact spherical test per row.
    query = (
        "SELECT id FROM circles WHERE ST_DWithin(geog, ST_MakePoint(%(o)s, %(a)s)::geography,"
        " 5000, false) AND ST_DWithin(geog, ST_MakePoint(%(o)s, %(a)s)::geography, radius_m, false)"
    )
    found, matches = [], 0
    t = time.perf_counter()
    for lat, lon in w.points[sample]:
        ids = {r[0] for r in db.execute(query, {"a": float(lat), "o": float(lon)}, prepare=True)}
        matches += len(ids)
        found.append(ids)
    return Row(n, "postgis", build_s, size, len(sample), time.perf_counter() - t, matches), found


# ---- agreement --------------------------------------------------------------------------


def disagreements(
    w: Workload, sample: np.ndarray, truth: list[set[int]], other: list[set[int]]
) -> tuple[int, int]:
    """(differences, differences more than 1 cm from a circle's edge) over the sample."""
    diff = far = 0
    for (lat, lon), a, b in zip(w.points[sample], truth, other, strict=True):
        for i in a ^ b:
            diff += 1
            p, c = np.asarray(unit_vector(lat, lon)), np.asarray(unit_vector(w.lat[i], w.lon[i]))
            d = 2 * np.arcsin(min(1.0, np.linalg.norm(p - c) / 2)) * EARTH_RADIUS_M
            far += abs(d - w.radius[i]) > 0.01
    return diff, far


# ---- the path the service runs: event in, commands out ------------------------------------


@dataclass
class Path:
    """One design's run of the per-event path over some events."""

    method: str
    events: int = 0
    seconds: float = 0.0
    commands: int = 0
    matches: int = 0
    outputs: dict[int, set[str]] = field(default_factory=dict)  # subscription ids per event
    loads: list[float] = field(default_factory=list)

    @property
    def eps(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def load(self) -> float:
        return float(np.mean(self.loads)) if self.loads else float("nan")


@dataclass
class Design:
    """How one design handles an event (`one`), what its output names (`digest`: commands,
    matches, subscription ids) and the share of the events it runs (the slow one: fewer)."""

    method: str
    one: Callable[[bytes], Any]
    digest: Callable[[Any], tuple[int, int, set[str]]]
    share: float = 1.0


def race(designs: list[Design], values: list[bytes], rounds: int = 10) -> list[Path]:
    """Every design in turn on each round's events (A B C A B C ...), so a machine whose load
    drifts (other work on it) weighs on each alike. Every output is kept; the clock runs only
    while they are made, and what they name is worked out between rounds (at 1M dense one
    event makes ~17k commands: holding every round's would not fit)."""
    for design in designs:  # warm-up: first-use costs (serializer set-up, caches) untimed
        design.one(values[0])
    paths = [Path(d.method) for d in designs]
    size = max(1, -(-len(values) // rounds))
    for start in range(0, len(values), size):
        chunk = list(enumerate(values[start : start + size], start=start))
        for design, path in zip(designs, paths, strict=True):
            mine = chunk[: max(1, round(len(chunk) * design.share))]
            path.loads.append(os.getloadavg()[0])
            t = time.perf_counter()
            kept = [design.one(value) for _, value in mine]
            path.seconds += time.perf_counter() - t
            path.events += len(mine)
            for (i, _), output in zip(mine, kept, strict=True):
                commands, matches, ids = design.digest(output)
                path.commands += commands
                path.matches += matches
                path.outputs[i] = ids
    return paths


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


def path_today(index: SubscriptionIndex) -> Design:
    """The design before issue 15: a Match model per hit, a SubscriberMatched per command."""

    def one(value: bytes) -> Any:
        event = decode(REQUEST_EVENT_ADAPTER, value)
        grouped = grouped_notifications(find_matches(index, event), event)
        return grouped, [
            (recipient_key(c.subscription.email).encode(), encode(c)) for _, c in grouped
        ]

    def digest(output: Any) -> tuple[int, int, set[str]]:
        grouped, out = output
        ids = {m.compiled.subscription_id for matches, _ in grouped for m in matches}
        return len(out), len(ids), ids

    return Design("today: models", one, digest, share=0.1)


def path_new(index: SubscriptionIndex) -> Design:
    """What the service runs now (commands.encoded_commands): plain hits, JSON written once."""

    def one(value: bytes) -> Any:
        return encoded_commands(index, decode(REQUEST_EVENT_ADAPTER, value))

    def digest(out: Any) -> tuple[int, int, set[str]]:
        commands = [json.loads(o.value) for o in out]
        ids = {
            a["subscription"]["subscription_id"] for c in commands for a in [c, *c.get("also", ())]
        }
        return len(out), sum(len(o.kinds) for o in out), ids

    return Design("new: encoded", one, digest)


def path_lookup(index: SubscriptionIndex) -> Design:
    """The index lookup alone (what the earlier figures timed): slots and shapes, no commands."""

    def one(value: bytes) -> Any:
        event = decode(REQUEST_EVENT_ADAPTER, value)
        r = event.request
        slots = eligible_slots(index, index.circles_at(r.lat, r.long), event)
        return set(slots.tolist()) | {c.slot for c, _ in index.shapes_at(r.lat, r.long)}

    def digest(found: Any) -> tuple[int, int, set[str]]:
        return 0, len(found), {index.get(slot).subscription_id for slot in found}

    return Design("lookup only", one, digest)


def path_postgis(db: Any, max_radius: float, max_width: float) -> Design:
    """PostGIS returning the same fields per match: which subscription, distance, radius or
    width and label (the rule text's inputs); one prepared query per event."""
    query = (
        "WITH p AS (SELECT ST_MakePoint(%(o)s, %(a)s)::geography AS g) "
        "SELECT c.id, ST_Distance(c.geog, p.g, false), c.radius_m, c.label FROM circles c, p"
        f" WHERE ST_DWithin(c.geog, p.g, {max_radius}, false)"
        " AND ST_DWithin(c.geog, p.g, c.radius_m, false) "
        "UNION ALL SELECT s.id, ST_Distance(s.geog, p.g, false), s.width_m, s.label"
        f" FROM shapes s, p WHERE ST_DWithin(s.geog, p.g, {max_width}, false)"
        " AND ST_DWithin(s.geog, p.g, s.width_m, false)"
    )

    def one(value: bytes) -> Any:
        r = decode(REQUEST_EVENT_ADAPTER, value).request
        return db.execute(query, {"a": r.lat, "o": r.long}, prepare=True).fetchall()

    def digest(rows: Any) -> tuple[int, int, set[str]]:
        return 0, len(rows), {f"s{row[0]}" for row in rows}

    return Design("postgis", one, digest)


def load_postgis(db: Any, w: Workload, labels: list[str | None]) -> float:
    """Circles and shapes (areas as polygons, corridors as lines) with GiST indexes; seconds."""
    t = time.perf_counter()
    db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    db.execute(
        "CREATE TABLE circles (id int, geog geography(Point, 4326), radius_m float8, label text)"
    )
    db.execute("CREATE TABLE shapes (id int, geog geography, width_m float8, label text)")
    n_circles = len(w.lat)
    with db.cursor().copy("COPY circles (id, geog, radius_m, label) FROM STDIN") as copy:
        for i, (a, o, r) in enumerate(zip(w.lat, w.lon, w.radius, strict=True)):
            copy.write_row((i, f"SRID=4326;POINT({float(o)!r} {float(a)!r})", float(r), labels[i]))
    with db.cursor().copy("COPY shapes (id, geog, width_m, label) FROM STDIN") as copy:
        for i, shape in enumerate(w.shapes, start=n_circles):
            copy.write_row((i, _shape_wkt(shape), float(shape.get("width_m", 0.0)), labels[i]))
    db.execute("CREATE INDEX ON circles USING gist (geog)")
    db.execute("CREATE INDEX ON shapes USING gist (geog)")
    db.execute("ANALYZE circles")
    db.execute("ANALYZE shapes")
    return time.perf_counter() - t


def _shape_wkt(shape: dict[str, Any]) -> str:
    if shape["kind"] == "corridor":
        line = ", ".join(f"{lon!r} {lat!r}" for lon, lat in shape["coordinates"])
        return f"SRID=4326;LINESTRING({line})"
    rings = ", ".join(
        "(" + ", ".join(f"{lon!r} {lat!r}" for lon, lat in ring) + ")"
        for ring in shape["geometry"]["coordinates"]
    )
    return f"SRID=4326;POLYGON({rings})"


@contextmanager
def postgis_database(skip: bool = False) -> Iterator[tuple[Any, str]]:
    """A fresh database with PostGIS, dropped after; (None, why) when there is none."""
    if skip:
        yield None, "skipped (--no-postgis)"
        return
    try:
        import psycopg
    except ImportError:
        yield None, "psycopg is not installed"
        return
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        yield None, f"PostgreSQL unreachable at {PG_URL}: {exc}"
        return
    name = f"c311_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(PG_URL.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as db:
            try:
                db.execute("CREATE EXTENSION postgis")
            except psycopg.Error as exc:
                yield None, f"PostGIS missing ({exc}); apt-get install postgresql-15-postgis-3"
                return
            yield db, ""
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def compare_paths(
    label: str, n: int, w: Workload, args: argparse.Namespace, seed: int
) -> list[tuple[str, int, Path]]:
    """Every design over the same events of one workload; rows for the table."""
    t = time.perf_counter()
    subs = subscriptions(w)
    print(f"  {len(subs):,} subscriptions built in {time.perf_counter() - t:.1f} s", flush=True)
    index = SubscriptionIndex()
    index.bulk_loading = True
    t = time.perf_counter()
    for i, sub in enumerate(subs):
        index.upsert(sub)
        if len(subs) >= 200_000 and (i + 1) % 200_000 == 0:
            print(f"    {i + 1:,} indexed", flush=True)
    index.rebuild_now()
    print(f"  index loaded and grid built in {time.perf_counter() - t:.1f} s", flush=True)
    labels = [sub.label for sub in subs]
    del subs  # the service holds no models: their objects would weigh on every GC pass
    gc.collect()
    gc.freeze()  # as the service does once caught up: the index stays out of full GC passes
    values = event_values(w, seed)
    designs = [path_new(index), path_today(index), path_lookup(index)]
    with postgis_database(args.no_postgis) as (db, why):
        if db is not None:
            built = load_postgis(db, w, labels)
            print(f"  postgis loaded and indexed in {built:.1f} s", flush=True)
            max_width = max((float(s.get("width_m", 0.0)) for s in w.shapes), default=0.0)
            designs.append(path_postgis(db, float(w.radius.max()), max_width))
        else:
            print(f"  postgis: {why}")
        runs = race(designs, values)
    for run in runs:
        print(f"  {run.method}: {run.eps:,.1f} events/s (load {run.load:.1f})", flush=True)
    new = runs[0]
    for run in runs[1:]:
        both = sorted(run.outputs)
        diff = sum(len(new.outputs[i] ^ run.outputs[i]) for i in both)
        edge = _edge_cases(
            w, [new.outputs[i] ^ run.outputs[i] for i in both], [values[i] for i in both]
        )
        verdict = "agree" if diff == edge else "DISAGREE"
        print(
            f"  new vs {run.method} on {len(both)} events: {verdict}"
            f" ({diff} differences, {edge} of them within 1 cm of a circle's edge)"
        )
    del index
    gc.unfreeze()
    gc.collect()
    return [(label, n, run) for run in runs]


def _edge_cases(w: Workload, differences: list[set[str]], values: list[bytes]) -> int:
    """Differences on a circle's edge (within 1 cm): either side is right there."""
    edge = 0
    for value, differing in zip(values, differences, strict=True):
        r = decode(REQUEST_EVENT_ADAPTER, value).request
        p = np.asarray(unit_vector(r.lat, r.long))
        for sid in differing:
            i = int(sid[1:])
            if i >= len(w.lat):
                continue
            c = np.asarray(unit_vector(w.lat[i], w.lon[i]))
            d = 2 * np.arcsin(min(1.0, float(np.linalg.norm(p - c)) / 2)) * EARTH_RADIUS_M
            edge += abs(d - w.radius[i]) <= 0.01
    return edge


def print_paths(rows: list[tuple[str, int, Path]]) -> None:
    head = (
        f"{'workload':<8} {'subs':>9} {'design':<15} {'events':>7} {'events/s':>10} "
        f"{'matches/ev':>10} {'cmds/ev':>8} {'us/match':>9} {'vs postgis':>10} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    pg = {(w, n): run.eps for w, n, run in rows if run.method == "postgis"}
    for w, n, run in rows:
        base = pg.get((w, n))
        ratio = f"{run.eps / base:,.1f}x" if base else "-"
        per_match = run.seconds / run.matches * 1e6 if run.matches else float("nan")
        events = max(1, run.events)
        print(
            f"{w:<8} {n:>9,} {run.method:<15} {run.events:>7,} {run.eps:>10,.1f} "
            f"{run.matches / events:>10,.1f} {run.commands / events:>8,.1f} "
            f"{per_match:>9.2f} {ratio:>10} {run.load:>5.1f}"
        )


# ---- the whole process on a local broker ------------------------------------------------


async def run_process(n_subs: int, n_events: int) -> None:
    from connect311_bus.kafka import ensure_topics
    from connect311_bus.kafka import producer as make_producer
    from connect311_contracts.settings import KafkaSettings
    from connect311_contracts.subscriptions import SubscriptionChanged
    from connect311_contracts.topics import TopicSpec
    from connect311_local.broker import running_broker
    from connect311_matcher.app import build_matcher
    from connect311_matcher.settings import MatcherSettings

    rng = np.random.default_rng(7)
    cities = np.column_stack((rng.uniform(26, 48, 100), rng.uniform(-122, -70, 100)))
    per_city = n_subs // len(cities)
    with running_broker() as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        tag = uuid.uuid4().hex[:6]
        events_t = TopicSpec(f"b.{tag}.events", 6, "id", "bench")
        subs_t = TopicSpec(f"b.{tag}.subs", 3, "id", "bench", compacted=True)
        notes_t = TopicSpec(f"b.{tag}.notes", 6, "id", "bench")
        await ensure_topics(kafka, [events_t, subs_t, notes_t])
        await ensure_topics(kafka)
        prod = make_producer(kafka, "bench", linger_ms=20, max_batch_size=1 << 20)
        await prod.start()
        t = time.perf_counter()
        futures = []
        for c, (clat, clon) in enumerate(cities):
            for j in range(per_city):
                sub = Subscription.model_validate(
                    {
                        "subscription_id": f"p{c}-{j}",
                        "email": f"u{c}-{j}@example.org",
                        "status": "active",
                        "created_at": CONFIRMED,
                        "target": {
                            "kind": "circle",
                            "lat": clat + rng.uniform(-0.18, 0.18),
                            "long": clon + rng.uniform(-0.2, 0.2),
                            "radius_m": rng.uniform(100, 1000),
                        },
                    }
                )
                value = encode(SubscriptionChanged(subscription=sub))
                futures.append(
                    await prod.send(subs_t.name, value, key=sub.subscription_id.encode())
                )
        await asyncio.gather(*futures)
        print(
            f"  produced {per_city * len(cities):,} subscriptions"
            f" in {time.perf_counter() - t:.1f} s"
        )
        t = time.perf_counter()
        futures = []
        for i in range(n_events):
            clat, clon = cities[i % len(cities)]
            req = ServiceRequest(
                service_request_id=f"bench:{i}",
                source="bench",
                source_request_id=str(i),
                status="open",
                raw_status="Open",
                lat=clat + rng.uniform(-0.15, 0.15),
                long=clon + rng.uniform(-0.17, 0.17),
                requested_datetime=datetime(2024, 6, 1, tzinfo=UTC),
            )
            value = encode(RequestOpened(request=req))
            futures.append(
                await prod.send(events_t.name, value, key=req.service_request_id.encode())
            )
        await asyncio.gather(*futures)
        await prod.stop()
        print(f"  produced {n_events:,} request events in {time.perf_counter() - t:.1f} s")

        settings = MatcherSettings(
            group_id=f"bench-{tag}",
            events_topic=events_t.name,
            subscriptions_topic=subs_t.name,
            notifications_topic=notes_t.name,
            create_topics=False,
        )
        matcher = build_matcher(settings, kafka)
        started = time.perf_counter()
        task = asyncio.create_task(matcher.run())
        await matcher.ready.wait()
        ready_s = time.perf_counter() - started
        count = matcher.metrics.events_in.labels("matched")
        while count._value.get() == 0:  # noqa: ASYNC110  # the group join comes first; time from the first event
            await asyncio.sleep(0.005)
        t = time.perf_counter()
        while count._value.get() < n_events:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # Wait until every offset is committed: all notifications acked by the broker.
        reader = _committed_reader(kafka, settings.group_id)
        await reader.start()
        from aiokafka import TopicPartition

        tps = [TopicPartition(events_t.name, p) for p in range(events_t.partitions)]
        while True:
            committed = [await reader.committed(tp) or 0 for tp in tps]
            if sum(committed) >= n_events:
                break
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - t
        await reader.stop()
        matcher.stop()
        await task
        notes = sum(
            s.value
            for m in matcher.metrics.matches_out.collect()
            for s in m.samples
            if s.name.endswith("_total")
        )
        print(
            f"  whole process: {len(matcher.index):,} subscriptions caught up in {ready_s:.1f} s; "
            f"{n_events:,} events in {seconds:.2f} s = {n_events / seconds:,.0f} events/s, "
            f"{notes:,.0f} notifications ({notes / n_events:.2f}/event, {notes / seconds:,.0f}/s)"
        )


def _committed_reader(kafka: Any, group: str) -> Any:
    from connect311_bus.kafka import consumer

    return consumer(kafka, group)


# ---- main -------------------------------------------------------------------------------


def _num(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"  # NaN: not measured


def print_table(rows: list[Row], bandwidth: float) -> None:
    head = (
        f"{'subs':>9} {'method':<15} {'build s':>8} {'MB':>8} {'B/sub':>7} {'events':>7} "
        f"{'events/s':>10} {'matches/ev':>10} {'matches/s':>12} {'vs postgis':>10}"
    )
    print(head)
    print("-" * len(head))
    pg = {r.size: r.mps for r in rows if r.method == "postgis"}
    for r in rows:
        ratio = f"{r.mps / pg[r.size]:.0f}x" if pg.get(r.size) else "-"
        print(
            f"{r.size:>9,} {r.method:<15} {r.build_s:>8.1f} {_num(r.mem_bytes / 1e6):>8} "
            f"{_num(r.mem_bytes / r.size):>7} {r.events:>7,} {r.eps:>10,.0f} "
            f"{r.matches / max(1, r.events):>10,.0f} {r.mps:>12,.0f} {ratio:>10}"
        )
    for r in rows:
        if "bytes_read" in r.extra:
            bound = bandwidth / max(1.0, r.extra["bytes_read"])
            floor = bandwidth / max(1.0, 4 * r.matches / r.events)
            print(
                f"{r.size:>9,} {r.method}: reads {r.extra['bytes_read'] / 1e3:,.0f} kB/event -> "
                f"bandwidth bound {bound:,.0f} events/s ({r.eps / bound:.0%} of it); "
                "4 B/match floor "
                f"{floor:,.0f} events/s ({r.eps / floor:.0%}); index arrays "
                f"{r.extra['index_bytes'] / r.size:,.0f} B/sub; load {r.extra['load_s']:.1f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10000,100000", help="comma-separated subscription counts"
    )
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 subscriptions")
    parser.add_argument("--workloads", default="dense,sparse", help="dense, sparse or both")
    parser.add_argument(
        "--path-events", type=int, default=300, help="events per design (today's: a tenth)"
    )
    parser.add_argument("--quick", action="store_true", help="CI: 2,000 subscriptions, 40 events")
    parser.add_argument("--lookup", action="store_true", help="also the index-lookup comparison")
    parser.add_argument("--events", type=int, default=100_000, help="lookup: events for the core")
    parser.add_argument("--sample", type=int, default=300, help="lookup: events for the baselines")
    parser.add_argument("--cells", default="500,1000", help="lookup: cover-grid cell sizes (m)")
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS baseline")
    parser.add_argument("--process", action="store_true", help="also run the whole process")
    parser.add_argument("--process-subs", type=int, default=100_000)
    parser.add_argument("--process-events", type=int, default=30_000)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.million, args.path_events = "2000", False, 40
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    print(f"machine: {machine(f'numpy {np.__version__}')}")
    print(
        "\nThe path the service runs, event in -> commands out (decode, match, write the"
        " commands),\ntoday's design and the new one on the same events, beside PostGIS"
        " returning the same fields\n(subscription, distance, radius or width, label)."
        " Every design keeps its per-event output.",
        flush=True,
    )
    paths: list[tuple[str, int, Path]] = []
    for n in sizes:
        for kind in args.workloads.split(","):
            print(f"\n== {kind}, {n:,} subscriptions ==", flush=True)
            make = workload if kind == "dense" else sparse_workload
            paths += compare_paths(kind, n, make(n, args.path_events, n), args, seed=n)
    print()
    print_paths(paths)
    print(f"machine at the end: {machine()}")
    if args.lookup:
        lookup_comparison(args, sizes)
    if args.process:
        print(
            f"\n== whole process on a private local broker, {args.process_subs:,} subscriptions =="
        )
        asyncio.run(run_process(args.process_subs, args.process_events))


def lookup_comparison(args: argparse.Namespace, sizes: list[int]) -> None:
    """The index lookup alone (dense workload) against an R-tree, brute force and PostGIS."""
    bandwidth = memory_bandwidth()
    print(f"\nmemory read bandwidth: {bandwidth / 1e9:.1f} GB/s (numpy sum over 400 MB)")
    rows: list[Row] = []
    for n in sizes:
        print(f"\n== lookup only, {n:,} subscriptions ==", flush=True)
        w = workload(n, args.events, seed=n)
        sample = np.random.default_rng(1).choice(
            len(w.points), size=min(args.sample, len(w.points)), replace=False
        )
        t = time.perf_counter()
        subs = subscriptions(w)
        per_model = model_bytes(subs)
        print(
            f"  built {len(subs):,} Subscription models in {time.perf_counter() - t:.1f} s"
            f" ({per_model:,.0f} B each; the index keeps their JSON instead)",
            flush=True,
        )
        truth_row, truth = run_numpy(n, w, sample)
        results: dict[str, list[set[int]]] = {}
        for cell in (float(c) for c in args.cells.split(",")):
            row, found, index = run_core(n, w, subs, cell, sample)
            rows.append(row)
            results[row.method] = found
            print(f"  {row.method}: {row.eps:,.0f} events/s, build {row.build_s:.1f} s", flush=True)
            del index
            gc.collect()
        row, found = run_rtree(n, w, sample)
        rows.append(row)
        results[row.method] = found
        print(f"  rtree: {row.eps:,.0f} events/s", flush=True)
        rows.append(truth_row)
        print(f"  numpy: {truth_row.eps:,.0f} events/s", flush=True)
        if not args.no_postgis:
            pg_row, found, why = run_postgis(n, w, sample)
            if pg_row is None:
                print(f"  postgis skipped: {why}")
            else:
                rows.append(pg_row)
                results["postgis"] = found
                print(
                    f"  postgis: {pg_row.eps:,.0f} events/s, build {pg_row.build_s:.1f} s",
                    flush=True,
                )
        for method, found in results.items():
            diff, far = disagreements(w, sample, truth, found)
            verdict = "agree" if far == 0 else "DISAGREE"
            print(
                f"  {method} vs numpy brute force on {len(sample)} events: {verdict}"
                f" ({diff} edge cases within 1 cm)"
            )
        del subs, w
        gc.collect()
    print()
    print_table(rows, bandwidth)
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
