"""bench/notifier.py sections 4-6: notifier processes (the real CLI) on one ledger: 1 vs 2
instances, the fan-out matrix, and the drain after an SMTP outage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from notifier_commands import command, fanout, publish_all, until
from notifier_ledger import postgres_database
from notifier_sinks import Sink

from connect311_bus.kafka import encode, ensure_topics, producer
from connect311_contracts.notifications import recipient_key
from connect311_contracts.settings import KafkaSettings
from connect311_local.broker import free_port, port_answers, running_broker
from connect311_notifier.ledger import create_engine


def spawn_notifier(
    kafka: KafkaSettings,
    sink: Sink,
    url: str,
    group: str,
    instance: str,
    log: Path,
    connections: int = 4,
    src: str | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """One notifier process (the real CLI) and its HTTP port; `src`: another notifier's
    source folder first on its path (e.g. today's design, from `git archive HEAD`)."""
    http_port = free_port()
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "NOTIFIER_SMTP_PORT": str(sink.port),
        "NOTIFIER_DATABASE_URL": url,
        "NOTIFIER_GROUP_ID": group,
        "NOTIFIER_INSTANCE_ID": instance,
        "NOTIFIER_HTTP_PORT": str(http_port),
        "NOTIFIER_GLOBAL_RATE_PER_S": "1000000",
        "NOTIFIER_INSTANT_PER_HOUR": "1000000",
        "NOTIFIER_SMTP_CONNECTIONS": str(connections),
        # The burst setting measured (the service's default, 1, keeps a kill -9's resend
        # window at one email per connection).
        "NOTIFIER_SMTP_RECORD_EVERY": "10",
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
    sink: Sink,
    n: int,
    url: str,
    count: int,
    connections: int = 4,
    one_event: bool = False,
    src: str | None = None,
    timeout_s: float = 600,
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
                kafka, sink, url, group, f"bench-{i}", Path(tmp) / f"n{i}.log", connections, src
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
            # CPU of the burst alone: start-up (imports compile every module when bytecode
            # is not cached, as here: PYTHONDONTWRITEBYTECODE) and warm-up left out.
            cpu_before = sum(cpu_seconds(process.pid) for process, _ in spawned)
            start = time.time()
            await publish_all(prod, commands)
            wanted = {str(c.trace_id) for c in commands}
            exited = lambda: any(process.poll() is not None for process, _ in spawned)  # noqa: E731
            # Times come from the sink's own records: polling more often would not make them
            # finer, only take CPU from the notifiers (smtp-sink's folder is scanned each time).
            await until(lambda: exited() or sink.count_traced(wanted) == n, timeout_s, 0.25)
            if exited():  # e.g. a sender that crashed: nobody is left to send the rest
                raise TimeoutError("a notifier process exited before all were accepted")
            arrivals = sink.traced()
            last = max(arrivals[t] for t in wanted)
            copies = sum(1 for _to, t, _m, _at in sink.deliveries() if t in wanted) - n
            cpu = sum(cpu_seconds(process.pid) for process, _ in spawned) - cpu_before
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
        recorded = last_recorded(url) - start
    return {
        "rate": n / (last - start),
        "seconds": last - start,
        "duplicates": copies,
        "shares": [shares.get(f"bench-{i}", 0) for i in range(count)],
        "cpu_ms_per_email": cpu * 1000 / n,
        "recorded_s": recorded,  # the last command into the ledger (intake), after publish
    }


def last_recorded(url: str) -> float:
    """When the ledger recorded its newest email (the consumer's intake of the burst)."""
    import sqlalchemy as sa

    from connect311_notifier.ledger import emails

    engine = create_engine(url)
    with engine.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(emails.c.created_at))).scalar()
    engine.dispose()
    return float(latest or 0.0)


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
    sink: Sink,
    sizes: list[int],
    processes: list[int],
    connections: list[int],
    baseline: str | None = None,
    repeat: int = 1,
) -> None:
    """Section 6: one event for n subscribers, through p processes x c connections each.

    `baseline`: another notifier's source folder (today's design): each row is run with it
    and with this checkout's notifier, in the same run; `repeat` times, alternating which
    goes first (a shared machine's load drifts).
    """
    print("\n6. Fan-out: one event -> n subscribers -> SMTP accepted (target: 10,000 in <= 10 s")
    print("   by two processes); PostgreSQL ledger, or SQLite for one process without it")
    print(
        f"   {'n':>7} {'procs':>5} {'conns':>5} {'seconds':>8} {'emails/s':>9} "
        f"{'dups':>5} {'cpu ms/email':>12} {'intake s':>8}  load  notifier"
    )
    designs = [("baseline", baseline), ("this", None)] if baseline else [("this", None)]
    for n in sizes:
        for count in processes:
            for conns in connections:
                for turn in range(repeat):
                    for design, src in designs[:: -1 if turn % 2 else 1]:
                        await _fanout_row(sink, n, count, conns, design, src)


async def _fanout_row(
    sink: Sink, n: int, count: int, conns: int, design: str, src: str | None
) -> None:
    head = f"   {n:>7} {count:>5} {conns:>5}"
    with postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
        if url is None:
            if count > 1:
                print(f"{head}  needs PostgreSQL  {design}")
                return
            url = f"sqlite:///{Path(tmp) / 'notifier.db'}"
        # A design that stalls or crashes is reported (logs above), not waited for forever.
        limit = max(120.0, n / 50)
        try:
            r = await instances_burst(sink, n, url, count, conns, True, src, limit)
        except TimeoutError as exc:
            print(f"{head}  failed: {exc}  {design}")
            return
    print(
        f"{head} {r['seconds']:8.2f} {r['rate']:9.0f} "
        f"{r['duplicates']:>5} {r['cpu_ms_per_email']:>12.2f} {r['recorded_s']:>8.2f}"
        f"  {os.getloadavg()[0]:4.1f}  {design}"
    )


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
