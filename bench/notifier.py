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
import logging
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from notifier_commands import command, hook_command, timing, until, with_connections
from notifier_instances import fanout_matrix, several_instances, smtp_outage
from notifier_ledger import faust_table_rate, ledger_rate, postgres_database, serve_faust_table
from notifier_sinks import HOOK_KEY, Sink, in_order, make_sink, serve_hooks, serve_sink

from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.notifications import recipient_key
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_local.broker import free_port, running_broker
from connect311_notifier.app import run as run_notifier
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mailer import Mailer, Outcome
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.webhook_payload import webhook_id


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


async def main(
    n: int,
    with_faust: bool,
    only_instances: bool,
    fanout_sizes: list[int],
    postfix: bool,
    matrix: tuple[list[int], list[int], str | None, bool, int],
) -> None:
    load = os.getloadavg()[0]
    print(f"notifier benchmark: {os.cpu_count()} CPU(s), load average {load:.1f}, {n} emails/run")
    print(f"receiving server: {'Postfix smtp-sink' if postfix else 'aiosmtpd (own process)'}")
    with tempfile.TemporaryDirectory() as tmp:
        sink = make_sink(Path(tmp), postfix)
        try:
            procs, conns, baseline, only_fanout, repeat = matrix
            if not only_instances and not only_fanout:
                await run_all(sink, n, with_faust)
            if not only_fanout:
                await several_instances(sink, n)
            if fanout_sizes:
                await fanout_matrix(sink, fanout_sizes, procs, conns, baseline, repeat)
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


async def stream(n: int, postfix: bool) -> None:
    """--only-stream: n emails to one recipient (another notifier first on PYTHONPATH: its)."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = make_sink(Path(tmp), postfix)
        try:
            r = await end_to_end(sink, n, 0, None, 4, 1)
            order = ("yes" if r["in_order"] else "NO") if sink.keeps_order else "n/a"
            print(
                f"one recipient's stream: {n} emails, {r['rate']:.0f}/s, p50 {r['p50']:.0f} ms, "
                f"in order: {order}, dups {sink.duplicates()}, load {os.getloadavg()[0]:.1f}"
            )
        finally:
            sink.stop()


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
    parser.add_argument("--fanout-procs", default="1,2,4", help="section 6's process counts")
    parser.add_argument("--fanout-conns", default="1,4,8", help="section 6's connections each")
    parser.add_argument(
        "--only-fanout", action="store_true", help="only section 6 (the fan-out matrix)"
    )
    parser.add_argument(
        "--fanout-repeat",
        type=int,
        default=1,
        help="section 6: run each row this many times, the designs' order alternating",
    )
    parser.add_argument(
        "--baseline-src",
        help="section 6 beside another notifier: its src folder (e.g. `git archive HEAD "
        "services/notifier/src | tar -x -C /tmp/base`, then /tmp/base/services/notifier/src)",
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
    parser.add_argument("--only-stream", action="store_true", help="one recipient's stream")
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
    elif args.only_stream:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(stream(args.emails, args.smtp_sink))
    elif args.quick:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(quick(min(args.emails, 200), args.smtp_sink))
    elif args.smtp_outage:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(smtp_outage(args.emails, args.outage_s))
    else:
        logging.basicConfig(level=logging.WARNING)
        sizes = [int(size) for size in args.fanout.split(",") if size]
        procs = [int(p) for p in args.fanout_procs.split(",")]
        conns = [int(c) for c in args.fanout_conns.split(",")]
        matrix = (procs, conns, args.baseline_src, args.only_fanout, args.fanout_repeat)
        asyncio.run(
            main(args.emails, args.with_faust, args.only_instances, sizes, args.smtp_sink, matrix)
        )
