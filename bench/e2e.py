"""End-to-end benchmark: push -> last email SMTP-accepted, at fixed rates and for fan-outs.

Run: `uv run python bench/e2e.py [--rates 50,200,1000] [--duration 60] [--notifiers 1,2]
[--fanout 100,1000,10000] [--residents 1000] [--smtp-sink] [--env NAME=VALUE]
[--backfill-rows N] [--baseline-src PATHS]`, or `--quick` (what CI runs: short stages,
numbers printed only).
Per notifier count (and per variant: --baseline-src first, then this tree) it starts its own
broker, a receiving SMTP server (aiosmtpd in this process, or Postfix's smtp-sink) and the
four services as real processes (SQLite; with two notifiers one PostgreSQL ledger,
TEST_POSTGRES_URL's server), publishes `residents` confirmed circle subscribers over the
bench city (each request reaches a handful, 1-20) and one city-wide feed per fan-out size,
then:

  rate R     pushes R requests/s for `duration` s through the ingestor's push endpoint (open
             loop: a request's clock starts when it was due); its latency is push -> its LAST
             recipient's email accepted (inf if any never arrived), over every request sent;
             emails/expected and requests complete beside it. Each stage drains first.
  fan-out N  one request for a city-wide feed of N readers: push -> first, median, last email.
  backfill   imports N historic requests (Open311 CSV, --backfill) and times ingest + match.

Each stage also prints the CPU each process used per email accepted (from /proc) and the
services' own stage histograms (matcher, notifier). Targets (issue 15): p99 < 1 s at 200
events/s, and at 1,000 events/s with two notifiers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from e2e_backfill import backfill
from e2e_sink import SinkRecorder
from e2e_stack import (
    CpuMeter,
    Recorder,
    notifier_ports,
    quiet,
    stage_means,
    subscriptions_applied,
    with_notifiers,
)
from e2e_traffic import FANOUT_POINT, Traffic, fan_agency, fan_reader, seed
from machine_info import machine
from notifier_ledger import postgres_database
from rich.console import Console

from connect311_local.broker import running_broker
from connect311_local.stack import LocalPorts, service_specs
from connect311_local.supervisor import Supervisor

TOKEN = "bench-token"
AGENCY = "Bench Works"
DRAIN_QUIET_S = 3.0
TICK_S = 0.1  # one push per tick on schedule
MAX_PUSH = 1_000  # requests in one push at most (the ingestor's body limit allows it)


def record(number: int, when: datetime, lat: float, long: float, agency: str) -> dict[str, Any]:
    """One request in Open311 field names; its number is in its id and description."""
    return {
        "service_request_id": f"benchreq-{number}",
        "status": "open",
        "service_code": "POTHOLE",
        "service_name": "Pothole",
        "agency_responsible": agency,
        "description": f"benchreq-{number}",
        "address": "175 5th St N",
        "lat": lat,
        "long": long,
        "requested_datetime": when.isoformat(),
        "updated_datetime": when.isoformat(),
    }


def cpu_line(cpu: dict[str, float], emails: int) -> str:
    """CPU ms per email accepted, per process, over one stage (its drain included)."""
    per = {name: 1000 * spent / max(1, emails) for name, spent in cpu.items()}
    parts = [f"{name} {ms:.2f}" for name, ms in sorted(per.items(), key=lambda p: -p[1])]
    return f"cpu ms per email: {', '.join(parts)}; total {sum(per.values()):.2f}"


def pct(values: list[float], q: float) -> float:
    """The q-th quantile (nearest rank below), inf included; nan when empty."""
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else math.nan


def drain(recorder: Any, done: Any, limit_s: float = 900.0) -> float:
    """Wait until `done()` or until no email has arrived for DRAIN_QUIET_S; seconds waited."""
    start = last_change = time.monotonic()
    count = recorder.total()
    while not done() and time.monotonic() - start < limit_s:
        time.sleep(0.25)
        if recorder.total() != count:
            count, last_change = recorder.total(), time.monotonic()
        elif time.monotonic() - last_change > DRAIN_QUIET_S:
            break
    return time.monotonic() - start


def run_rate(
    push_url: str, recorder: Any, traffic: Traffic, rate: int, duration: float, first: int
) -> dict[str, Any]:
    """Push `rate` requests/s for `duration` s; per request, push -> its last email.

    Open loop: a request's time is when it was due (`rate` from the start), not when the
    client got to send it, so a slow push answer delays the figures instead of hiding in
    them (no coordinated omission). Behind schedule, the next push carries every request
    due by then (at most MAX_PUSH), as a client catching up would.
    """
    sent: dict[int, float] = {}
    per_tick = max(1, math.ceil(rate * TICK_S))
    number, start, wall = first, time.monotonic(), time.time()
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        while time.monotonic() - start < duration:
            due = first + math.ceil((time.monotonic() - start) * rate)
            count = min(MAX_PUSH, max(per_tick, due - number))
            now = datetime.now(UTC)
            places = [(n, traffic.place(n)) for n in range(number, number + count)]
            batch = [record(n, now, p.lat, p.long, AGENCY) for n, p in places]
            client.post(push_url, json=batch).raise_for_status()
            sent.update((n, wall + (n - first) / rate) for n, _ in places)
            number += count
            sleep = start + (number - first) / rate - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
    achieved = len(sent) / (time.monotonic() - start)
    load = os.getloadavg()[0]  # at the end of the pushing, before draining
    expected = {(n, r) for n in sent for r in traffic.place(n).recipients}
    before = len(recorder.snapshot())
    drained = drain(recorder, lambda: recorder.holds(expected))
    arrived = recorder.snapshot()
    per_email = [arrived.get(k, math.inf) - sent[k[0]] for k in expected]
    per_request = [
        max(arrived.get((n, r), math.inf) for r in traffic.place(n).recipients) - t
        for n, t in sent.items()
    ]
    return {
        "rate": rate,
        "achieved": achieved,
        "sent": len(sent),
        "complete": sum(1 for v in per_request if v < math.inf),
        "emails": len(expected & arrived.keys()),
        "expected": len(expected),
        "p50": pct(per_request, 0.5),
        "p99": pct(per_request, 0.99),
        "email_p99": pct(per_email, 0.99),
        "next": number,
        "load": load,
        "drain_s": drained,
        "after_push": len(arrived) - before,
    }


def run_fanout(push_url: str, recorder: Any, size: int, number: int) -> dict[str, Any]:
    """One request for the feed of `size` readers: push -> first, median and last email."""
    readers = [fan_reader(size, i) for i in range(size)]
    lat, long = FANOUT_POINT
    pushed = time.time()
    httpx.post(
        push_url,
        json=[record(number, datetime.now(UTC), lat, long, fan_agency(size))],
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    ).raise_for_status()
    wanted = {(number, r) for r in readers}
    drain(recorder, lambda: recorder.holds(wanted))
    arrived = recorder.snapshot()
    times = sorted(arrived.get(k, math.inf) - pushed for k in wanted)
    got = sum(1 for t in times if t < math.inf)
    last = max(t for t in times if t < math.inf) if got else math.nan
    return {
        "size": size,
        "emails": got,
        "first": times[0],
        "p50": statistics.median(times),
        "last": times[-1],
        "rate": got / last if got else 0.0,
        "load": os.getloadavg()[0],
    }


@contextlib.contextmanager
def ledger(kind: str) -> Iterator[str | None]:
    """The notifier ledger's URL: None (the local run's SQLite) or a scratch PostgreSQL db."""
    if kind == "sqlite":
        yield None
        return
    with postgres_database() as url:
        if url is None:
            raise SystemExit("PostgreSQL unreachable (TEST_POSTGRES_URL): needed for its ledger")
        yield url


def run_stack(args: argparse.Namespace, notifiers: int, pythonpath: str | None) -> dict[str, Any]:
    """One fresh stack: seed, every rate stage, every fan-out, the backfill; its results."""
    kind = args.ledger if args.ledger != "auto" else ("sqlite" if notifiers == 1 else "postgres")
    traffic = Traffic(args.residents)
    feeds = [int(s) for s in args.fanout.split(",") if s]
    out: dict[str, Any] = {"rates": [], "fanouts": [], "ledger": kind}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_broker() as broker,
        ledger(kind) as ledger_url,
    ):
        state = Path(tmp)
        ports = LocalPorts.free().model_copy(update={"broker_port": broker.port})
        recorder: Any
        if args.smtp_sink:
            recorder = SinkRecorder(state)
            ports = ports.model_copy(update={"smtp_port": recorder.port})
        else:
            recorder = Recorder()
            smtp = Controller(recorder, hostname="127.0.0.1", port=ports.smtp_port)
            smtp.start()
        out["recorder"] = recorder
        extra = {
            "INGESTOR_PUSH_TOKENS": TOKEN,
            "NOTIFIER_INSTANT_PER_HOUR": "100000000",
            "NOTIFIER_GLOBAL_RATE_PER_S": "100000",
            **({"PYTHONPATH": pythonpath} if pythonpath else {}),
            **dict(pair.split("=", 1) for pair in args.env),
        }
        supervisor = Supervisor(Console(file=io.StringIO()), state / "logs", verbose=False)
        specs = with_notifiers(service_specs(ports, state, extra), notifiers, ledger_url)
        specs = [quiet(spec) for spec in specs]
        try:
            started = time.monotonic()
            # The map API first (it creates the topics), then the rest side by side.
            supervisor.wait_healthy(supervisor.start(specs[0]))
            for running in [supervisor.start(spec) for spec in specs[1:]]:
                supervisor.wait_healthy(running)
            print(f"  services healthy in {time.monotonic() - started:.1f} s", flush=True)
            started = time.monotonic()
            published = seed(broker.bootstrap_servers, traffic, feeds)
            while subscriptions_applied(ports) < published:
                time.sleep(0.2)
            print(
                f"  {published:,} subscriptions seeded and applied in "
                f"{time.monotonic() - started:.1f} s; {traffic.spread()}",
                flush=True,
            )
            push = f"http://127.0.0.1:{ports.ingestor_port}/api/v1/requests"
            pids = {r.spec.name: r.process.pid for r in supervisor.running}
            pids["broker"] = broker.process.pid
            if args.smtp_sink:
                pids["smtp-sink"] = recorder.sink.process.pid
            database = ledger_url.rsplit("/", 1)[1] if ledger_url else None
            meter = CpuMeter(pids, database)
            number = 0
            for rate in (int(r) for r in args.rates.split(",") if r):
                print(f"  {rate} requests/s for {args.duration:.0f} s ...", flush=True)
                result = run_rate(push, recorder, traffic, rate, args.duration, number)
                number = result["next"]
                result["cpu"] = meter.used()
                out["rates"].append(result)
                print(f"    {cpu_line(result['cpu'], result['emails'])}", flush=True)
                print(f"    stages: {stage_means(ports, notifier_ports(specs))}", flush=True)
                print(f"    drained in {result['drain_s']:.1f} s (next stage starts empty)")
            for size in feeds:
                print(f"  fan-out: one request for {size:,} readers ...", flush=True)
                meter.used()
                fanned = run_fanout(push, recorder, size, number)
                fanned["cpu"] = meter.used()
                out["fanouts"].append(fanned)
                print(f"    {cpu_line(fanned['cpu'], fanned['emails'])}", flush=True)
                number += 1
            if args.backfill_rows:
                print(f"  backfilling {args.backfill_rows:,} historic requests ...", flush=True)
                ingest_env = {**next(s.env for s in specs if s.name == "ingestor")}
                out["backfill"] = backfill(ports, state, args.backfill_rows, ingest_env, record)
        finally:
            supervisor.stop_all()
            recorder.stop() if args.smtp_sink else smtp.stop()
    return out


def report(label: str, out: dict[str, Any]) -> None:
    """One configuration's tables."""
    print(f"\n{label} (ledger: {out['ledger']})")
    print(
        f"{'target/s':>9} {'achieved/s':>11} {'emails/expected':>16} {'requests':>13}"
        f" {'p50 s':>7} {'p99 s':>7} {'email p99':>9} {'load':>5} {'drain s':>7}"
    )
    for r in out["rates"]:
        print(
            f"{r['rate']:>9} {r['achieved']:>11.0f} {r['emails']:>7}/{r['expected']:<8}"
            f" {r['complete']:>6}/{r['sent']:<6} {r['p50']:>7.3f} {r['p99']:>7.3f}"
            f" {r['email_p99']:>9.3f} {r['load']:>5.1f} {r['drain_s']:>7.1f}"
        )
    for f in out["fanouts"]:
        print(
            f"fan-out {f['size']:>6,}: {f['emails']:,}/{f['size']:,} emailed; first"
            f" {f['first']:.2f} s, median {f['p50']:.2f} s, last {f['last']:.2f} s"
            f" ({f['rate']:.0f} emails/s), load {f['load']:.1f}"
        )
    sustained = [
        r["rate"]
        for r in out["rates"]
        if r["emails"] == r["expected"] and r["p99"] < 1.0 and r["achieved"] >= 0.95 * r["rate"]
    ]
    rec = out["recorder"]
    print(
        f"duplicates: {rec.duplicates}; untagged: {rec.untagged}; highest sustained rate with"
        f" p99 < 1 s: {max(sustained) if sustained else 'none'} events/s"
    )
    if "backfill" in out:
        filled = out["backfill"]
        print(
            f"backfill {filled['rows']:,} rows: ingest {filled['ingest_s']:.0f} s, "
            f"ingest + match {filled['ingest_and_match_s']:.0f} s"
        )


def main() -> None:
    """Parse arguments, run every configuration, print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,200,1000", help="events/s, comma separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--notifiers", default="1", help="notifier processes, e.g. 1,2")
    parser.add_argument("--ledger", choices=("auto", "sqlite", "postgres"), default="auto")
    parser.add_argument("--fanout", default="100,1000,10000", help="feed sizes; '' skips it")
    parser.add_argument("--residents", type=int, default=1_000, help="circle subscribers")
    parser.add_argument(
        "--backfill-rows", type=int, default=0, help="0 skips it (the issue's target: 1,000,000)"
    )
    parser.add_argument(
        "--baseline-src",
        default="",
        help="source folders (os.pathsep-joined) put first on the services' path for a"
        " baseline run before each configuration's run of this tree",
    )
    parser.add_argument(
        "--smtp-sink", action="store_true", help="Postfix's smtp-sink receives, not aiosmtpd"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every service, e.g. NOTIFIER_SMTP_RECORD_EVERY=10",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI: 50 events/s for 5 s, a 100 fan-out, no backfill"
    )
    args = parser.parse_args()
    # A stopped bench stops its services (each runs in its own session) on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.rates, args.duration, args.fanout, args.backfill_rows = "50", 5.0, "100", 0
        args.residents = 300
    print(f"machine: {machine()}")
    variants = [("baseline", args.baseline_src)] if args.baseline_src else []
    variants.append(("this tree", None))
    results = []
    for notifiers in (int(n) for n in args.notifiers.split(",")):
        for name, path in variants:
            label = f"{notifiers} notifier(s), {name}" + "".join(f", {e}" for e in args.env)
            label += ", smtp-sink" if args.smtp_sink else ", aiosmtpd"
            print(f"\n== {label}", flush=True)
            results.append((label, run_stack(args, notifiers, path or None)))
            report(label, results[-1][1])  # now too: a long run stopped later keeps it
    print("\nlogs: every service at WARNING (--log-level); load at the end: " + machine())
    print(
        "p50/p99: push -> the request's last email accepted, over every request sent (inf:"
        " some email never arrived); email p99: push -> each email"
    )
    for label, out in results:
        report(label, out)


if __name__ == "__main__":
    main()
