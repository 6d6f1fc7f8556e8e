"""The synthetic city the map benches share (bench/map_api.py and its neighbours), and how they
time and compare answers."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime
from typing import Any

from connect311_map_api.core.geo import BBox

CITY = BBox(-82.80, 27.60, -82.55, 27.90)  # St. Petersburg, FL, roughly


AGENCIES = [f"Department {i}" for i in range(12)]


CODES = [f"C{i:03d}" for i in range(60)]


STATUSES = ["open", "acknowledged", "in_progress", "closed", "closed", "closed"]


START = datetime(2023, 1, 1)


QUERIES = 60


SAMPLES = 20
"""Timings per figure: with fewer, a "p95" is the largest or the median of a handful."""


STATS_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of millisecond samples (p95 interpolated between the two nearest ranks)."""
    cuts = statistics.quantiles(samples, n=20, method="inclusive") if len(samples) > 1 else []
    return statistics.median(samples), cuts[-1] if cuts else samples[0]


def answers_agree(name: str, a: Any, b: Any) -> None:
    """Stop the bench when two ways of answering the same question answer differently."""
    if _rounded(a) != _rounded(b):
        raise SystemExit(
            f"{name}: the two answers differ (same question): {a!r:.300} vs {b!r:.300}"
        )


def _rounded(value: Any) -> Any:
    """Floats to 9 significant digits (a centroid summed in another order), the rest as is."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def random_view(rnd: random.Random, span: float) -> BBox:
    """A viewport of `span` degrees somewhere in the city."""
    lon = rnd.uniform(CITY.min_long, CITY.max_long - span)
    lat = rnd.uniform(CITY.min_lat, CITY.max_lat - span)
    return BBox(lon, lat, lon + span, lat + span)
