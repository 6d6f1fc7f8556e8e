"""bench/soak_matcher.py's observer: the matcher's RSS and metrics sampled during the soak, the
table it prints as it goes, and the summary with the verdict."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
from machine_info import machine
from prometheus_client.parser import text_string_to_metric_families

from connect311_contracts.topics import REQUEST_EVENTS, SUBSCRIPTIONS

WARM_UP_S = 60.0  # steady state starts after the first minute of load


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (VmRSS); NaN once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


async def scrape(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    """The matcher's metrics as {'name{label=value}': value}."""
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def wait_ready(
    http: aiohttp.ClientSession, base: str, proc: asyncio.subprocess.Process, log: Path
) -> float:
    """Poll /healthz until 200, printing progress; returns seconds waited."""
    started = time.perf_counter()
    last_print = started
    while True:
        if proc.returncode is not None:
            raise SystemExit(f"the matcher exited with code {proc.returncode}; see {log}")
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except aiohttp.ClientConnectionError:
            pass
        now = time.perf_counter()
        if now - last_print >= 10:
            last_print = now
            lag = "?"
            try:
                m = await scrape(http, base)
                lag = f"{m.get(f'matcher_consumer_lag{{topic={SUBSCRIPTIONS.name}}}', 0):,.0f}"
            except aiohttp.ClientConnectionError:
                pass
            print(
                f"  catching up: {now - started:5.0f} s, RSS {rss_mb(proc.pid):,.0f} MB, "
                f"subscriptions lag {lag}",
                flush=True,
            )
        await asyncio.sleep(0.5)


@dataclass
class Sample:
    """One observation of the matcher during the soak."""

    t: float
    rss: float
    broker_rss: float
    matched: float
    notifications: float
    events_lag: float
    subs_lag: float
    rebuilds: float
    held: float


def observe(t: float, pid: int, broker_pid: int, m: dict[str, float]) -> Sample:
    """A Sample from the process table and a metrics scrape."""
    notes = sum(v for k, v in m.items() if k.startswith("matcher_matches_total{"))
    held = sum(v for k, v in m.items() if k.startswith("matcher_subscriptions{"))
    return Sample(
        t=t,
        rss=rss_mb(pid),
        broker_rss=rss_mb(broker_pid),
        matched=m.get("matcher_events_total{outcome=matched}", 0.0),
        notifications=notes,
        events_lag=m.get(f"matcher_consumer_lag{{topic={REQUEST_EVENTS.name}}}", 0.0),
        subs_lag=m.get(f"matcher_consumer_lag{{topic={SUBSCRIPTIONS.name}}}", 0.0),
        rebuilds=m.get("matcher_grid_rebuilds_total", 0.0),
        held=held,
    )


HEADER = (
    f"{'min':>5} {'RSS MB':>8} {'matched':>10} {'ev/s':>6} {'notes':>10} {'ev lag':>7} "
    f"{'sub lag':>7} {'rebuilds':>8} {'held':>10} {'broker MB':>9}"
)


def row(s: Sample, prev: Sample | None) -> str:
    """One table line."""
    before, since = (prev.matched, prev.t) if prev else (0.0, 0.0)
    eps = (s.matched - before) / (s.t - since) if s.t > since else 0.0
    return (
        f"{s.t / 60:>5.2f} {s.rss:>8,.0f} {s.matched:>10,.0f} {eps:>6,.0f} "
        f"{s.notifications:>10,.0f} {s.events_lag:>7,.0f} {s.subs_lag:>7,.0f} "
        f"{s.rebuilds:>8,.0f} {s.held:>10,.0f} {s.broker_rss:>9,.0f}"
    )


def summary(samples: list[Sample]) -> None:
    """RSS baseline, steady start, max, end and slope; the verdict."""
    baseline, soaked = samples[0], samples[1:]
    if len(soaked) < 2:
        print("too few samples for a summary: run for longer than two --every periods")
        return
    steady = [s for s in soaked if s.t >= WARM_UP_S] or soaked
    if len(steady) < 2:
        steady = soaked
    fit = statistics.linear_regression([s.t / 60 for s in steady], [s.rss for s in steady])
    whole = statistics.linear_regression([s.t / 60 for s in soaked], [s.rss for s in soaked])
    start, last = steady[0], soaked[-1]
    peak = max(soaked, key=lambda s: s.rss)
    minutes = last.t / 60
    print()
    print(f"== summary: {minutes:.1f} min of load ==")
    for label, value in (
        ("RSS right after catch-up (baseline)", baseline.rss),
        (f"RSS at start of steady state ({start.t / 60:.1f} min)", start.rss),
        (f"RSS max ({peak.t / 60:.1f} min)", peak.rss),
        (f"RSS at end ({last.t / 60:.1f} min)", last.rss),
    ):
        print(f"{label:<42} {value:8,.0f} MB")
    print(
        f"slope over steady state: {fit.slope:+.2f} MB/min "
        f"({fit.slope / max(1.0, start.rss):+.3%} of RSS per min); "
        f"over the whole soak {whole.slope:+.2f} MB/min"
    )
    print(
        f"end - steady start: {last.rss - start.rss:+,.0f} MB; end - baseline: "
        f"{last.rss - baseline.rss:+,.0f} MB"
    )
    print(
        f"matched {last.matched:,.0f} events ({last.matched / max(1e-9, last.t):,.0f}/s), "
        f"{last.notifications:,.0f} notifications, {last.rebuilds:,.0f} grid rebuilds, "
        f"final lag: events {last.events_lag:,.0f}, subscriptions {last.subs_lag:,.0f}; "
        f"holding {last.held:,.0f} subscriptions"
    )
    print(f"machine: {machine(f'numpy {np.__version__}')}")
