"""The map under a crowd: the old bbox endpoint against data tiles, with and without nginx.

    uv run python bench/map_tiles.py                        # 200k requests, 1/16/64 clients
    uv run python bench/map_tiles.py --seeded 1000000 --db /tmp/city1m.db   # seeded once

One run, one machine, one uvicorn worker (no Kafka), real HTTP:
- old: `/api/requests?bbox=<street view>&limit=1000`, a random street view per answer (what
  the map asked before issue 15; every view a new URL, so nothing can be cached);
- tiles cold: `/api/tiles/14/x/y.json` of random street views with the server's tile cache off
  (`MAP_API_TILE_MAX_AGE_S=0`): every answer queried and rendered;
- tiles warm: the same with the default cache (a crowd looks at the same city: each tile is
  rendered once per max-age, then sent from memory);
- old and tiles cold via nginx: the same URLs through `deploy/nginx/map-api.conf` (when nginx
  is installed: scripts/install-system-packages.sh); the old answers are never cached, and
  with the API's max-age at 0 neither are tiles: the proxy's own cost on every answer;
- tiles via nginx (warm): answered from the proxy's cache.
Warm rows ask every tile once before timing (a warm row times a full cache, not its filling).
A street view is 1280 x 720 px at map zoom 16; the map asks its data tiles at zoom 14 (1024 px
each), usually 2-4 per view. Prints answers/s and p50/p95/p99 per client count, and the payload
of one street view old vs new. The load generator runs on the same cores (said in the output):
`wrk` when installed (`apt-get install wrk`; bench/wrk_load.py), else Python httpx clients,
which measure themselves beyond a few hundred answers/s. The per-client read limit is off
(every simulated client is 127.0.0.1). `--db FILE` keeps the seeded city for the next run.
`--baseline-src DIR` times a previous version's cold tiles beside this one's (a second server
with DIR first on its path), `--rounds N` runs the direct cold rows N times, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from machine_info import machine
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import wrk_load
from map_api import CITY, seed  # the other map API benches: the same synthetic city

from connect311_local.broker import free_port
from connect311_map_api.core.tiles import tile_of
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.tables import requests

ROOT = Path(__file__).resolve().parents[1]
VIEW_PX = (1280, 720)
MAP_ZOOM = 16
DATA_ZOOM = MAP_ZOOM - 2
Url = Callable[[random.Random], str]
WRK_PATHS = 20_000  # URLs wrk walks through (the old endpoint: each a new street view)


def street_view(rnd: random.Random) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a 1280 x 720 px view at zoom 16 somewhere in the city."""
    width = VIEW_PX[0] / 256 * 360 / 2**MAP_ZOOM
    lat = rnd.uniform(CITY.min_lat, CITY.max_lat - 0.02)
    height = VIEW_PX[1] / 256 * 360 / 2**MAP_ZOOM * math.cos(math.radians(lat))
    west = rnd.uniform(CITY.min_long, CITY.max_long - width)
    return west, lat, west + width, lat + height


def view_tiles(view: tuple[float, float, float, float]) -> list[str]:
    """The data tile paths covering a view (as mapview.js computes them)."""
    west, south, east, north = view
    top_left, bottom_right = tile_of(north, west, DATA_ZOOM), tile_of(south, east, DATA_ZOOM)
    return [
        f"/api/tiles/{DATA_ZOOM}/{x}/{y}.json"
        for x in range(top_left.x, bottom_right.x + 1)
        for y in range(top_left.y, bottom_right.y + 1)
    ]


def old_url(rnd: random.Random) -> str:
    west, south, east, north = street_view(rnd)
    return f"/api/requests?bbox={west:.6f},{south:.6f},{east:.6f},{north:.6f}&limit=1000"


def tile_url(rnd: random.Random) -> str:
    return rnd.choice(view_tiles(street_view(rnd)))


async def client_loop(
    http: httpx.AsyncClient, stop_at: float, url: Url, seed_: int
) -> tuple[list[float], int]:
    """One client asking back to back until `stop_at`: latencies (ms) and errors."""
    rnd = random.Random(seed_)
    latencies: list[float] = []
    errors = 0
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        try:
            response = await http.get(url(rnd))
            if response.status_code != 200:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, errors


async def level(base: str, clients: int, seconds: float, url: Url) -> dict[str, Any]:
    """`clients` concurrent keep-alive clients for `seconds`: the figures of that run."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60, headers=headers) as h:
        started = time.perf_counter()
        runs = await asyncio.gather(
            *(client_loop(h, started + seconds, url, i) for i in range(clients))
        )
        elapsed = time.perf_counter() - started
    samples = sorted(x for lat, _ in runs for x in lat)

    def pct(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))]

    return {
        "clients": clients,
        "answers": len(samples),
        "rps": len(samples) / elapsed,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": sum(e for _, e in runs),
    }


def seeded_database(path: Path, n: int) -> str:
    """The URL of a SQLite file holding the synthetic city's `n` requests, seeded unless the
    file already holds exactly that many (a kept --db: seeding 1M takes minutes)."""
    db_url = f"sqlite:///{path}"
    engine = make_engine(db_url, 5000)
    try:
        create_schema(engine)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(requests)).scalar_one()
        if stored == n:
            print(f"{path}: {n:,} requests already seeded", flush=True)
            return db_url
        if stored:
            raise SystemExit(f"{path} holds {stored:,} requests, not {n:,}: give another --db")
        print(f"seeding {n:,} requests ...", flush=True)
        seed(engine, n)
    finally:
        engine.dispose()
    return db_url


def start_server(
    db_url: str, port: int, tile_max_age_s: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """uvicorn with the map API (one worker, no consumers, read limit off) in a process;
    `extra_env` adds settings (bench/map_paint.py: the page's first view and base map)."""
    env = {
        **os.environ,
        "MAP_API_DATABASE_URL": db_url,
        "MAP_API_CONSUME": "false",
        "MAP_API_READ_LIMIT": "",
        "MAP_API_TILE_MAX_AGE_S": str(tile_max_age_s),
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "connect311_map_api.app:app_from_environment",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return _wait_up(subprocess.Popen(command, env=env), port, "the map API")


def start_nginx(tmp: Path, api_port: int, port: int) -> subprocess.Popen[bytes] | None:
    """nginx with deploy/nginx/map-api.conf in front of the API, or None when not installed."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        return None
    site = (ROOT / "deploy" / "nginx" / "map-api.conf").read_text()
    site = site.replace("map-api:8000", f"127.0.0.1:{api_port}")
    site = site.replace("/var/cache/nginx/tiles", str(tmp / "nginx-cache"))
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    # nginx's workers run as another user (when started by root): let them reach their cache.
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o711)
    (tmp / "nginx-cache").mkdir(mode=0o777, exist_ok=True)
    (tmp / "nginx-cache").chmod(0o777)
    (tmp / "logs").mkdir(exist_ok=True)
    (tmp / "site.conf").write_text(site)
    # The main config of the compose image (nginx:1.27-alpine): a worker per core, sendfile,
    # an access log that the site's locations may turn off.
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/logs/error.log warn;\n"
        "worker_processes auto;\nevents { worker_connections 1024; }\n"
        f"http {{ sendfile on; keepalive_timeout 65; access_log {tmp}/logs/access.log;\n"
        f"include {tmp}/site.conf; }}\n"
    )
    command = [binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"]
    return _wait_up(subprocess.Popen(command), port, "nginx")


def _wait_up(process: subprocess.Popen[bytes], port: int, name: str) -> subprocess.Popen[bytes]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"{name} did not start; run it by hand to see why")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        process.terminate()
        process.wait(timeout=10)


def payload(base: str, views: int) -> None:
    """Bytes one street view costs: every old page the map asked vs its data tiles."""
    rnd = random.Random(7)
    old_raw = new_raw = new_wire = tiles = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(views):
            view = street_view(rnd)
            west, south, east, north = view
            cursor = None
            for _page in range(5):  # the old map paged up to 5 x 1,000
                params = {"bbox": f"{west},{south},{east},{north}", "limit": "1000"}
                params |= {"cursor": cursor} if cursor else {}
                answer = http.get("/api/requests", params=params)
                old_raw += len(answer.content)  # sent as is: the old endpoint is not compressed
                cursor = answer.json()["next_cursor"]
                if not cursor:
                    break
            for path in view_tiles(view):
                answer = http.get(path, headers={"Accept-Encoding": "gzip"})
                new_raw += len(answer.content)
                new_wire += answer.num_bytes_downloaded
                tiles += 1
    print(
        f"\npayload per street view ({VIEW_PX[0]}x{VIEW_PX[1]} px at zoom {MAP_ZOOM}, mean of "
        f"{views}): old {old_raw / views / 1024:,.1f} KB; tiles {new_wire / views / 1024:,.1f} KB "
        f"on the wire (gzip; {new_raw / views / 1024:,.1f} KB inflated) in {tiles / views:.1f} "
        f"tiles = {new_wire / max(old_raw, 1):.3f} of old"
    )


def run(
    name: str,
    base: str,
    url: Url,
    counts: list[int],
    seconds: float,
    wrk: str | None,
    warm: bool = False,
) -> None:
    """One table: a row per client count, from wrk when given, else the Python clients.
    `warm`: every tile is asked once before (a warm row times a full cache, not its filling)."""
    rnd = random.Random(11)
    paths = [url(rnd) for _ in range(WRK_PATHS)]

    def one(clients: int, duration: float) -> dict[str, Any]:
        if wrk:
            return wrk_load.level(wrk, base, paths, clients, duration)
        return asyncio.run(level(base, clients, duration, url))

    if warm:
        with httpx.Client(base_url=base, timeout=60, headers={"Accept-Encoding": "gzip"}) as h:
            for path in sorted(set(paths)):
                h.get(path)
    one(1, 1.0)  # connections, imports, the first queries
    print(f"\n{name} (load average before: {os.getloadavg()[0]:.2f})")
    print(f"{'clients':>7} {'answers':>8} {'ans/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6}")  # fmt: skip
    for clients in counts:
        row = one(clients, seconds)
        print(
            f"{row['clients']:>7} {row['answers']:>8,} {row['rps']:>7.0f} {row['p50']:>7.1f} "
            f"{row['p95']:>7.1f} {row['p99']:>7.1f} {row['errors']:>6}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeded", type=int, default=200_000, help="requests in the database")
    parser.add_argument("--clients", default="1,16,64", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration per row")
    parser.add_argument("--views", type=int, default=20, help="street views for the payload")
    parser.add_argument("--db", type=Path, help="SQLite file to keep the seeded city in (reused)")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="a previous connect311_map_api's parent folder (e.g. from `git archive`): its "
        "cold tiles are timed beside this one's, on the same database",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="times the direct cold rows run, interleaved"
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (when installed, the default) or the Python clients",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    wrk = wrk_load.available() if args.generator != "python" else None
    if args.generator == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or --generator python)")
    generator = "wrk (C, 1-2 threads)" if wrk else "Python httpx clients (wrk not installed)"
    print(f"machine: {machine()}; load generator: {generator}, on the same cores; 1 uvicorn worker")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tmp.chmod(0o711)  # nginx's workers reach their cache below (see start_nginx)
        db_url = seeded_database(args.db or tmp / "tiles.db", args.seeded)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proxied = f"http://127.0.0.1:{free_port()}"
        proxy_port = int(proxied.rsplit(":", 1)[1])
        cold = start_server(db_url, port, tile_max_age_s=0)
        baseline, before = None, ""
        proxy = None
        try:
            if args.baseline_src:
                before = f"http://127.0.0.1:{free_port()}"
                path = {"PYTHONPATH": str(args.baseline_src.resolve())}  # first on the path
                baseline = start_server(db_url, int(before.rsplit(":", 1)[1]), 0, path)
            payload(base, args.views)
            # max-age=0: nginx keeps nothing, so through it every answer is rendered too.
            proxy = start_nginx(tmp / "nginx-cold", port, proxy_port)
            direct: list[tuple[str, str, Url]] = [
                ("old: GET /api/requests?bbox=<street view>&limit=1000", base, old_url),
                ("tiles cold: GET /api/tiles/14/x/y.json, server tile cache off", base, tile_url),
            ]
            if baseline is not None:
                direct.append((f"tiles cold, baseline ({args.baseline_src})", before, tile_url))
            tables = direct * max(1, args.rounds)
            if proxy is not None:
                tables += [
                    ("old via nginx (passed through: never cacheable)", proxied, old_url),
                    ("tiles via nginx, cold (max-age 0: nothing cached)", proxied, tile_url),
                ]
            for title, where, url in tables:
                run(title, where, url, counts, args.seconds, wrk)
        finally:
            stop(proxy)
            stop(baseline)
            stop(cold)
        warm = start_server(db_url, port, tile_max_age_s=600)  # warm for the whole run
        proxy = None
        try:
            title = "tiles warm: the server's tile cache (every tile asked once before)"
            run(title, base, tile_url, counts, args.seconds, wrk, warm=True)
            proxy = start_nginx(tmp / "nginx-warm", port, proxy_port)
            if proxy is None:
                print(
                    "\nnginx is not installed (scripts/install-system-packages.sh): no proxy rows"
                )
            else:
                run(
                    "tiles via nginx, warm (deploy/nginx/map-api.conf's cache)",
                    proxied,
                    tile_url,
                    counts,
                    args.seconds,
                    wrk,
                    warm=True,
                )
        finally:
            stop(proxy)
            stop(warm)


if __name__ == "__main__":
    main()
