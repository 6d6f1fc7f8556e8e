"""Notifier benchmark: emails/s over SMTP and command -> SMTP-accepted latency.

Starts its own Kafka-protocol broker and an aiosmtpd sink on loopback, then measures:
  1. SMTP only: pre-rendered emails through the notifier's Mailer, one reused connection
     versus a new connection per message (the baseline);
  2. the ledger alone: commands recorded per second (SQLite), first time and replayed;
  3. end to end: commands published to Kafka -> notifier (consumer, ledger, sender) -> SMTP
     accepted, as a burst and as a steady trickle, reused connection versus one per message;
  4. several instances: the same burst through 1 and then 2 notifier processes (one consumer
     group, one PostgreSQL ledger), the single process being the baseline;
  5. --smtp-outage: a notifier process with production back-off; a burst with the SMTP
     server up (the baseline), then the server stopped for --outage-s while commands keep
     arriving for new recipients, then started again: how long until everything queued is
     delivered. To compare with an older notifier, put its src first on PYTHONPATH (the
     notifier process inherits it).

Run: uv run python bench/notifier.py [--emails 1000] [--only-instances]
     uv run python bench/notifier.py --smtp-outage [--outage-s 60] [--emails 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller

from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.events import RequestOpened
from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_contracts.request import ServiceRequest
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.subscriptions import CircleTarget, Subscription, SubscriptionStatus
from connect311_local.broker import free_port, port_answers, running_broker
from connect311_notifier.app import run as run_notifier
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mailer import Mailer, Outcome
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings


class Sink:
    """An aiosmtpd sink in its own process (so it does not share the notifier's CPU/GIL).

    It appends "<recipient> <accepted at>" lines to a file; the bench reads them back.
    """

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.path = tmp / f"sink-{self.port}.log"
        self.path.touch()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-sink", str(self.port), str(self.path)]
        )
        while not port_answers(self.port):
            time.sleep(0.01)

    def arrivals(self) -> dict[str, float]:
        """Recipient -> when the sink accepted its message."""
        found: dict[str, float] = {}
        for line in self.path.read_text().splitlines():
            to, _, at = line.partition(" ")
            if at:
                found[to] = float(at)
        return found

    def count(self, wanted: set[str]) -> int:
        """How many of these recipients have mail."""
        return len(wanted.intersection(self.arrivals()))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def serve_sink(port: int, path: Path) -> None:
    """The sink process: accept everything, note who and when, until SIGTERM."""
    out = path.open("a", buffering=1)

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
            now = time.time()
            for to in envelope.rcpt_tos:
                out.write(f"{to} {now:.6f}\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    out.close()


def command(i: int, run: str) -> SubscriberMatched:
    sub = Subscription(
        subscription_id=f"{run}-{i}",
        email=f"{run}-{i}@bench.example",
        label="Home",
        target=CircleTarget(lat=27.77, long=-82.64, radius_m=500),
        status=SubscriptionStatus.ACTIVE,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    request = ServiceRequest(
        service_request_id=f"bench:{run}-{i}",
        source="bench",
        source_request_id=f"{run}-{i}",
        service_name="Pothole",
        agency_responsible="Public Works",
        status="open",
        raw_status="Open",
        description="A pothole in the right lane, about a foot wide. " * 3,
        address="100 Central Ave",
        lat=27.771,
        long=-82.641,
        requested_datetime=datetime(2024, 1, 2, tzinfo=UTC),
    )
    return SubscriberMatched(
        subscription=sub,
        request_event=RequestOpened(request=request),
        distance_m=230.0,
        matched_rule="within 500 m of Home",
    )


async def until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Poll until the predicate holds; fail loudly after the timeout."""
    deadline = time.time() + timeout_s
    while True:
        if predicate():
            return
        if time.time() > deadline:
            raise TimeoutError(f"benchmark condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def smtp_only(sink: Sink, n: int, per_connection: int) -> float:
    """Emails/s through the Mailer with pre-rendered messages."""
    settings = NotifierSettings(smtp_port=sink.port, smtp_messages_per_connection=per_connection)
    renderer = Renderer.create(settings, LinkBuilder("http://localhost:8000", "bench"))
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    messages = [renderer.alert(command(i, run), False, f"<{run}.{i}@bench>", now) for i in range(n)]
    mailer = Mailer(settings)
    start = time.perf_counter()
    for message in messages:
        assert (await mailer.send(message)).outcome is Outcome.SENT
    elapsed = time.perf_counter() - start
    await mailer.close()
    assert sink.count({f"{run}-{i}@bench.example" for i in range(n)}) == n
    return n / elapsed


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


def with_connections(settings: NotifierSettings, connections: int) -> NotifierSettings:
    """NOTIFIER_SMTP_CONNECTIONS, on notifier versions that have it (to compare with older)."""
    if "smtp_connections" not in NotifierSettings.model_fields:
        return settings
    return settings.model_copy(update={"smtp_connections": connections})


async def end_to_end(
    sink: Sink, n: int, per_connection: int, trickle_per_s: float | None, connections: int = 1
) -> dict[str, float]:
    """Publish n commands, run the notifier, time each one from publish to SMTP accepted."""
    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        settings = NotifierSettings(
            smtp_port=sink.port,
            smtp_messages_per_connection=per_connection,
            database_url=f"sqlite:///{Path(tmp) / 'notifier.db'}",
            http_port=free_port(),
            global_rate_per_s=1e6,
            group_id=f"bench-{uuid.uuid4().hex[:6]}",
        )
        settings = with_connections(settings, connections)
        stop = asyncio.Event()
        signing = SigningSettings(public_base_url="http://localhost:8000")
        task = asyncio.create_task(run_notifier(settings, kafka, signing, stop))
        prod = producer(kafka, "bench")
        await prod.start()
        try:
            warm = command(0, f"warmup-{uuid.uuid4().hex[:6]}")
            await prod.send_and_wait("notifications.v1", encode(warm), key=b"w")
            # The consumer has joined and SMTP is connected once the warm-up email is in.
            await until(lambda: sink.count({warm.subscription.email}) == 1, 60)
            run = uuid.uuid4().hex[:6]
            commands = [command(i, run) for i in range(n)]
            published: dict[str, float] = {}
            start = time.time()
            pending = []
            for i, c in enumerate(commands):
                if trickle_per_s:
                    await asyncio.sleep(max(0.0, start + i / trickle_per_s - time.time()))
                published[c.subscription.email] = time.time()
                key = recipient_key(c.subscription.email).encode()
                pending.append(await prod.send("notifications.v1", encode(c), key=key))
            await asyncio.gather(*pending)
            wanted = set(published)
            await until(lambda: sink.count(wanted) == n, 300)
        finally:
            await prod.stop()
            stop.set()
            await task
    arrivals = sink.arrivals()
    latencies = [arrivals[to] - published[to] for to in published]
    last = max(arrivals[to] for to in published)
    return {
        "rate": n / (last - start),
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
    }


def spawn_notifier(
    kafka: KafkaSettings, sink: Sink, url: str, group: str, instance: str, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """One notifier process (the real CLI) and its HTTP port."""
    http_port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "NOTIFIER_SMTP_PORT": str(sink.port),
        "NOTIFIER_DATABASE_URL": url,
        "NOTIFIER_GROUP_ID": group,
        "NOTIFIER_INSTANCE_ID": instance,
        "NOTIFIER_HTTP_PORT": str(http_port),
        "NOTIFIER_GLOBAL_RATE_PER_S": "1000000",
        "CONNECT311_PUBLIC_BASE_URL": "http://localhost:8000",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "connect311_notifier", "run", "--log-level", "WARNING"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, http_port


def print_logs(folder: Path) -> None:
    """The end of each notifier process's log, on stderr."""
    for log in sorted(folder.glob("n*.log")):
        print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)


def sent_by_instance(url: str) -> dict[str, int]:
    """Emails each instance sent, from the shared ledger."""
    import sqlalchemy as sa

    from connect311_notifier.ledger import emails

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(emails.c.claimed_by, sa.func.count())
            .where(emails.c.status == "sent")
            .group_by(emails.c.claimed_by)
        ).all()
    engine.dispose()
    return {str(who): int(count) for who, count in rows}


async def instances_burst(sink: Sink, n: int, url: str, count: int) -> tuple[float, list[int]]:
    """Emails/s for a burst of n through `count` notifier processes on one ledger."""
    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        group = f"bench-multi-{uuid.uuid4().hex[:6]}"
        spawned = [
            spawn_notifier(kafka, sink, url, group, f"bench-{i}", Path(tmp) / f"n{i}.log")
            for i in range(count)
        ]
        prod = producer(kafka, "bench")
        await prod.start()
        try:
            await until(lambda: all(port_answers(port) for _, port in spawned), 60)
            await asyncio.sleep(4)  # let the group settle (joins wait half a session timeout)
            warm = [command(i, f"warm-{uuid.uuid4().hex[:6]}") for i in range(24)]
            for c in warm:  # 24 recipients: every partition, so every member has fetched
                key = recipient_key(c.subscription.email).encode()
                await prod.send_and_wait("notifications.v1", encode(c), key=key)
            await until(lambda: sink.count({c.subscription.email for c in warm}) == 24, 60)
            run = uuid.uuid4().hex[:6]
            commands = [command(i, run) for i in range(n)]
            start = time.time()
            pending = []
            for c in commands:
                key = recipient_key(c.subscription.email).encode()
                pending.append(await prod.send("notifications.v1", encode(c), key=key))
            await asyncio.gather(*pending)
            wanted = {c.subscription.email for c in commands}
            await until(lambda: sink.count(wanted) == n, 300)
            arrivals = sink.arrivals()
            last = max(arrivals[to] for to in wanted)
        except TimeoutError:
            print_logs(Path(tmp))  # why a process did not come up or keep up
            raise
        finally:
            await prod.stop()
            for process, _ in spawned:
                process.terminate()
            for process, _ in spawned:
                process.wait(timeout=30)
        shares = sent_by_instance(url)
    return n / (last - start), [shares.get(f"bench-{i}", 0) for i in range(count)]


async def several_instances(sink: Sink, n: int) -> None:
    """Section 4: 1 vs 2 notifier processes on one PostgreSQL ledger, same burst."""
    print("\n4. Several instances: burst published to Kafka -> notifier processes -> SMTP")
    print("   (one consumer group, one PostgreSQL ledger; each process sends over 4 connections)")
    for count in (1, 2, 1, 2):
        with postgres_database() as url:
            if url is None:
                print("   PostgreSQL unreachable (set TEST_POSTGRES_URL)")
                return
            rate, shares = await instances_burst(sink, n, url, count)
        label = "1 instance (baseline)" if count == 1 else f"{count} instances"
        split = " + ".join(str(s) for s in shares)
        print(f"   {label:24} {rate:8.0f} emails/s   (sent, incl. warm-up: {split})")


async def publish_all(prod: AIOKafkaProducer, commands: list[SubscriberMatched]) -> None:
    """Publish keyed by recipient, as the matcher does, and wait for the broker's acks."""
    pending = []
    for c in commands:
        key = recipient_key(c.subscription.email).encode()
        pending.append(await prod.send("notifications.v1", encode(c), key=key))
    await asyncio.gather(*pending)


async def smtp_outage(n: int, outage_s: float) -> None:
    """Section 5: time to drain a burst with SMTP up vs. the backlog of an outage."""
    print(f"\n5. SMTP outage: {n} emails with the server up, then {n} while it is down")
    print(f"   for {outage_s:.0f} s (one notifier process, 4 connections, retry base 2 s)")
    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        sink = Sink(Path(tmp))
        url = f"sqlite:///{Path(tmp) / 'notifier.db'}"
        group = f"bench-outage-{uuid.uuid4().hex[:6]}"
        process, _ = spawn_notifier(kafka, sink, url, group, "bench-0", Path(tmp) / "n0.log")
        prod = producer(kafka, "bench")
        await prod.start()
        try:
            warm = command(0, f"warm-{uuid.uuid4().hex[:6]}")
            await publish_all(prod, [warm])
            await until(lambda: sink.count({warm.subscription.email}) == 1, 60)

            base = [command(i, uuid.uuid4().hex[:6]) for i in range(n)]
            start = time.time()
            await publish_all(prod, base)
            await until(lambda: sink.count({c.subscription.email for c in base}) == n, 300)
            baseline = max(sink.arrivals()[c.subscription.email] for c in base) - start

            sink.stop()
            run = uuid.uuid4().hex[:6]
            queued = [command(i, run) for i in range(n)]
            down_at, rounds = time.time(), 10
            for r in range(rounds):  # commands keep arriving through the outage
                await publish_all(prod, queued[r::rounds])
                await asyncio.sleep(max(0.0, down_at + (r + 1) * outage_s / rounds - time.time()))
            sink = Sink(Path(tmp), sink.port)
            back_at = time.time()
            wanted = {c.subscription.email for c in queued}
            await until(lambda: sink.count(wanted) == n, 900)
            arrivals = [sink.arrivals()[to] for to in wanted]
        except TimeoutError:
            print_logs(Path(tmp))
            raise
        finally:
            await prod.stop()
            process.terminate()
            process.wait(timeout=30)
            sink.stop()
    print(
        f"   no outage (baseline)       : {n} emails delivered {baseline:6.2f} s after publishing"
    )
    print(
        f"   after {back_at - down_at:3.0f} s down          : {n} queued emails delivered "
        f"{max(arrivals) - back_at:6.2f} s after the server came back "
        f"(first after {min(arrivals) - back_at:.2f} s)"
    )


async def main(n: int, with_faust: bool, only_instances: bool) -> None:
    load = os.getloadavg()[0]
    print(f"notifier benchmark: {os.cpu_count()} CPU(s), load average {load:.1f}, {n} emails/run")
    with tempfile.TemporaryDirectory() as tmp:
        sink = Sink(Path(tmp))
        try:
            if not only_instances:
                await run_all(sink, n, with_faust)
            await several_instances(sink, n)
        finally:
            sink.stop()


async def run_all(sink: Sink, n: int, with_faust: bool) -> None:
    reused = await smtp_only(sink, n, per_connection=0)
    fresh = await smtp_only(sink, n, per_connection=1)
    print("\n1. SMTP only (the notifier's Mailer, pre-rendered alert emails)")
    print(f"   one reused connection       : {reused:8.0f} emails/s")
    print(f"   new connection per message  : {fresh:8.0f} emails/s   (baseline)")
    print(f"   reuse speed-up              : {reused / fresh:8.1f} x")

    print("\n2. Ledger alone (batches of 200)     recorded/s   replayed (duplicates)/s")
    with tempfile.TemporaryDirectory() as tmp:
        first, replay = ledger_rate(f"sqlite:///{Path(tmp) / 'bench.db'}", max(n, 2000))
    print(f"   SQLite (WAL)                : {first:8.0f}      {replay:8.0f}")
    with postgres_database() as url:
        if url is None:
            print("   PostgreSQL                  : unreachable (set TEST_POSTGRES_URL)")
        else:
            first, replay = ledger_rate(url, max(n, 2000))
            print(f"   PostgreSQL                  : {first:8.0f}      {replay:8.0f}")
    if with_faust:
        rate = faust_table_rate(2000)
        shown = f"{rate:8.0f}" if rate else "  failed"
        print(f"   faust Table (alternative)   : {shown}      (updates/s, changelog batch 1)")

    print("\n3. End to end: published to Kafka -> notifier -> SMTP accepted")
    print(f"   {'run':46} {'emails/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for label, per_conn, trickle, connections in (
        ("burst, one reused connection", 0, None, 1),
        ("burst, 4 reused connections", 0, None, 4),
        ("burst, new connection per message (baseline)", 1, None, 1),
        ("trickle 50/s, one reused connection", 0, 50.0, 1),
        ("trickle 50/s, new connection per message", 1, 50.0, 1),
    ):
        count = n if trickle is None else min(n, 500)
        r = await end_to_end(sink, count, per_conn, trickle, connections)
        print(f"   {label:46} {r['rate']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000, help="emails per run (default 1000)")
    parser.add_argument(
        "--with-faust", action="store_true", help="also time a faust Table as the digest buffer"
    )
    parser.add_argument(
        "--only-instances", action="store_true", help="only section 4 (1 vs 2 instances)"
    )
    parser.add_argument(
        "--smtp-outage", action="store_true", help="only section 5 (drain after an outage)"
    )
    parser.add_argument("--outage-s", type=float, default=60.0, help="outage length (default 60)")
    parser.add_argument("--serve-sink", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--faust-table", nargs=2, metavar=("N", "BOOTSTRAP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(int(args.serve_sink[0]), Path(args.serve_sink[1]))
    elif args.faust_table:
        serve_faust_table(int(args.faust_table[0]), args.faust_table[1])
    elif args.smtp_outage:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(smtp_outage(args.emails, args.outage_s))
    else:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(main(args.emails, args.with_faust, args.only_instances))
