"""End-to-end benchmark: ingest -> SMTP accepted latency at fixed rates, and backfill wall time.

Run: `uv run python bench/e2e.py [--rates 50,200,1000] [--duration 60] [--backfill-rows N]`,
or `--quick` (what CI runs: one short stage, numbers printed only).
Starts its own broker, a recording SMTP server and the four services as real processes
(SQLite databases in a temp folder), signs up one confirmed city-wide subscriber, then:

  rate R     pushes R requests/s for `duration` seconds through the ingestor's push endpoint;
             each request matches the subscriber once; latency = SMTP accepted - pushed.
  backfill   imports N historic requests (a generated CSV, Open311 columns) with --backfill and
             times ingest + match until the matcher has read every event (no email expected).

Targets from the issue: p99 < 1 s at 200 events/s; backfill of 1M < 5 min.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from machine_info import machine
from rich.console import Console

from connect311_local.broker import running_broker
from connect311_local.stack import LocalPorts, service_specs
from connect311_local.supervisor import ProcessSpec, Supervisor

TOKEN = "bench-token"
AGENCY = "Bench Works"
CONFIRM = re.compile(r"https?://\S+/api/subscriptions/confirm\?token=[\w.\-]+")
TAG = re.compile(r"benchreq-(\d+)")
# What the services read: a `--log-level` option (there is no LOG_LEVEL variable). The map
# API, matcher and notifier take it after `run`; the ingestor before its command (one option
# for every command: `connect311-ingestor --log-level warning run`).
QUIET = ("--log-level", "warning")
LEVELLED = {"map-api", "matcher", "notifier"}
DRAIN_QUIET_S = 2.0


def quiet(spec: ProcessSpec) -> ProcessSpec:
    """The spec with WARNING logging, the option where each service reads it."""
    if spec.name in LEVELLED:
        return replace(spec, argv=(*spec.argv, *QUIET))
    if spec.name == "ingestor":
        program, *command = spec.argv
        return replace(spec, argv=(program, *QUIET, *command))
    return spec


class Recorder:
    """SMTP handler: when each message was accepted, by the request number it mentions."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.duplicates = 0
        self.texts: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        text = plain_text(envelope.original_content or envelope.content)
        numbers = {int(n) for n in TAG.findall(text)}
        with self.lock:
            if not numbers:  # the confirmation email; alerts are only counted
                self.texts.append(text)
            for number in numbers:
                if number in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[number] = now
        return "250 OK"


def plain_text(raw: bytes) -> str:
    """The text/plain part, decoded.

    The compat32 parser: this server shares the load generator's process and CPU, and the
    default policy's parser costs several times more per message.
    """
    for part in message_from_bytes(raw).walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def record(number: int, when: datetime) -> dict[str, Any]:
    """One request in Open311 field names, near St. Petersburg's city hall."""
    return {
        "service_request_id": f"benchreq-{number}",
        "status": "open",
        "service_code": "POTHOLE",
        "service_name": "Pothole",
        "agency_responsible": AGENCY,
        "description": f"benchreq-{number}",
        "address": "175 5th St N",
        "lat": 27.7731 + (number % 1000) * 1e-5,
        "long": -82.64,
        "requested_datetime": when.isoformat(),
        "updated_datetime": when.isoformat(),
    }


def subscribe(map_api: str, recorder: Recorder) -> None:
    """A confirmed city-wide subscriber for the bench agency."""
    httpx.post(
        f"{map_api}/api/subscriptions",
        timeout=10,
        json={
            "email": "bench@example.org",
            "delivery": "instant",
            "target": {"kind": "citywide"},
            "filters": {"agencies": [AGENCY]},
        },
    ).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with recorder.lock:
            links = [m.group(0) for t in recorder.texts if (m := CONFIRM.search(t))]
        if links:
            httpx.get(re.sub(r"https?://[^/]+", map_api, links[0]), timeout=10)
            time.sleep(2)  # the matcher applies the confirmation
            return
        time.sleep(0.2)
    raise SystemExit("no confirmation email arrived: is the notifier running?")


def stage_means(ports: LocalPorts) -> str:
    """Mean time per stage, from the services' own histograms (cumulative over the run)."""
    parts = []
    for port, metric in (
        (ports.matcher_port, "matcher_match_seconds"),
        (ports.notifier_port, "notifier_command_to_smtp_seconds"),
    ):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        values = {
            line.split(" ")[0].split("{")[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(metric + "_")
        }
        count = values.get(f"{metric}_count", 0.0)
        mean = values.get(f"{metric}_sum", 0.0) / count if count else math.nan
        parts.append(f"{metric} mean {mean:.3f} s over {count:.0f}")
    return "; ".join(parts)


def run_rate(
    push_url: str, recorder: Recorder, rate: int, duration: float, first: int
) -> dict[str, Any]:
    """Push `rate` requests/s for `duration` s; latency per request to SMTP acceptance."""
    sent: dict[int, float] = {}
    tick = 0.1
    per_tick = max(1, math.ceil(rate * tick))
    number, start = first, time.monotonic()
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        while time.monotonic() - start < duration:
            batch = [record(n, datetime.now(UTC)) for n in range(number, number + per_tick)]
            now = time.time()
            client.post(push_url, json=batch).raise_for_status()
            sent.update((n, now) for n in range(number, number + per_tick))
            number += per_tick
            sleep = start + (number - first) / rate - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
    achieved = len(sent) / (time.monotonic() - start)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(n in recorder.arrived for n in sent):
        time.sleep(0.2)
    # Every request sent counts: one that never arrived is slower than any that did, so
    # p99 is infinite (printed as such) when more than 1 % are missing.
    latencies = sorted(
        recorder.arrived[n] - t if n in recorder.arrived else math.inf for n, t in sent.items()
    )
    return {
        "rate": rate,
        "achieved": achieved,
        "sent": len(sent),
        "delivered": sum(1 for n in sent if n in recorder.arrived),
        "p50": statistics.median(latencies) if latencies else math.nan,
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else math.nan,
        "next": number,
        "load": os.getloadavg()[0],  # at the end of the stage, before draining
        "drain_s": drain(recorder),
    }


def drain(recorder: Recorder, limit_s: float = 300.0) -> float:
    """Wait until no email has arrived for DRAIN_QUIET_S, so the next stage starts empty."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        with recorder.lock:
            count = len(recorder.arrived) + recorder.duplicates
        time.sleep(DRAIN_QUIET_S)
        with recorder.lock:
            if len(recorder.arrived) + recorder.duplicates == count:
                break
    return time.monotonic() - start


def backfill(ports: LocalPorts, state: Path, rows: int, env: dict[str, str]) -> dict[str, float]:
    """Import `rows` historic requests with --backfill; time ingest, then ingest + match."""
    path = state / "backfill.csv"
    fields = list(record(0, datetime.now(UTC)))
    then = datetime(2020, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for n in range(rows):
            row = record(10_000_000 + n, then + timedelta(seconds=n))
            row["service_request_id"] = f"hist-{n}"
            writer.writerow(row)
    matcher_metrics = f"http://127.0.0.1:{ports.matcher_port}/metrics"
    before = _events_read(matcher_metrics)
    start = time.monotonic()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "connect311-ingestor"),
            *QUIET,
            "import",
            str(path),
            "--profile",
            "open311",
            "--backfill",
        ],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ingested = time.monotonic() - start
    while _events_read(matcher_metrics) - before < rows:
        time.sleep(0.5)
    return {"rows": rows, "ingest_s": ingested, "ingest_and_match_s": time.monotonic() - start}


def _events_read(metrics_url: str) -> float:
    text = httpx.get(metrics_url, timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("matcher_events_total{")
    )


def main() -> None:
    """Parse arguments, run every stage, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="50,200,1000", help="events/s, comma separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--backfill-rows", type=int, default=1_000_000, help="0 skips it")
    parser.add_argument(
        "--quick", action="store_true", help="CI: 50 events/s for 5 s, no backfill (numbers only)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rates, args.duration, args.backfill_rows = "50", 5.0, 0
    print(f"machine: {machine()}")
    recorder, results = Recorder(), []
    with tempfile.TemporaryDirectory() as tmp, running_broker() as broker:
        state = Path(tmp)
        ports = LocalPorts.free().model_copy(update={"broker_port": broker.port})
        smtp = Controller(recorder, hostname="127.0.0.1", port=ports.smtp_port)
        smtp.start()
        extra = {
            "INGESTOR_PUSH_TOKENS": TOKEN,
            "NOTIFIER_INSTANT_PER_HOUR": "100000000",
            "NOTIFIER_GLOBAL_RATE_PER_S": "100000",
        }
        supervisor = Supervisor(Console(file=io.StringIO()), state / "logs")
        specs = [quiet(spec) for spec in service_specs(ports, state, extra)]
        try:
            for spec in specs:
                supervisor.wait_healthy(supervisor.start(spec))
            subscribe(f"http://127.0.0.1:{ports.map_api_port}", recorder)
            push = f"http://127.0.0.1:{ports.ingestor_port}/api/v1/requests"
            number = 0
            for rate in (int(r) for r in args.rates.split(",")):
                print(f"running {rate} events/s for {args.duration:.0f} s ...", flush=True)
                result = run_rate(push, recorder, rate, args.duration, number)
                number = result["next"]
                results.append(result)
                print(f"  stages: {stage_means(ports)}", flush=True)
                print(f"  drained in {result['drain_s']:.1f} s (next stage starts empty)")
            if args.backfill_rows:
                print(f"backfilling {args.backfill_rows:,} historic requests ...", flush=True)
                ingest_env = {**next(s.env for s in specs if s.name == "ingestor")}
                filled = backfill(ports, state, args.backfill_rows, ingest_env)
        finally:
            supervisor.stop_all()
            smtp.stop()
    print("\nlogs: every service at WARNING (--log-level); load at the end: " + machine())
    print(
        f"{'target/s':>9} {'achieved/s':>11} {'emailed/sent':>14} {'p50 s':>7} {'p99 s':>7}"
        f" {'load':>5}  (percentiles over every request sent; inf: over 1 % never arrived)"
    )
    for r in results:
        emailed = f"{r['delivered']}/{r['sent']}"
        print(
            f"{r['rate']:>9} {r['achieved']:>11.0f} {emailed:>14} {r['p50']:>7.3f} {r['p99']:>7.3f}"
            f" {r['load']:>5.1f}"
        )
    sustained = [
        r["rate"]
        for r in results
        if r["delivered"] == r["sent"] and r["p99"] < 1.0 and r["achieved"] >= 0.95 * r["rate"]
    ]
    print(
        f"duplicates: {recorder.duplicates}; highest sustained rate with p99 < 1 s: "
        f"{max(sustained) if sustained else 'none'} events/s"
    )
    if args.backfill_rows:
        print(
            f"backfill {filled['rows']:,} rows: ingest {filled['ingest_s']:.0f} s, "
            f"ingest + match {filled['ingest_and_match_s']:.0f} s"
        )


if __name__ == "__main__":
    main()
