"""bench/e2e.py's stack: the services as the local run starts them (one or two notifiers, on
SQLite or one PostgreSQL ledger), the recording SMTP server, and the services' own figures."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from dataclasses import replace
from email import message_from_bytes
from typing import Any

import httpx

from connect311_local.broker import free_port
from connect311_local.stack import LocalPorts
from connect311_local.supervisor import ProcessSpec

TAG = re.compile(rb"benchreq-(\d+)")
# What the services read: a `--log-level` option (there is no LOG_LEVEL variable). The map
# API, matcher and notifier take it after `run`; the ingestor before its command (one option
# for every command: `connect311-ingestor --log-level warning run`).
QUIET = ("--log-level", "warning")
LEVELLED = {"map-api", "matcher", "notifier"}


def quiet(spec: ProcessSpec) -> ProcessSpec:
    """The spec with WARNING logging, the option where each service reads it."""
    if spec.name.split("-")[0] in LEVELLED or spec.name in LEVELLED:
        return replace(spec, argv=(*spec.argv, *QUIET))
    if spec.name == "ingestor":
        program, *command = spec.argv
        return replace(spec, argv=(program, *QUIET, *command))
    return spec


def with_notifiers(
    specs: list[ProcessSpec], count: int, ledger_url: str | None
) -> list[ProcessSpec]:
    """The local run's specs with `count` notifier processes in one consumer group.

    Two processes need a ledger both can write safely: PostgreSQL (`ledger_url`); each gets
    its own instance id (its claims and leases) and HTTP port.
    """
    out: list[ProcessSpec] = []
    for spec in specs:
        if spec.name != "notifier":
            out.append(spec)
            continue
        for n in range(count):
            env = {**spec.env, "NOTIFIER_INSTANCE_ID": f"bench-notifier-{n + 1}"}
            if ledger_url is not None:
                env["NOTIFIER_DATABASE_URL"] = ledger_url
            name, health = spec.name, spec.health_url
            if n:
                port = free_port()
                env["NOTIFIER_HTTP_PORT"] = str(port)
                name, health = f"notifier-{n + 1}", f"http://127.0.0.1:{port}/healthz"
            out.append(replace(spec, name=name, env=env, health_url=health))
    return out


def notifier_ports(specs: list[ProcessSpec]) -> list[int]:
    """Every notifier process's HTTP port (its /metrics)."""
    return [int(s.env["NOTIFIER_HTTP_PORT"]) for s in specs if s.name.startswith("notifier")]


class Recorder:
    """SMTP handler: when each (request number, recipient) email was first accepted."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[int, str], float] = {}
        self.duplicates = 0
        self.untagged = 0
        self.lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Advertise PIPELINING as real relays do (aiosmtpd reads pipelined commands in turn)."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        raw = envelope.original_content or envelope.content
        # The alert's text is ASCII sent as it is, so the tag is in the raw bytes; a body
        # that had to be quoted-printable is parsed (a soft line break may split the tag).
        numbers = {int(n) for n in TAG.findall(raw)} or {
            int(n) for n in TAG.findall(plain_text(raw).encode())
        }
        with self.lock:
            if not numbers:
                self.untagged += 1
            for number in numbers:
                for rcpt in envelope.rcpt_tos:
                    key = (number, rcpt.lower())
                    if key in self.arrived:
                        self.duplicates += 1
                    else:
                        self.arrived[key] = now
        return "250 OK"

    def holds(self, keys: set[tuple[int, str]]) -> bool:
        """Whether every one of these emails has arrived."""
        with self.lock:
            return keys <= self.arrived.keys()

    def snapshot(self) -> dict[tuple[int, str], float]:
        """A copy of the arrivals so far (the SMTP thread keeps adding)."""
        with self.lock:
            return dict(self.arrived)

    def total(self) -> int:
        """Emails accepted so far (first copies and duplicates)."""
        with self.lock:
            return len(self.arrived) + self.duplicates + self.untagged


def plain_text(raw: bytes) -> str:
    """The text/plain part, decoded (the compat32 parser: several times cheaper)."""
    for part in message_from_bytes(raw).walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def metric_values(port: int, prefix: str) -> dict[str, float]:
    """Every sample of one service whose name starts with `prefix`, labels summed away."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name = line.split(" ")[0].split("{")[0]
            if "_bucket" not in name:
                values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return values


def stage_means(ports: LocalPorts, notifiers: list[int]) -> str:
    """Mean time per stage, from the services' own histograms (cumulative over the run)."""
    parts = []
    for ports_of, metric in (
        ([ports.matcher_port], "matcher_match_seconds"),
        (notifiers, "notifier_command_to_smtp_seconds"),
    ):
        count = total = 0.0
        for port in ports_of:
            values = metric_values(port, metric + "_")
            count += values.get(f"{metric}_count", 0.0)
            total += values.get(f"{metric}_sum", 0.0)
        mean = total / count if count else math.nan
        parts.append(f"{metric} mean {mean:.3f} s over {count:.0f}")
    return "; ".join(parts)


def subscriptions_applied(ports: LocalPorts) -> float:
    """Subscription records the matcher has applied."""
    return metric_values(ports.matcher_port, "matcher_subscription_changes_total").get(
        "matcher_subscription_changes_total", 0.0
    )


def events_read(ports: LocalPorts) -> float:
    """Request events the matcher has read (any outcome)."""
    return metric_values(ports.matcher_port, "matcher_events_total").get(
        "matcher_events_total", 0.0
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far; 0 once it is gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each process used between two readings (the bench's own included).

    `database`: also the PostgreSQL server processes serving that database (its backends
    name it in their title), summed as "postgres"; a backend that closed between two
    readings loses what it used since the first.
    """

    def __init__(self, pids: dict[str, int], database: str | None = None) -> None:
        self.pids = {**pids, "bench+smtp": os.getpid()}
        self.database = database
        self.start = self._read()
        self.backends = self._backends()

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def _backends(self) -> dict[int, float]:
        if self.database is None:
            return {}
        found = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    title = open(f"/proc/{entry.name}/cmdline", "rb").read()  # noqa: SIM115
                except OSError:
                    continue
                if title.startswith(b"postgres:") and self.database.encode() in title:
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
        return found

    def used(self) -> dict[str, float]:
        """CPU seconds per process since the last call (or since created)."""
        now = self._read()
        spent = {name: now[name] - self.start[name] for name in now}
        self.start = now
        if self.database is not None:
            backends = self._backends()
            spent["postgres"] = sum(t - self.backends.get(p, 0.0) for p, t in backends.items())
            self.backends = backends
        return spent
