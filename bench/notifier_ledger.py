"""bench/notifier.py section 2: the ledger alone (SQLite, PostgreSQL) and, with --with-faust, a
faust-streaming Table as the alternative digest buffer (its worker runs as
`python bench/notifier_ledger.py --faust-table N BOOTSTRAP`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from notifier_commands import command

from connect311_bus.kafka import encode
from connect311_local.broker import running_broker
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.settings import NotifierSettings


def ledger_rate(url: str, n: int) -> tuple[float, float]:
    """Commands recorded per second in batches of 200, then replayed (all duplicates)."""
    engine = create_engine(url)
    ledger = Ledger(engine)
    ledger.create_schema()
    plan = make_planner(NotifierSettings(), lambda: datetime.now(UTC))
    items = [Incoming(command(i, "ledger"), f"k{i}", time.time()) for i in range(n)]
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        for b in range(0, n, 200):
            ledger.record(items[b : b + 200], plan, time.time())
        rates.append(n / (time.perf_counter() - start))
    engine.dispose()
    return rates[0], rates[1]


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A scratch PostgreSQL database (TEST_POSTGRES_URL's server), or None if unreachable."""
    import psycopg

    url = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    admin_url = url.replace("postgresql+psycopg://", "postgresql://")
    name = f"c311_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        yield None
        return
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def faust_table_rate(n: int) -> float | None:
    """Updates/s of a faust-streaming Table (the alternative digest buffer) on its own broker.

    Runs a faust worker in a subprocess (faust owns its event loop); producer_max_batch_size=1
    as the local broker needs for table recovery (../shared/BROKER.md).
    """
    with running_broker() as broker:
        done = subprocess.run(
            [sys.executable, __file__, "--faust-table", str(n), broker.bootstrap_servers],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    # faust sends stdout through its logger, so the figure may come out on either stream.
    found = re.search(r"faust-table-rate ([0-9.]+)", done.stdout + done.stderr)
    return float(found.group(1)) if found else None


def serve_faust_table(n: int, bootstrap: str) -> None:
    """The faust worker process: n commands through an agent into a Table, then exit."""
    import faust

    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        producer_max_batch_size=1,
        web_enabled=False,
        topic_partitions=4,  # what this broker gives auto-created topics
        broker_session_timeout=2.0,
        broker_heartbeat_interval=0.5,
    )
    topic = app.topic(
        "bench-faust-commands",
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=4,
    )
    digest_counts = app.Table("digest-buffer", default=int, partitions=4)
    state = {"done": 0, "start": 0.0}
    payload = encode(command(0, "faust"))

    @app.agent(topic)
    async def buffer(stream):  # type: ignore[no-untyped-def]
        async for key, _value in stream.items():
            digest_counts[key.decode()] += 1  # one changelog write per update
            state["done"] += 1
            if state["done"] == n:
                rate = n / (time.perf_counter() - state["start"])
                print(f"faust-table-rate {rate:.1f}", flush=True)
                os._exit(0)

    @app.task
    async def feed() -> None:
        await asyncio.sleep(3)  # let the worker join and assign partitions
        state["start"] = time.perf_counter()
        for i in range(n):
            await topic.send(key=f"sub-{i % 50}".encode(), value=payload)

    sys.argv = [sys.argv[0], "worker", "--without-web", "--loglevel", "error"]
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The faust worker for bench/notifier.py")
    parser.add_argument("--faust-table", nargs=2, metavar=("N", "BOOTSTRAP"), required=True)
    args = parser.parse_args()
    serve_faust_table(int(args.faust_table[0]), args.faust_table[1])
