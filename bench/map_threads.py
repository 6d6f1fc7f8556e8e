"""Light requests beside a crowd on heavy pages: what bounding the heavy threads changes.

    uv run python bench/map_threads.py --db /tmp/city300k.db             # 300k, seeded once
    uv run python bench/map_threads.py --threads 40,2 --rounds 2          # before/after only

Per row, one uvicorn worker (no Kafka, read limit off) with `MAP_API_HEAVY_THREADS=N`
(connect311_map_api/heavy_work.py): N = 40, the default thread pool's size, lets every heavy
request build at once (as before the limiter); smaller N makes the rest wait on the event
loop. `--clients` wrk connections (default 16) ask the old bbox endpoint
(`/api/requests?bbox=<street view>&limit=1000`, a new view each time: never cached) while this
process asks a light endpoint every `--probe-ms` (alternately `/healthz`, async with a
database ping, and `/api/categories`, a sync route in the default pool) and times each answer.
Prints per row: the heavy endpoint's answers/s and p50/p99 (wrk), the light answers' p50/p99/
max, and the server's own loop watchdog over the row (`map_api_event_loop_lag_seconds`
samples over 50/100/250 ms and `map_api_event_loop_blocked` episodes, from /metrics), with the
load average before and after. `--rounds` interleaves the rows. Needs wrk (`apt-get install
wrk`). At the default 300k a street view holds 1,400-1,550 requests: each answer is a full page of
1,000 features (~2 MB), as at 1M (`--seeded 1000000` to check; seeding it takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import wrk_load
from machine_info import machine
from map_tiles import WRK_PATHS, _wait_up, old_url, seeded_database, stop

from connect311_local.broker import free_port

TOKEN = "bench-map-threads"
LAG_EDGES = ("0.05", "0.1", "0.25")  # watchdog buckets reported: samples later than these
BUCKET = re.compile(r'^map_api_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)
BLOCKED = re.compile(r"^map_api_event_loop_blocked_total (\S+)$", re.M)
WARNED = re.compile(r"event loop blocked for (\d+) ms")


def start_server(
    db_url: str, port: int, threads: int, switch_ms: float | None, log: Path
) -> subprocess.Popen[bytes]:
    """uvicorn with the map API and MAP_API_HEAVY_THREADS=threads (and the interpreter's
    switch interval at `switch_ms` when given); its log (the watchdog's warnings) to `log`."""
    env = {
        **os.environ,
        "MAP_API_DATABASE_URL": db_url,
        "MAP_API_CONSUME": "false",
        "MAP_API_READ_LIMIT": "",
        "MAP_API_METRICS_TOKEN": TOKEN,
        "MAP_API_HEAVY_THREADS": str(threads),
    }
    # The interpreter asks a thread holding the GIL to drop it every switch interval (5 ms by
    # default): what each hop of a light request may wait while a page is built.
    switch = f"sys.setswitchinterval({switch_ms / 1000});" if switch_ms else ""
    server = f"import sys;{switch}from uvicorn.main import main;main()"
    command = [
        sys.executable, "-c", server, "--factory", "connect311_map_api.app:app_from_environment",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stderr=sink)
    return _wait_up(process, port, "the map API")


def watchdog(http: httpx.Client) -> dict[str, float]:
    """The loop watchdog's cumulative figures: samples over each edge, blocked episodes."""
    text = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    buckets = {le: float(n) for le, n in BUCKET.findall(text)}
    figures = {edge: buckets["+Inf"] - buckets[edge] for edge in LAG_EDGES}
    blocked = BLOCKED.search(text)
    figures["blocked"] = float(blocked.group(1)) if blocked else 0.0
    return figures


async def _probe(base: str, every_s: float, seconds: float) -> list[float]:
    paths = ("/healthz", "/api/categories")
    latencies: list[float] = []

    async def ask(http: httpx.AsyncClient, path: str) -> None:
        started = time.perf_counter()
        answer = await http.get(path)
        latencies.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"light probe answered {answer.status_code}")

    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        asked: list[asyncio.Task[None]] = []
        tick = time.perf_counter()
        stop_at = tick + seconds
        while tick < stop_at:
            # On schedule whether or not the last one answered: a stall delays every request
            # sent during it, and none of the schedule is skipped (no coordinated omission).
            asked.append(asyncio.create_task(ask(http, paths[len(asked) % 2])))
            tick += every_s
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        await asyncio.gather(*asked)
    return latencies


def probe(base: str, every_s: float, seconds: float) -> list[float]:
    """Ask a light endpoint every `every_s` for `seconds`: each answer's latency (ms)."""
    return asyncio.run(_probe(base, every_s, seconds))


def row(
    db_url: str, spec: str, wrk: str, paths: list[str], args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    """One server (`spec`: heavy slots, optionally `@` a switch interval in ms) under the
    crowd: the row's figures."""
    threads, _, switch = spec.partition("@")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(db_url, port, int(threads), float(switch) if switch else None, log)
    try:
        wrk_load.level(wrk, base, paths, 2, 1.0)  # connections, imports, the first pages
        with httpx.Client(base_url=base, timeout=60) as http:
            http.get("/api/categories")
            load_before = os.getloadavg()[0]
            before = watchdog(http)
            heavy: dict[str, Any] = {}
            crowd = threading.Thread(
                target=lambda: heavy.update(
                    wrk_load.level(wrk, base, paths, args.clients, args.seconds)
                )
            )
            crowd.start()
            time.sleep(0.5)  # the crowd is at work before the first light request
            light = probe(base, args.probe_ms / 1000, args.seconds - 1.0)
            crowd.join()
            after = watchdog(http)
            load_after = os.getloadavg()[0]
    finally:
        stop(server)
    light.sort()
    return {
        "heavy": heavy,
        "light_p50": statistics.median(light),
        "light_p99": light[min(len(light) - 1, int(0.99 * len(light)))],
        "light_max": light[-1],
        "light_n": len(light),
        "lag": {k: after[k] - before[k] for k in after},
        "load": (load_before, load_after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeded", type=int, default=300_000, help="requests in the database")
    parser.add_argument("--db", type=Path, help="SQLite file to keep the seeded city in (reused)")
    parser.add_argument(
        "--threads",
        default="40,1,2,4",
        help="MAP_API_HEAVY_THREADS per row, comma-separated (40: the default pool's size, "
        "i.e. unbounded as before the limiter); N@MS also sets the server's switch interval "
        "(sys.setswitchinterval, default 5 ms) to MS",
    )
    parser.add_argument("--clients", type=int, default=16, help="wrk connections on old pages")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration per row")
    parser.add_argument("--probe-ms", type=float, default=50.0, help="light request interval")
    parser.add_argument("--rounds", type=int, default=1, help="times the rows run, interleaved")
    args = parser.parse_args()
    wrk = wrk_load.available()
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    print(f"machine: {machine()}; wrk on the same cores; 1 uvicorn worker", flush=True)
    rnd = random.Random(11)
    paths = [old_url(rnd) for _ in range(WRK_PATHS)]
    with tempfile.TemporaryDirectory() as name:
        db_url = seeded_database(args.db or Path(name) / "threads.db", args.seeded)
        log = Path(name) / "server.log"
        print(
            f"\n{args.clients} clients on /api/requests?bbox=<street view>&limit=1000; light "
            f"probe every {args.probe_ms:.0f} ms; lag = watchdog samples over 50/100/250 ms"
        )
        print(
            f"{'threads':>7} {'heavy/s':>7} {'h p50':>6} {'h p99':>6} {'light':>5} "
            f"{'l p50':>6} {'l p99':>6} {'l max':>6} {'lag>50/100/250':>14} {'blocked':>7} "
            f"{'load':>9}"
        )
        for _round in range(max(1, args.rounds)):
            for spec in args.threads.split(","):
                r = row(db_url, spec, wrk, paths, args, log)
                h, lag = r["heavy"], r["lag"]
                lags = "/".join(f"{lag[e]:.0f}" for e in LAG_EDGES)
                print(
                    f"{spec:>7} {h['rps']:>7.1f} {h['p50']:>6.0f} {h['p99']:>6.0f} "
                    f"{r['light_n']:>5} {r['light_p50']:>6.1f} {r['light_p99']:>6.1f} "
                    f"{r['light_max']:>6.1f} {lags:>14} {lag['blocked']:>7.0f} "
                    f"{r['load'][0]:>4.1f}-{r['load'][1]:<4.1f}",
                    flush=True,
                )
        warned = [int(ms) for ms in WARNED.findall(log.read_text())]
        print(f"\nwatchdog warnings in the servers' logs (ms; one a minute at most): {warned}")


if __name__ == "__main__":
    main()
