"""bench/matcher.py --lookup: the index lookup alone against an R-tree, numpy brute force and
PostGIS, with the machine's memory bandwidth for scale."""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from machine_info import machine
from matcher_workload import PG_URL, Workload, model_bytes, subscriptions, template_event, workload
from rtree import index as rtree_index

from connect311_contracts.subscriptions import Subscription
from connect311_matcher.geodesy import EARTH_RADIUS_M, unit_vector, unit_vectors
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import eligible_slots
from connect311_matcher.targets import circle_bbox


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


def disagreements(
    w: Workload, sample: np.ndarray, truth: list[set[int]], other: list[set[int]]
) -> tuple[int, int]:
    """(differences, differences more than 1 cm from a circle's edge) over the sample."""
    diff = far = 0
    for (lat, lon), a, b in zip(w.points[sample], truth, other, strict=True):
        for i in a ^ b:
            diff += 1
            p, c = np.asarray(unit_vector(lat, lon)), np.asarray(unit_vector(w.lat[i], w.lon[i]))
            d = 2 * np.arcsin(min(1.0, float(np.linalg.norm(p - c)) / 2)) * EARTH_RADIUS_M
            far += abs(d - w.radius[i]) > 0.01
    return diff, far


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
