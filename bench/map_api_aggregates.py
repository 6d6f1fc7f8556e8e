"""bench/map_api.py: stats and low-zoom clusters scanned from the requests table vs answered from
the aggregate tables, alternating on one database (same answers, asserted)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from map_api_city import AGENCIES, CITY, SAMPLES, STATS_NOW, answers_agree, percentiles
from sqlalchemy import Connection, Engine

from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.stats import Interval
from connect311_map_api.db import aggregates, queries


def aggregate_cases() -> dict[str, Callable[[Connection, bool], Any]]:
    """Stats and clusters, each run(conn, use_aggregates)."""
    city12 = 360 / (2**12 * 4)
    return {
        "clusters city zoom 12": lambda c, agg: queries.clusters(
            c, RequestFilters(bbox=CITY), city12, use_aggregates=agg
        ),
        "clusters world zoom 8": lambda c, agg: queries.clusters(
            c, RequestFilters(), 360 / (2**8 * 4), use_aggregates=agg
        ),
        # One clock for both ways: backlog ages are measured from `now`.
        "stats all, weekly": lambda c, agg: queries.stats(
            c, RequestFilters(), Interval.WEEK, STATS_NOW, use_aggregates=agg
        ),
        "stats all, monthly": lambda c, agg: queries.stats(
            c, RequestFilters(), Interval.MONTH, STATS_NOW, use_aggregates=agg
        ),
        "stats one agency": lambda c, agg: queries.stats(
            c, RequestFilters(agencies=(AGENCIES[1],)), Interval.WEEK, STATS_NOW, use_aggregates=agg
        ),
    }


def compare_aggregates(engine: Engine, repeat: int = SAMPLES) -> None:
    """Scan vs aggregate tables, alternating on one database (same answers, asserted)."""
    started = time.perf_counter()
    with engine.begin() as conn:
        aggregates.rebuild(conn)
    print(f"  aggregates rebuilt from requests in {time.perf_counter() - started:.1f} s")
    print(
        f"  {'case (no HTTP cache)':32s} {'scan requests':>24s} {'aggregate tables':>24s}"
        f"  ({repeat} each, alternating; load {os.getloadavg()[0]:.1f})"
    )
    for name, run in aggregate_cases().items():
        samples: dict[bool, list[float]] = {False: [], True: []}
        for i in range(repeat):
            answers: dict[bool, Any] = {}
            for agg in (False, True) if i % 2 == 0 else (True, False):  # ABBA: no side first
                with engine.connect() as conn:
                    t = time.perf_counter()
                    answers[agg] = run(conn, agg)
                    samples[agg].append((time.perf_counter() - t) * 1000)
            if "stats" in name:
                answers_agree(name, answers[False], answers[True])
            else:
                scan, cells = (
                    [(c["cell"], c["count"], c["by_status"]) for c in answers[key]]
                    for key in (False, True)
                )
                answers_agree(name, scan, cells)
        s50, s95 = percentiles(samples[False])
        a50, a95 = percentiles(samples[True])
        print(
            f"  {name:32s} p50 {s50:7.1f} p95 {s95:7.1f} ms  p50 {a50:7.1f} p95 {a95:7.1f} ms"
            f"  x{s50 / max(a50, 1e-6):.0f}",
            flush=True,
        )
