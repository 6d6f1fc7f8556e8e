"""Loopback load test of the map API's map query, over real HTTP against real uvicorn.

    uv run python bench/load_map_api.py                       # 100k requests, 1/4/16/64 clients
    uv run python bench/load_map_api.py --clients 1,8 --seconds 5 --seeded 20000

Seeds a fresh SQLite database, starts `uvicorn --factory
connect311_map_api.app:app_from_environment` in its own process (no Kafka), then runs N
concurrent keep-alive clients (httpx, asyncio), each asking for a random street-scale viewport
(`/api/requests?bbox=...`, what the web map asks above the cluster zoom), for a fixed time.
Prints requests/s, p50/p95/p99 latency and errors per client count; one client is the
baseline. The figure to read: the highest requests/s whose p99 stays under 200 ms.

Clusters (zoom 12) are one whole-city aggregation per filter set, kept for
MAP_API_AGGREGATE_CACHE_S (10 s): warm, nearly every answer is that cached aggregation cut to
the viewport. So they are measured twice, warm and cold (a second server with the cache off,
every answer aggregated anew), and the warm rows say how many answers were cache hits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from map_api import CITY, seed  # the other map API bench: the same synthetic city

from connect311_local.broker import free_port
from connect311_map_api.db.engine import create_schema, make_engine

P99_TARGET_MS = 200.0


def viewport(rnd: random.Random, span: float) -> str:
    """A random bbox parameter of `span` degrees inside the city."""
    lon = rnd.uniform(CITY.min_long, CITY.max_long - span)
    lat = rnd.uniform(CITY.min_lat, CITY.max_lat - span)
    return f"{lon:.5f},{lat:.5f},{lon + span:.5f},{lat + span:.5f}"


QUERIES = {
    # Street scale (zoom 15-16): a page of GeoJSON points, as the map asks at zoom >= 13.
    "bbox": lambda rnd, a: ("/api/requests", {"bbox": viewport(rnd, a.span), "limit": a.limit}),
    # City scale (zoom 12): grid clusters, as the map asks below zoom 13 (cached briefly).
    "clusters": lambda rnd, a: (
        "/api/requests/clusters",
        {"bbox": viewport(rnd, 0.15), "zoom": 12},
    ),
}
QUERIES["clusters-cold"] = QUERIES["clusters"]  # the same question, to a server without cache


async def client_loop(
    http: httpx.AsyncClient, stop_at: float, query: str, args: argparse.Namespace, seed_: int
) -> tuple[list[float], int]:
    """One client asking back to back until `stop_at`: latencies (ms) and error count."""
    rnd = random.Random(seed_)
    latencies: list[float] = []
    errors = 0
    while time.perf_counter() < stop_at:
        path, params = QUERIES[query](rnd, args)
        started = time.perf_counter()
        try:
            response = await http.get(path, params=params)
            if response.status_code != 200:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, errors


async def level(
    base: str, clients: int, seconds: float, query: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Run `clients` concurrent clients for `seconds`; the figures of that run."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        started = time.perf_counter()
        stop_at = started + seconds
        runs = await asyncio.gather(
            *(client_loop(http, stop_at, query, args, i) for i in range(clients))
        )
        elapsed = time.perf_counter() - started
    samples = sorted(x for lat, _ in runs for x in lat)
    errors = sum(e for _, e in runs)

    def pct(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))]

    return {
        "clients": clients,
        "requests": len(samples),
        "rps": len(samples) / elapsed,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": errors,
    }


AGGREGATE_CACHE_S = 10.0  # the map API's default MAP_API_AGGREGATE_CACHE_S


def start_server(
    db_url: str, port: int, workers: int, cache: bool = True
) -> subprocess.Popen[bytes]:
    """uvicorn with the map API (no consumers) in its own process; cache=False: no cluster
    or stats answer is reused (every one aggregated anew)."""
    env = {
        **os.environ,
        "MAP_API_DATABASE_URL": db_url,
        "MAP_API_CONSUME": "false",
        # Every simulated client comes from 127.0.0.1: the per-client read limit would measure
        # 429s, not throughput. Off here, said in the output.
        "MAP_API_READ_LIMIT": "",
        "MAP_API_AGGREGATE_CACHE_S": str(AGGREGATE_CACHE_S if cache else 0),
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "connect311_map_api.app:app_from_environment",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("the map API did not start; run it by hand to see why")


def main() -> None:
    """Seed, serve, load at each client count, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeded", type=int, default=100_000, help="requests in the database")
    parser.add_argument("--clients", default="1,4,16,64", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration per client count")
    parser.add_argument("--span", type=float, default=0.02, help="viewport size in degrees")
    parser.add_argument(
        "--limit", type=int, default=1000, help="page size asked for (the web map asks 1000)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--queries",
        default="bbox,clusters,clusters-cold",
        help="bbox, clusters (warm: the aggregate cache on) and/or clusters-cold (cache off)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI: 2,000 requests, 1 and 4 clients, 1 s each"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeded, args.clients, args.seconds = 2_000, "1,4", 1.0
    counts = [int(c) for c in args.clients.split(",")]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'load.db'}"
        engine = make_engine(db_url, 5000)
        create_schema(engine)
        print(f"seeding {args.seeded:,} requests ...", flush=True)
        seed(engine, args.seeded)
        engine.dispose()
        results = {}
        for query in args.queries.split(","):
            port = free_port()
            server = start_server(db_url, port, args.workers, cache=query != "clusters-cold")
            try:
                results[query] = run_query(f"http://127.0.0.1:{port}", query, counts, args)
            finally:
                server.terminate()
                server.wait(timeout=10)
    for query, rows in results.items():
        summarize(query, rows)
    print(f"machine at the end: {machine()}")


def run_query(
    base: str, query: str, counts: list[int], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Warm up, then one row per client count for one query."""
    asyncio.run(level(base, 1, 1.0, query, args))
    path, params = QUERIES[query](random.Random(0), args)
    if query == "clusters":
        print(_cache_note(args))
    elif query == "clusters-cold":
        print("\nclusters, cold: MAP_API_AGGREGATE_CACHE_S=0, every answer aggregated anew")
    shown = "&".join(f"{k}=..." if k == "bbox" else f"{k}={v}" for k, v in params.items())
    print(
        f"\nGET {path}?{shown} ({args.span} deg street view for bbox), "
        f"{args.seconds:.0f} s per row, {args.workers} uvicorn worker(s); baseline = 1 client; "
        "per-client read limit off (MAP_API_READ_LIMIT=''): all clients share one address; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    warm = query == "clusters"
    print(f"{'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'load':>5}"
          + ("  cache hits (at least)" if warm else ""))  # fmt: skip
    rows = []
    for clients in counts:
        row = asyncio.run(level(base, clients, args.seconds, query, args))
        rows.append(row)
        # At most one aggregation per cache period per worker (plus the warm-up's): the rest hit.
        fresh = args.workers * (1 + int(args.seconds // AGGREGATE_CACHE_S))
        hits = f"  {max(0, row['requests'] - fresh):,} of {row['requests']:,}" if warm else ""
        print(
            f"{row['clients']:>7} {row['requests']:>9,} {row['rps']:>8.0f} "
            f"{row['p50']:>7.1f} {row['p95']:>7.1f} {row['p99']:>7.1f} {row['errors']:>6} "
            f"{os.getloadavg()[0]:>5.1f}{hits}",
            flush=True,
        )
    return rows


def _cache_note(args: argparse.Namespace) -> str:
    return (
        f"\nclusters, warm: one whole-city aggregation per {AGGREGATE_CACHE_S:.0f} s"
        f" (MAP_API_AGGREGATE_CACHE_S) serves every viewport, so these rows are mostly cache"
        f" hits: at most {args.workers} aggregation(s) per {AGGREGATE_CACHE_S:.0f} s; the cold"
        " rows below show the cost of each"
    )


def summarize(query: str, rows: list[dict[str, Any]]) -> None:
    """The best throughput that kept p99 under the target, against the 1-client baseline."""
    within = [r for r in rows if r["p99"] < P99_TARGET_MS]
    baseline = rows[0]["rps"]
    errors = sum(r["errors"] for r in rows)
    if within:
        best = max(within, key=lambda r: r["rps"])
        print(
            f"{query}: best with p99 < {P99_TARGET_MS:.0f} ms: {best['rps']:.0f} req/s at "
            f"{best['clients']} clients ({best['rps'] / baseline:.1f}x the 1-client baseline "
            f"of {baseline:.0f} req/s); errors: {errors}"
        )
    else:
        print(f"{query}: no client count kept p99 under {P99_TARGET_MS:.0f} ms; errors: {errors}")


if __name__ == "__main__":
    main()
