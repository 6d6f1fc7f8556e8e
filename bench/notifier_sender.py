"""The sender alone: one event's n emails already in a PostgreSQL ledger, drained by one
Sender (this process, `--conns` SMTP connections) into a sink. No Kafka, no intake: what
the send path costs by itself. `--baseline-src` runs each design in its own process (the
previous one with its source first on PYTHONPATH), `--repeat` times, alternating which goes
first; `--record-every 1` is the service's default (one commit per email). `--per-event K`
spreads the emails over events of K recipients each (the e2e bench's circles reach ~4.6),
each event its own request time and each recipient its own distance; by default one event
reaches them all (a city-wide feed).

    uv run python bench/notifier_sender.py --emails 5000 --conns 4 [--smtp-sink]
        [--record-every 1] [--per-event 5]
        [--baseline-src /tmp/base/services/notifier/src --repeat 2]
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
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from notifier_commands import command, fanout, until
from notifier_ledger import postgres_database
from notifier_sinks import make_sink

import connect311_notifier
from connect311_contracts.notifications import SubscriberMatched, recipient_key
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mailer import Mailer
from connect311_notifier.metrics import Metrics
from connect311_notifier.render import Renderer
from connect311_notifier.sender import Sender
from connect311_notifier.settings import NotifierSettings


def by_event(n: int, per_event: int, run: str) -> list[SubscriberMatched]:
    """n emails, `per_event` recipients to an event (0: one event for all, `fanout`)."""
    if per_event <= 0:
        return fanout(n, run)
    draw = random.Random(run)
    out: list[SubscriberMatched] = []
    for i in range(n):
        if i % per_event == 0:  # a new event, of a request with its own time
            base = command(i, run)
            request = base.request_event.request
            when = request.requested_datetime + timedelta(seconds=i)
            event = base.request_event.model_copy(
                update={"request": request.model_copy(update={"requested_datetime": when})}
            )
            lead = base.model_copy(update={"request_event": event})
        mine = {"subscription": command(i, run).subscription, "trace_id": f"{run}.{i}"}
        out.append(lead.model_copy(update={**mine, "distance_m": draw.uniform(5, 3000)}))
    return out


async def drain(
    url: str, n: int, conns: int, postfix: bool, record_every: int, per_event: int
) -> str:
    """Record n emails, then time the Sender until the sink has every one."""
    with tempfile.TemporaryDirectory() as tmp:
        sink = make_sink(Path(tmp), postfix)
        engine = create_engine(url)
        try:
            settings = NotifierSettings(
                database_url=url,
                smtp_port=sink.port,
                global_rate_per_s=1e6,
                instant_per_hour=1_000_000,
                smtp_connections=conns,
                smtp_record_every=record_every,  # bench/notifier.py's processes: 10
                instance_id="bench-sender",
            )
            ledger = Ledger(engine, instant_cap=settings.instant_per_hour)
            ledger.create_schema()
            plan = make_planner(settings, lambda: datetime.now(UTC))
            commands = by_event(n, per_event, uuid.uuid4().hex[:6])
            for b in range(0, n, 500):
                items = [
                    Incoming(c, recipient_key(c.subscription.email), time.time())
                    for c in commands[b : b + 500]
                ]
                ledger.record(items, plan, time.time())
            links = LinkBuilder("http://localhost:8000", "bench")
            mailers = [Mailer(settings) for _ in range(conns)]
            renderer = Renderer.create(settings, links)
            sender = Sender(settings, ledger, mailers, renderer, None, Metrics())  # type: ignore[arg-type]
            wanted = {str(c.trace_id) for c in commands}
            stop = asyncio.Event()
            polls = [0.0]  # CPU of polling the sink (this thread), not the sender's

            def finished() -> bool:
                before = time.thread_time()
                try:
                    return task.done() or sink.count_traced(wanted) == n
                finally:
                    polls[0] += time.thread_time() - before

            start, cpu = time.time(), time.process_time()
            task = asyncio.create_task(sender.run(stop))
            await until(finished, 600, 0.25)
            # To the poll that saw the last (a little over), less the polls themselves
            # (scanning smtp-sink's folder each time was a third of the process's CPU).
            cpu = time.process_time() - cpu - polls[0]
            commits = getattr(getattr(sender, "records", None), "commits", None)
            wall = max(sink.traced()[t] for t in wanted) - start
            stop.set()
            sender.wake.set()
            await task
            for mailer in mailers:
                await mailer.close()
            design = "previous" if "/tmp/" in connect311_notifier.__file__ else "this"
            return (
                f"{design:8} {n} emails, {per_event or n} an event, {conns} conns, "
                f"record every {record_every}: "
                f"{wall:6.2f} s ({n / wall:4.0f}/s), "
                f"cpu {cpu * 1000 / n:.2f} ms/email (incl. the database threads), "
                f"duplicates {sink.duplicates()}, load {os.getloadavg()[0]:.1f}"
                + (f", {commits} sent-mark commits" if commits is not None else "")
            )
        finally:
            engine.dispose()
            sink.stop()


async def main(n: int, conns: int, postfix: bool, record_every: int, per_event: int) -> None:
    with postgres_database() as url:
        if url is None:
            raise SystemExit("PostgreSQL unreachable (set TEST_POSTGRES_URL)")
        print(await drain(url, n, conns, postfix, record_every, per_event), flush=True)


def alternate(args: argparse.Namespace) -> None:
    """Each design in its own process, `args.repeat` times, the order alternating."""
    same = [
        f"--emails={args.emails}",
        f"--conns={args.conns}",
        f"--record-every={args.record_every}",
        f"--per-event={args.per_event}",
    ] + (["--smtp-sink"] if args.smtp_sink else [])
    designs = [args.baseline_src, None]
    for turn in range(args.repeat):
        for src in designs[:: -1 if turn % 2 else 1]:
            path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
            env = {**os.environ, "PYTHONPATH": path}
            subprocess.run([sys.executable, __file__, *same], env=env, check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--conns", type=int, default=4)
    parser.add_argument("--smtp-sink", action="store_true", help="Postfix's smtp-sink")
    parser.add_argument(
        "--record-every", type=int, default=10, help="NOTIFIER_SMTP_RECORD_EVERY (default 10)"
    )
    parser.add_argument(
        "--per-event", type=int, default=0, help="recipients an event (default: all, one event)"
    )
    parser.add_argument("--baseline-src", help="the previous notifier's src folder, run beside")
    parser.add_argument("--repeat", type=int, default=1, help="with --baseline-src: pairs")
    args = parser.parse_args()
    if args.baseline_src:
        alternate(args)
    else:
        asyncio.run(
            main(args.emails, args.conns, args.smtp_sink, args.record_every, args.per_event)
        )
