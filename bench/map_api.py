"""Map API benchmark: bbox GeoJSON pages, clusters, stats and state-consumer throughput.

    uv run python bench/map_api.py                 # 100k stored requests (SQLite)
    uv run python bench/map_api.py --million       # also 1M (slower to seed)
    uv run python bench/map_api.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    uv run python bench/map_api.py --sizes 1000000 --aggregates-only   # ~2 min

Each query figure is compared in the same run against a baseline without the lat/long index;
stats and low-zoom clusters also against themselves answered from the aggregate tables, and
the state consumer with and without keeping those tables.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machine_info import machine
from map_api_aggregates import compare_aggregates
from map_api_city import (
    AGENCIES,
    CITY,
    CODES,
    QUERIES,
    SAMPLES,
    START,
    STATS_NOW,
    STATUSES,
    answers_agree,
    percentiles,
    random_view,
)
from map_api_http import http_suite
from sqlalchemy import Connection, Engine, text

from connect311_contracts.request import RequestStatus
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import BBox
from connect311_map_api.core.state import feature, request_row
from connect311_map_api.core.stats import Interval
from connect311_map_api.db import queries, state_store
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.db.tables import metadata, requests

# The event factories live with the tests; the project root makes them importable when this
# runs as `uv run python bench/map_api.py` (sys.path[0] is bench/ then).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.unit.map_api.factories import event, snapshot


def rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n synthetic request rows spread over the city and two years."""
    rnd = random.Random(seed)
    template = request_row(event("opened", snapshot("template")))
    out = []
    for i in range(n):
        opened = START + timedelta(minutes=rnd.randrange(2 * 365 * 24 * 60))
        status = rnd.choice(STATUSES)
        closed = opened + timedelta(hours=rnd.expovariate(1 / 72)) if status == "closed" else None
        code = rnd.choice(CODES)
        row = dict(template)
        row.update(
            service_request_id=f"bench:{i}",
            source_request_id=str(i),
            service_code=code,
            service_name=f"Service {code}",
            agency_responsible=AGENCIES[hash(code) % len(AGENCIES)],
            status=status,
            lat=rnd.uniform(CITY.min_lat, CITY.max_lat),
            long=rnd.uniform(CITY.min_long, CITY.max_long),
            requested_datetime=opened,
            updated_datetime=closed or opened,
            closed_datetime=closed,
            opened_day=opened.date().isoformat(),
            closed_day=closed.date().isoformat() if closed else None,
            hours_to_close=int((closed - opened).total_seconds() // 3600) if closed else None,
            rank_source_at=closed or opened,
            rank_occurred_at=opened,
            rank_event_id=f"e{i}",
        )
        out.append(row)
    return out


def seed(engine: Engine, n: int) -> float:
    """Insert n rows in chunks; returns seconds taken."""
    started = time.perf_counter()
    chunk = 50_000
    for start in range(0, n, chunk):
        batch = rows(min(chunk, n - start), seed=start)
        for j, row in enumerate(batch):
            row["service_request_id"] = f"bench:{start + j}"
        with engine.begin() as conn:
            conn.execute(requests.insert(), batch)
        print(f"  seeded {min(start + chunk, n):,}/{n:,}", flush=True)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


def cases() -> dict[str, tuple[int, Callable[[Engine, random.Random], Any]]]:
    """Named query cases: (repetitions, run(engine, rnd))."""

    def page(engine: Engine, box: BBox, **kw: Any) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            found, _ = queries.request_page(conn, RequestFilters(bbox=box, **kw), 500, None)
            return [feature(r) for r in found]

    def clusters(engine: Engine, _rnd: random.Random) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return queries.clusters(
                conn, RequestFilters(bbox=CITY), 360 / (2**12 * 4), use_aggregates=False
            )

    def stats(engine: Engine, **kw: Any) -> dict[str, Any]:
        with engine.connect() as conn:  # one clock for both: backlog ages count from `now`
            f = RequestFilters(**kw)
            return queries.stats(conn, f, Interval.WEEK, STATS_NOW, use_aggregates=False)

    return {
        "bbox street 0.01deg": (QUERIES, lambda e, rnd: page(e, random_view(rnd, 0.01))),
        "bbox district 0.05deg": (QUERIES, lambda e, rnd: page(e, random_view(rnd, 0.05))),
        "bbox whole city": (QUERIES, lambda e, rnd: page(e, CITY)),
        "bbox 0.05deg + agency + open": (
            QUERIES,
            lambda e, rnd: page(
                e, random_view(rnd, 0.05), agencies=(AGENCIES[3],), statuses=("open",)
            ),
        ),
        "clusters city zoom 12": (SAMPLES, clusters),
        "stats all, weekly": (SAMPLES, lambda e, rnd: stats(e)),
        "stats one agency": (SAMPLES, lambda e, rnd: stats(e, agencies=(AGENCIES[1],))),
    }


def compare(baseline: Engine, indexed: Engine) -> None:
    """Run each case alternately on both databases (fair under a busy machine); both must
    give the same answer to every question."""
    print(
        f"  {'case':32s} {'no lat/long index':>24s} {'lat/long index':>24s}  speed-up"
        f"  (load {os.getloadavg()[0]:.1f})"
    )
    for name, (repeat, run) in cases().items():
        samples: dict[str, list[float]] = {"base": [], "idx": []}
        for i in range(repeat):
            answers: dict[str, Any] = {}
            both = (("base", baseline), ("idx", indexed))
            for key, engine in both if i % 2 == 0 else both[::-1]:  # ABBA: no side first
                rnd = random.Random(i)
                t = time.perf_counter()
                answers[key] = run(engine, rnd)
                samples[key].append((time.perf_counter() - t) * 1000)
            answers_agree(name, answers["base"], answers["idx"])
        b50, b95 = percentiles(samples["base"])
        i50, i95 = percentiles(samples["idx"])
        print(
            f"  {name:32s} p50 {b50:7.1f} p95 {b95:7.1f} ms  p50 {i50:7.1f} p95 {i95:7.1f} ms"
            f"  x{b50 / max(i50, 1e-6):.1f}",
            flush=True,
        )


def sequential(engine: Engine) -> None:
    """Where the database cannot be copied: without the index first, then with it."""
    results: dict[str, dict[str, tuple[float, float]]] = {}
    answers: dict[tuple[str, int], Any] = {}
    for label in ("base", "idx"):
        with engine.begin() as conn:
            if label == "base":
                conn.execute(text("DROP INDEX ix_requests_lat_long"))
            else:
                conn.execute(
                    text("CREATE INDEX ix_requests_lat_long ON requests (lat, long, status)")
                )
            conn.execute(text("ANALYZE"))
        for name, (repeat, run) in cases().items():
            samples = []
            for i in range(repeat):
                t = time.perf_counter()
                answer = run(engine, random.Random(i))
                samples.append((time.perf_counter() - t) * 1000)
                if label == "base":
                    answers[name, i] = answer
                else:
                    answers_agree(name, answers[name, i], answer)
            results.setdefault(name, {})[label] = percentiles(samples)
    print(f"  {'case (sequential)':32s} {'no lat/long index':>24s} {'lat/long index':>24s}")
    for name, res in results.items():
        (b50, b95), (i50, i95) = res["base"], res["idx"]
        print(
            f"  {name:32s} p50 {b50:7.1f} p95 {b95:7.1f} ms  p50 {i50:7.1f} p95 {i95:7.1f} ms"
            f"  x{b50 / max(i50, 1e-6):.1f}"
        )


def bench_queries(url: str, n: int, tmp: Path, aggregates_only: bool = False) -> None:
    """Seed n rows, copy the database without the lat/long index, compare both."""
    engine = make_engine(url)
    metadata.drop_all(engine)
    create_schema(engine)
    print(f"\n== {n:,} stored requests ({engine.dialect.name}) ==")
    print(f"  seed time {seed(engine, n):.1f} s")
    compare_aggregates(engine)
    engine.dispose()
    if aggregates_only:
        return
    if not url.startswith("sqlite:///"):
        sequential(make_engine(url))
        http_suite(url)
        return
    copy = tmp / f"baseline-{n}.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), copy)
    baseline = make_engine(f"sqlite:///{copy}")
    with baseline.begin() as conn:
        conn.execute(text("DROP INDEX ix_requests_lat_long"))
        conn.execute(text("ANALYZE"))
    compare(baseline, make_engine(url))
    baseline.dispose()
    copy.unlink()
    http_suite(url)


def _no_upkeep(_conn: Connection, _deltas: Any) -> None:
    """Stands in for the aggregate upkeep in the consumer's baseline run."""


def bench_consumer(url: str, n_requests: int, rounds: int = 3) -> None:
    """Events/s apply_events reaches: batches of 500 vs one event per transaction, and with vs
    without the aggregate upkeep, alternated over `rounds` (A B B A ...), medians shown."""
    events = []
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n_requests):
        events.append(event("opened", snapshot(f"c{i}", opened=t0)))
        done = snapshot(
            f"c{i}", status=RequestStatus.CLOSED, opened=t0, updated=t0 + timedelta(hours=5)
        )
        events.append(event("closed", done))
    print(
        f"\n== state consumer: {len(events):,} events (opened + closed); load"
        f" {os.getloadavg()[0]:.1f} =="
    )
    upkeep = state_store.aggregates.apply
    runs = [(1, True)]  # one event per transaction: once, on the first 2,000 events
    for r in range(rounds):
        pair = [(500, False), (500, True)]
        runs += pair if r % 2 == 0 else pair[::-1]
    rates: dict[tuple[int, bool], list[tuple[float, float]]] = {}
    for batch, keep in runs:
        # Baseline in the same run: the same writer with the aggregate upkeep switched off.
        state_store.aggregates.apply = upkeep if keep else _no_upkeep
        try:
            rates.setdefault((batch, keep), []).append(_consume(url, events, batch))
        finally:
            state_store.aggregates.apply = upkeep
    for (batch, keep), measured in rates.items():
        label = "with aggregates" if keep else "no aggregates (baseline)"
        rate = statistics.median(m[0] for m in measured)
        replay = statistics.median(m[1] for m in measured)
        each = ", ".join(f"{m[0]:,.0f}" for m in measured)
        print(
            f"  batch {batch:4d}, {label:24s}: {rate:9,.0f} events/s applied; replay "
            f"(all duplicates) {replay:9,.0f} events/s  (median of {len(measured)}: {each})"
        )


def _consume(url: str, events: list[Any], batch: int) -> tuple[float, float]:
    """(events/s applied into an empty database, events/s replaying them all again)."""
    engine = make_engine(url)
    metadata.drop_all(engine)
    create_schema(engine)
    subset = events if batch > 1 else events[:2_000]
    started = time.perf_counter()
    for i in range(0, len(subset), batch):
        with engine.begin() as conn:
            apply_events(conn, subset[i : i + batch])
    rate = len(subset) / (time.perf_counter() - started)
    started = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(subset), 500):
            apply_events(conn, subset[i : i + 500])
    replay = len(subset) / (time.perf_counter() - started)
    engine.dispose()
    return rate, replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--million", action="store_true", help="also run at 1M stored requests")
    parser.add_argument("--sizes", default="100000", help="comma-separated row counts")
    parser.add_argument(
        "--aggregates-only", action="store_true", help="only scan vs aggregate tables"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI: 2,000 stored requests, 1,000 consumed (figures only)",
    )
    args = parser.parse_args()
    consumer_requests = 10_000
    if args.quick:
        args.sizes, args.million, consumer_requests = "2000", False, 1_000
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
        for n in sizes:
            bench_queries(url, n, Path(tmp), args.aggregates_only)
        if not args.aggregates_only:
            bench_consumer(url, consumer_requests)
    print(f"machine at the end: {machine()}")


if __name__ == "__main__":
    main()
