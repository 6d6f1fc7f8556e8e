"""Sign-up response times for known vs unknown addresses, in the same run (timing side channel).

    uv run python bench/signup_timing.py                  # 400 pairs, SQLite, local broker
    uv run python bench/signup_timing.py --pairs 200 --database-url postgresql+psycopg://...

Seeds `pairs + warmup` known addresses (each with an active and a pending subscription) in a
fresh database, starts a local broker and `uvicorn --factory
connect311_map_api.app:app_from_environment` with its consumers (real Kafka publishes) in its
own process, then signs up one known and one never-seen address per pair, in random order,
one request at a time over keep-alive HTTP.
Every address is used once, so neither kind has rate-limit windows of its own yet (the
question is "is it subscribed?", not "did someone just try it?"). Prints p50/p90/p99/mean
for each kind and, as the noise floor of this run, the same figures for the unknown
addresses split into two random halves.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from machine_info import machine

from connect311_contracts.subscriptions import Subscription, SubscriptionStatus
from connect311_local.broker import free_port, running_broker
from connect311_map_api.db import subscription_store
from connect311_map_api.db.engine import create_schema, make_engine

TARGET = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
RUN = uuid.uuid4().hex[:6]  # keeps addresses unique on a reused PostgreSQL database


def address(kind: str, n: int) -> str:
    """Known and unknown addresses of the same length, so payload sizes match."""
    return f"{kind}{n:06d}.{RUN}@bench.example.org"


def seed_known(db_url: str, count: int) -> None:
    """`count` addresses with an active and a pending subscription each."""
    engine = make_engine(db_url)
    create_schema(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n in range(count):
            for status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING):
                sub = Subscription.model_validate(
                    {
                        "subscription_id": str(uuid.uuid4()),
                        "email": address("k", n),
                        "target": TARGET,
                        "status": status,
                        "created_at": now,
                        "confirmed_at": now if status is SubscriptionStatus.ACTIVE else None,
                    }
                )
                subscription_store.insert(conn, sub)
    engine.dispose()


def start_server(db_url: str, bootstrap: str, port: int) -> subprocess.Popen[bytes]:
    """The map API with consumers and publisher, generous limits, no access log."""
    env = {
        **os.environ,
        "MAP_API_DATABASE_URL": db_url,
        "MAP_API_CONSUME": "true",
        "MAP_API_RATE_LIMIT_IP": "1000000/minute",
        "MAP_API_RATE_LIMIT_EMAIL": "1000000/minute",
        "MAP_API_RATE_LIMIT_DOMAIN": "1000000/minute",
        "MAP_API_RATE_LIMIT_CONFIRMATIONS": "1000000/minute",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CONNECT311_SECRET_KEY": "signup-timing-bench",
        "CONNECT311_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "connect311_map_api.app:app_from_environment",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("the map API did not start; run it by hand to see why")


def sign_up(http: httpx.Client, email: str) -> float:
    """One sign-up; milliseconds until the 202 arrived."""
    started = time.perf_counter()
    response = http.post("/api/subscriptions", json={"email": email, "target": TARGET})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 202:
        raise SystemExit(f"sign-up answered {response.status_code}: {response.text}")
    return elapsed


def measure(base: str, pairs: int, warmup: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) of known and unknown sign-ups, interleaved in random order."""
    rnd = random.Random(7)
    known: list[float] = []
    unknown: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for n in range(warmup + pairs):
            order = [("k", known), ("u", unknown)]
            rnd.shuffle(order)
            for kind, sink in order:
                ms = sign_up(http, address(kind, n))
                if n >= warmup:
                    sink.append(ms)
    return known, unknown


def pct(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, samples: list[float]) -> str:
    """One line of the table."""
    return (
        f"{name:<22} {len(samples):>5} {pct(samples, 0.5):>7.2f} {pct(samples, 0.9):>7.2f} "
        f"{pct(samples, 0.99):>7.2f} {statistics.fmean(samples):>7.2f}"
    )


def main() -> None:
    """Seed, start broker and server, time the pairs, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400, help="known + unknown pairs timed")
    parser.add_argument("--warmup", type=int, default=30, help="pairs run first, not timed")
    parser.add_argument("--database-url", default=None, help="an empty database (default SQLite)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.database_url or f"sqlite:///{Path(tmp) / 'signup.db'}"
        seed_known(db_url, args.warmup + args.pairs)
        with running_broker(log_path=Path(tmp) / "broker.log") as broker:
            port = free_port()
            server = start_server(db_url, broker.bootstrap_servers, port)
            try:
                known, unknown = measure(f"http://127.0.0.1:{port}", args.pairs, args.warmup)
            finally:
                server.terminate()
                server.wait(timeout=15)
    halves = unknown[:]
    random.Random(11).shuffle(halves)
    half = len(halves) // 2
    print(
        f"\nPOST /api/subscriptions, 1 client, {args.pairs} pairs after {args.warmup} warm-up, "
        f"database {db_url.split(':', 1)[0]}, real broker publishes"
    )
    print(f"{'':<22} {'n':>5} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'mean':>7}")
    print(row("known address", known))
    print(row("unknown address", unknown))
    print(row("unknown, half A", halves[:half]))
    print(row("unknown, half B", halves[half:]))
    gap = pct(known, 0.5) - pct(unknown, 0.5)
    floor = abs(pct(halves[:half], 0.5) - pct(halves[half:], 0.5))
    print(
        f"p50 known - unknown: {gap:+.2f} ms; noise floor (|p50 A - p50 B|, same kind): "
        f"{floor:.2f} ms"
    )


if __name__ == "__main__":
    main()
