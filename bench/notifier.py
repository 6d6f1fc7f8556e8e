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

  6. fan-out: one event for 100, 1,000 and 10,000 subscribers through 1/2/4 processes
     x 1/4/8 connections (target: 10,000 accepted within 10 s by two processes).
  7. webhooks: commands published to Kafka -> notifier (ledger, webhook loop) -> a receiver
     in its own process that verifies every signature (401 otherwise) and answers the
     verification handshake: webhooks/s beside section 3's emails/s.
The sink keeps every message it accepts: duplicates (one Message-ID twice) are reported, and
so is whether each recipient's emails arrived in order.

Run: uv run python bench/notifier.py [--emails 1000] [--only-instances] [--fanout 100,1000]
     uv run python bench/notifier.py --quick      (what CI runs: numbers printed only)
     uv run python bench/notifier.py --smtp-outage [--outage-s 60] [--emails 200]
     uv run python bench/notifier.py --only-webhooks [--emails 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shutil
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
from connect311_contracts.webhooks import WebhookChannel, webhook_secret
from connect311_local.broker import free_port, port_answers, running_broker
from connect311_notifier.app import run as run_notifier
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mailer import Mailer, Outcome
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.webhook_payload import VERIFICATION_TYPE, webhook_id
from connect311_notifier.webhook_signing import SignatureError, verify

HOOK_KEY = "bench-webhook-key"
"""The server key the bench's notifier signs with (the receiver derives each secret)."""


class Sink:
    """An aiosmtpd sink in its own process (so it does not share the notifier's CPU/GIL).

    It appends one line per message accepted ("<recipient> <trace> <message-id> <at>") and
    keeps every one, so a message delivered twice (same Message-ID) is seen and reported.
    """

    keeps_order = True  # lines are appended in the order messages were accepted

    def __init__(self, tmp: Path, port: int | None = None, serve: str = "--serve-sink") -> None:
        self.port = port or free_port()
        self.path = tmp / f"sink-{self.port}.log"
        self.path.touch()
        self.process = subprocess.Popen(
            [sys.executable, __file__, serve, str(self.port), str(self.path)]
        )
        self._read = 0
        self._seen: list[tuple[str, str, str, float]] = []
        self._first_to: dict[str, float] = {}
        self._first_trace: dict[str, float] = {}
        while not port_answers(self.port):
            time.sleep(0.01)

    def deliveries(self) -> list[tuple[str, str, str, float]]:
        """Every message accepted: (recipient, trace id or "-", Message-ID or "-", at).

        Read incrementally (only the lines added since the last call): the bench polls
        this while the notifier runs in the same process, and must not slow it down.
        """
        with self.path.open("rb") as log:
            log.seek(self._read)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        for line in complete.decode().splitlines():
            parts = line.split(" ")
            if len(parts) == 4:
                to, trace, mid, at = parts[0], parts[1], parts[2], float(parts[3])
                self._seen.append((to, trace, mid, at))
                self._first_to.setdefault(to, at)
                self._first_trace.setdefault(trace, at)
        return self._seen

    def arrivals(self) -> dict[str, float]:
        """Recipient -> when the sink first accepted a message for it."""
        self.deliveries()
        return self._first_to

    def traced(self) -> dict[str, float]:
        """Trace id (one per command here) -> when the sink first accepted its email."""
        self.deliveries()
        return self._first_trace

    def count(self, wanted: set[str]) -> int:
        """How many of these recipients have mail."""
        return len(wanted.intersection(self.arrivals()))

    def count_traced(self, wanted: set[str]) -> int:
        """How many of these commands (by trace id) have their email."""
        return len(wanted.intersection(self.traced()))

    def duplicates(self) -> int:
        """Messages accepted more than once (by Message-ID): the ledger should make this 0."""
        ids = [mid for _to, _trace, mid, _at in self.deliveries() if mid != "-"]
        return len(ids) - len(set(ids))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class PostfixSink(Sink):
    """Postfix's smtp-sink (C, event-driven): a receiving server that is not the bottleneck.

    It dumps each message to its own file (-d); the file's mtime is when it was accepted.
    Same reading interface as Sink, so every figure and the duplicate check stay the same.
    """

    BINARY = "/usr/sbin/smtp-sink"
    keeps_order = False  # a file's mtime ticks coarsely (ms): equal times cannot be ordered

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        # Its own folder directly in the temp dir (`tmp` is private to us): run as root, it
        # writes as the unprivileged user it switches to. Removed on stop.
        self.folder = Path(tempfile.mkdtemp(prefix=f"c311-smtp-sink-{tmp.name}-"))
        self.folder.chmod(0o777)
        self._done: set[str] = set()
        self._seen = []
        self._first_to = {}
        self._first_trace = {}
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [self.BINARY, *user, "-d", f"{self.folder}/%H%M%S.", f"127.0.0.1:{self.port}", "1024"]
        )
        while not port_answers(self.port):
            time.sleep(0.01)

    def deliveries(self) -> list[tuple[str, str, str, float]]:
        """Every message accepted (new dump files since the last call are read)."""
        with os.scandir(self.folder) as found:
            fresh = [entry for entry in found if entry.name not in self._done]
        for entry in sorted(fresh, key=lambda e: e.stat().st_mtime):
            raw = Path(entry.path).read_bytes()
            if b"\n\n" not in raw:
                continue  # its head is still being written: read it next time
            self._done.add(entry.name)
            head = raw.split(b"\n\n", 1)[0].replace(b"\n", b"\r\n")
            to = header(head, b"X-Rcpt-Args").strip("<>")
            trace, mid = header(head, b"X-Connect311-Trace"), header(head, b"Message-ID")
            at = entry.stat().st_mtime
            self._seen.append((to, trace, mid, at))
            self._first_to.setdefault(to, at)
            self._first_trace.setdefault(trace, at)
        return self._seen

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def header(content: bytes, name: bytes) -> str:
    """One header's value from the message head (no full parse: the sink must stay fast)."""
    head = content.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line[: len(name) + 1].lower() == name.lower() + b":":
            return line[len(name) + 1 :].strip().split(b" ")[0].decode() or "-"
    return "-"


def serve_sink(port: int, path: Path) -> None:
    """The sink process: accept everything, note who, which and when, until SIGTERM."""
    out = path.open("a", buffering=1)

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
            now = time.time()
            content = envelope.original_content or b""
            trace = header(content, b"X-Connect311-Trace")
            mid = header(content, b"Message-ID")
            for to in envelope.rcpt_tos:
                out.write(f"{to} {trace} {mid} {now:.6f}\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    out.close()


def serve_hooks(port: int, path: Path) -> None:
    """The webhook receiver process: verify, answer, note "<sub> <webhook-id> <id> <at>"."""
    import json

    from aiohttp import web

    out = path.open("a", buffering=1)

    async def handle(request: web.Request) -> web.Response:
        sub = request.match_info["sub"]
        raw = await request.read()
        try:
            verify(webhook_secret(HOOK_KEY, sub, 1), request.headers, raw, time.time())
        except SignatureError:
            return web.Response(status=401)  # the notifier dead-letters it: the bench stalls
        payload = json.loads(raw)
        if payload.get("type") == VERIFICATION_TYPE:
            return web.json_response({"challenge": payload["challenge"]})
        hook_id = request.headers["webhook-id"]
        out.write(f"{sub} {hook_id} {hook_id} {time.time():.6f}\n")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{sub}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
    out.close()


def hook_command(i: int, run: str, port: int, subscription: int | None = None) -> SubscriberMatched:
    """Command i for a webhook-only subscription posting to the bench's receiver."""
    base = command(i, run, subscription)
    sub_id = base.subscription.subscription_id
    channel = WebhookChannel(url=f"http://127.0.0.1:{port}/hook/{sub_id}")
    sub = base.subscription.model_copy(update={"webhook": channel, "email_alerts": False})
    return base.model_copy(update={"subscription": sub})


def command(i: int, run: str, recipient: int | None = None) -> SubscriberMatched:
    """Command i of a run: its own event (so its own email), for recipient `recipient`
    (default: its own); the trace id names it in the sink's log."""
    who = i if recipient is None else recipient
    sub = Subscription(
        subscription_id=f"{run}-{who}",
        email=f"{run}-{who}@bench.example",
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
        trace_id=f"{run}.{i}",
    )


def fanout(n: int, run: str) -> list[SubscriberMatched]:
    """One event matching n confirmed subscribers: one email each (a city-wide feed)."""
    base = command(0, run)
    return [
        base.model_copy(
            update={
                "subscription": command(i, run).subscription,
                "trace_id": f"{run}.{i}",
            }
        )
        for i in range(n)
    ]


async def until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Poll until the predicate holds; fail loudly after the timeout."""
    deadline = time.time() + timeout_s
    while True:
        if predicate():
            return
        if time.time() > deadline:
            raise TimeoutError(f"benchmark condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)


def timing(
    arrivals: dict[str, float], published: dict[str, float], start: float
) -> dict[str, float]:
    """Rate (from the first publish to the last arrival) and p50/p99 ms, publish to arrival."""
    latencies = [arrivals[t] - published[t] for t in published]
    last = max(arrivals[t] for t in published)
    return {
        "rate": len(published) / (last - start),
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
    }


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
    sink: Sink,
    n: int,
    per_connection: int,
    trickle_per_s: float | None,
    connections: int = 1,
    recipients: int | None = None,
) -> dict[str, float]:
    """Publish n commands, run the notifier, time each one from publish to SMTP accepted.

    `recipients`: how many people the n emails go to (None: each its own; 1: one person's
    stream, e.g. a department's city-wide feed), so one recipient's queue is exercised too.
    """
    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        settings = NotifierSettings(
            smtp_port=sink.port,
            smtp_messages_per_connection=per_connection,
            database_url=f"sqlite:///{Path(tmp) / 'notifier.db'}",
            http_port=free_port(),
            global_rate_per_s=1e6,
            instant_per_hour=1_000_000,  # a stream is not capped into a digest here
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
            commands = [
                command(i, run, None if recipients is None else i % recipients) for i in range(n)
            ]
            published: dict[str, float] = {}
            start = time.time()
            pending = []
            for i, c in enumerate(commands):
                if trickle_per_s:
                    await asyncio.sleep(max(0.0, start + i / trickle_per_s - time.time()))
                published[str(c.trace_id)] = time.time()
                key = recipient_key(c.subscription.email).encode()
                pending.append(await prod.send("notifications.v1", encode(c), key=key))
            await asyncio.gather(*pending)
            wanted = set(published)
            await until(lambda: sink.count_traced(wanted) == n, 300)
        finally:
            await prod.stop()
            stop.set()
            await task
    return {**timing(sink.traced(), published, start), "in_order": float(in_order(sink, wanted))}


async def end_to_end_hooks(hooks: Sink, n: int, subscriptions: int | None) -> dict[str, float]:
    """Publish n commands for webhook-only subscriptions; time each to the receiver's 2xx.

    `subscriptions`: how many subscriptions the n webhooks belong to (None: each its own,
    so each first passes the verification handshake too); one subscription's webhooks go
    one at a time, in order.
    """
    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        settings = NotifierSettings(
            smtp_port=free_port(),  # no email is sent: the subscriptions are webhook only
            database_url=f"sqlite:///{Path(tmp) / 'notifier.db'}",
            http_port=free_port(),
            group_id=f"bench-hooks-{uuid.uuid4().hex[:6]}",
            webhook_allow=["127.0.0.1:*"],
        )
        stop = asyncio.Event()
        signing = SigningSettings(secret_key=HOOK_KEY, public_base_url="http://localhost:8000")  # type: ignore[arg-type]
        task = asyncio.create_task(run_notifier(settings, kafka, signing, stop))
        prod = producer(kafka, "bench")
        await prod.start()
        try:
            warm = hook_command(0, f"warmup-{uuid.uuid4().hex[:6]}", hooks.port)
            await prod.send_and_wait("notifications.v1", encode(warm), key=b"w")
            await until(lambda: hooks.count_traced({webhook_id(warm)}) == 1, 60)
            run = uuid.uuid4().hex[:6]
            commands = [
                hook_command(
                    i, run, hooks.port, None if subscriptions is None else i % subscriptions
                )
                for i in range(n)
            ]
            published: dict[str, float] = {}
            start = time.time()
            pending = []
            for c in commands:
                published[webhook_id(c)] = time.time()
                key = recipient_key(c.subscription.email).encode()
                pending.append(await prod.send("notifications.v1", encode(c), key=key))
            await asyncio.gather(*pending)
            wanted = set(published)
            await until(lambda: hooks.count_traced(wanted) == n, 300)
        finally:
            await prod.stop()
            stop.set()
            await task
    return timing(hooks.traced(), published, start)


async def webhooks_table(n: int) -> None:
    """Section 7: webhooks/s end to end, in the columns of section 3 (emails/s)."""
    print("\n7. Webhooks end to end: published to Kafka -> notifier -> receiver 2xx (signature")
    print("   verified by the receiver, in its own process; 8 deliveries in flight)")
    print(f"   {'run':46} {'hooks/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'dups':>6}")
    runs = [
        ("burst, a subscription each (+ handshake each)", None),
        (f"burst, {max(1, n // 20)} subscriptions x 20", max(1, n // 20)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        hooks = Sink(Path(tmp), serve="--serve-hooks")
        try:
            for label, subscriptions in runs:
                before = hooks.duplicates()
                r = await end_to_end_hooks(hooks, n, subscriptions)
                print(
                    f"   {label:46} {r['rate']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f} "
                    f"{hooks.duplicates() - before:>6}"
                )
        finally:
            hooks.stop()


def in_order(sink: Sink, traces: set[str]) -> bool:
    """Whether each recipient's emails were accepted in the order their commands were sent."""
    by_recipient: dict[str, list[int]] = {}
    for to, trace, _mid, _at in sink.deliveries():
        if trace in traces:
            by_recipient.setdefault(to, []).append(int(trace.rsplit(".", 1)[1]))
    return all(seq == sorted(seq) for seq in by_recipient.values())


def spawn_notifier(
    kafka: KafkaSettings,
    sink: Sink,
    url: str,
    group: str,
    instance: str,
    log: Path,
    connections: int = 4,
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
        "NOTIFIER_INSTANT_PER_HOUR": "1000000",
        "NOTIFIER_SMTP_CONNECTIONS": str(connections),
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


async def instances_burst(
    sink: Sink, n: int, url: str, count: int, connections: int = 4, one_event: bool = False
) -> dict[str, float | list[int]]:
    """A burst of n emails through `count` notifier processes on one ledger.

    `one_event`: the n emails are one event's fan-out (n subscribers of one feed) rather
    than n events. Returns emails/s, seconds from publish to the last email, duplicates.
    """
    with running_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        await ensure_topics(kafka)
        group = f"bench-multi-{uuid.uuid4().hex[:6]}"
        spawned = [
            spawn_notifier(
                kafka, sink, url, group, f"bench-{i}", Path(tmp) / f"n{i}.log", connections
            )
            for i in range(count)
        ]
        prod = producer(kafka, "bench")
        await prod.start()
        try:
            await until(lambda: all(port_answers(port) for _, port in spawned), 60)
            await asyncio.sleep(4 if count > 1 else 0.5)  # joins wait half a session timeout
            warm = [command(i, f"warm-{uuid.uuid4().hex[:6]}") for i in range(24)]
            for c in warm:  # 24 recipients: every partition, so every member has fetched
                key = recipient_key(c.subscription.email).encode()
                await prod.send_and_wait("notifications.v1", encode(c), key=key)
            await until(lambda: sink.count({c.subscription.email for c in warm}) == 24, 60)
            run = uuid.uuid4().hex[:6]
            commands = fanout(n, run) if one_event else [command(i, run) for i in range(n)]
            start = time.time()
            await publish_all(prod, commands)
            wanted = {str(c.trace_id) for c in commands}
            await until(lambda: sink.count_traced(wanted) == n, 600)
            arrivals = sink.traced()
            last = max(arrivals[t] for t in wanted)
            copies = sum(1 for _to, t, _m, _at in sink.deliveries() if t in wanted) - n
            cpu = sum(cpu_seconds(process.pid) for process, _ in spawned)
            if copies:
                print(f"   {copies} message(s) accepted twice; the notifiers' logs say why:")
                print_logs(Path(tmp))
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
    return {
        "rate": n / (last - start),
        "seconds": last - start,
        "duplicates": copies,
        "shares": [shares.get(f"bench-{i}", 0) for i in range(count)],
        "cpu_ms_per_email": cpu * 1000 / n,  # incl. start-up and warm-up: an upper bound
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def several_instances(sink: Sink, n: int) -> None:
    """Section 4: 1 vs 2 notifier processes on one PostgreSQL ledger, same burst."""
    print("\n4. Several instances: burst published to Kafka -> notifier processes -> SMTP")
    print("   (one consumer group, one PostgreSQL ledger; each process sends over 4 connections)")
    for count in (1, 2, 1, 2):
        with postgres_database() as url:
            if url is None:
                print("   PostgreSQL unreachable (set TEST_POSTGRES_URL)")
                return
            r = await instances_burst(sink, n, url, count)
        label = "1 instance (baseline)" if count == 1 else f"{count} instances"
        split = " + ".join(str(s) for s in r["shares"])  # type: ignore[union-attr]
        print(
            f"   {label:24} {r['rate']:8.0f} emails/s   duplicates {r['duplicates']}"
            f"   (sent, incl. warm-up: {split})"
        )


async def fanout_matrix(
    sink: Sink, sizes: list[int], processes: list[int], connections: list[int]
) -> None:
    """Section 6: one event for n subscribers, through p processes x c connections each."""
    print("\n6. Fan-out: one event -> n subscribers -> SMTP accepted (target: 10,000 in <= 10 s")
    print("   by two processes); PostgreSQL ledger, or SQLite for one process without it")
    print(
        f"   {'n':>7} {'procs':>5} {'conns':>5} {'seconds':>8} {'emails/s':>9} {'dups':>5} "
        f"{'cpu ms/email':>12}  load"
    )
    for n in sizes:
        for count in processes:
            for conns in connections:
                with postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
                    if url is None:
                        if count > 1:
                            print(f"   {n:>7} {count:>5} {conns:>5}  needs PostgreSQL")
                            continue
                        url = f"sqlite:///{Path(tmp) / 'notifier.db'}"
                    r = await instances_burst(sink, n, url, count, conns, one_event=True)
                print(
                    f"   {n:>7} {count:>5} {conns:>5} {r['seconds']:8.2f} {r['rate']:9.0f} "
                    f"{r['duplicates']:>5} {r['cpu_ms_per_email']:>12.2f}  {os.getloadavg()[0]:.1f}"
                )


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


def make_sink(tmp: Path, postfix: bool) -> Sink:
    """The receiving server: aiosmtpd in its own process, or Postfix's smtp-sink."""
    if not postfix:
        return Sink(tmp)
    if not Path(PostfixSink.BINARY).exists():
        raise SystemExit("smtp-sink not found: apt-get install postfix, or drop --smtp-sink")
    return PostfixSink(tmp)


async def main(
    n: int, with_faust: bool, only_instances: bool, fanout_sizes: list[int], postfix: bool
) -> None:
    load = os.getloadavg()[0]
    print(f"notifier benchmark: {os.cpu_count()} CPU(s), load average {load:.1f}, {n} emails/run")
    print(f"receiving server: {'Postfix smtp-sink' if postfix else 'aiosmtpd (own process)'}")
    with tempfile.TemporaryDirectory() as tmp:
        sink = make_sink(Path(tmp), postfix)
        try:
            if not only_instances:
                await run_all(sink, n, with_faust)
            await several_instances(sink, n)
            if fanout_sizes:
                await fanout_matrix(sink, fanout_sizes, [1, 2, 4], [1, 4, 8])
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

    await end_to_end_table(sink, n, quick=False)
    await webhooks_table(n)


async def end_to_end_table(sink: Sink, n: int, quick: bool) -> None:
    """Section 3: many recipients, one recipient's stream, and the baselines."""
    print("\n3. End to end: published to Kafka -> notifier -> SMTP accepted")
    print(f"   {'run':46} {'emails/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'order':>6} {'dups':>5}")
    runs: list[tuple[str, int, float | None, int, int | None]] = [
        ("burst, 4 connections, a recipient each", 0, None, 4, None),
        (f"burst, 4 connections, {max(1, n // 20)} recipients x 20", 0, None, 4, max(1, n // 20)),
        ("burst, one recipient's stream (target >= 200/s)", 0, None, 4, 1),
    ]
    if not quick:
        runs += [
            ("burst, one reused connection", 0, None, 1, None),
            ("burst, new connection per message (baseline)", 1, None, 1, None),
            ("trickle 50/s, one reused connection", 0, 50.0, 1, None),
            ("trickle 50/s, new connection per message", 1, 50.0, 1, None),
        ]
    for label, per_conn, trickle, connections, recipients in runs:
        count = n if trickle is None else min(n, 500)
        before = sink.duplicates()
        r = await end_to_end(sink, count, per_conn, trickle, connections, recipients)
        order = ("yes" if r["in_order"] else "NO") if sink.keeps_order else "n/a"
        print(
            f"   {label:46} {r['rate']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f} {order:>6} "
            f"{sink.duplicates() - before:>5}"
        )


async def quick(n: int, postfix: bool) -> None:
    """--quick: the figures CI prints on every change (small, no timed assertions)."""
    load = os.getloadavg()[0]
    print(f"notifier benchmark --quick: {os.cpu_count()} CPU(s), load average {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        sink = make_sink(Path(tmp), postfix)
        try:
            reused = await smtp_only(sink, n, per_connection=0)
            print(f"\n1. SMTP only, one reused connection: {reused:8.0f} emails/s")
            await end_to_end_table(sink, n, quick=True)
            await fanout_matrix(sink, [n], [1], [4])
        finally:
            sink.stop()
    await webhooks_table(n)


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
    parser.add_argument(
        "--fanout",
        default="100,1000,10000",
        help="section 6: one event to this many subscribers, comma separated ('' skips it)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small runs of sections 1, 3 and 6 (CI; ~30 s)"
    )
    parser.add_argument(
        "--smtp-sink",
        action="store_true",
        help="receive with Postfix's smtp-sink (apt-get install postfix) instead of aiosmtpd",
    )
    parser.add_argument(
        "--only-webhooks", action="store_true", help="only section 7 (webhooks end to end)"
    )
    parser.add_argument("--serve-sink", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-hooks", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--faust-table", nargs=2, metavar=("N", "BOOTSTRAP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(int(args.serve_sink[0]), Path(args.serve_sink[1]))
    elif args.serve_hooks:
        serve_hooks(int(args.serve_hooks[0]), Path(args.serve_hooks[1]))
    elif args.only_webhooks:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(webhooks_table(args.emails))
    elif args.faust_table:
        serve_faust_table(int(args.faust_table[0]), args.faust_table[1])
    elif args.quick:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(quick(min(args.emails, 200), args.smtp_sink))
    elif args.smtp_outage:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(smtp_outage(args.emails, args.outage_s))
    else:
        logging.basicConfig(level=logging.WARNING)
        sizes = [int(size) for size in args.fanout.split(",") if size]
        asyncio.run(main(args.emails, args.with_faust, args.only_instances, sizes, args.smtp_sink))
