"""Numbers people read are right: the volume preview and department stats against recounts.

Each expected number is recounted here in plain Python from the rows the test seeded, never
taken from the code under test: the preview's weekly rate over the days of data that exist,
nearest-rank median and 90th percentile of times to close and backlog ages, in seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_contracts.events import EventKind
from connect311_contracts.request import RequestStatus
from connect311_map_api.core.preview import MIN_SPAN_DAYS, weekly_alerts
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.settings import MapApiSettings
from connect311_map_api.web.pages import build_router
from tests.unit.map_api.factories import event, lifecycle, snapshot

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
BASE = datetime(2024, 5, 1, 8, 30)
KINDS = ["request.opened", "request.updated", "request.closed", "request.reopened"]

events = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 120 * 86_400),  # seconds after BASE
        st.booleans(),  # inside the target
    ),
    max_size=40,
)


@given(
    rows=events,
    start=st.integers(0, 100 * 86_400),
    span=st.integers(0, 30 * 86_400),
    kinds=st.sets(st.sampled_from(list(EventKind))),
)
def test_weekly_rate_is_a_recount_over_the_days_present(
    rows: list[tuple[str, int, bool]], start: int, span: int, kinds: set[EventKind]
) -> None:
    since = BASE + timedelta(seconds=start)
    until = since + timedelta(seconds=span)
    candidates = [
        (f"r{i}", kind, BASE + timedelta(seconds=at), 0.0 if inside else 9.0, 0.0)
        for i, (kind, at, inside) in enumerate(rows)
    ]
    wanted = tuple(sorted(kinds))
    out = weekly_alerts(candidates, lambda _rid, lat, _long: lat < 1, wanted, since, until)
    # Brute force: every event, one by one.
    names = {f"request.{k.value}" for k in kinds} or set(KINDS)
    counted = [
        BASE + timedelta(seconds=at)
        for kind, at, inside in rows
        if kind in names and inside and since <= BASE + timedelta(seconds=at) <= until
    ]
    days = span / 86_400
    assert out["total"] == len(counted)
    assert out["history_days"] == round(days, 2)
    assert out["per_week_average"] == round(len(counted) * 7 / max(days, MIN_SPAN_DAYS), 2)
    assert out["short_history"] is (days < 90)
    by_week = {w["week"]: w["alerts"] for w in out["weeks"]}
    for at in counted:  # each counted event sits in the week starting the Monday before it
        monday = (at - timedelta(days=at.weekday())).date().isoformat()
        assert by_week[monday] >= 1
    assert sum(by_week.values()) == len(counted)


def test_preview_divides_by_the_days_of_data_that_exist(client: TestClient, engine: Engine) -> None:
    # The city's whole history: one request's life over 2 days 5 hours (3 events nearby).
    with engine.begin() as conn:
        apply_events(conn, lifecycle("p1"))
    body = client.post("/api/subscriptions/preview", json={"target": CIRCLE}).json()
    days = (2 * 24 + 5) / 24
    assert body["total"] == 3
    assert body["history_days"] == round(days, 2)
    assert body["short_history"] is True
    # 3 events in 2.2 days is about 9.5 a week; dividing by 90 days said 0.23.
    assert body["per_week_average"] == round(3 * 7 / days, 2)


def _percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile, written out independently of the code under test."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] if ordered else None


def _seed_department(engine: Engine, now: datetime) -> tuple[list[int], list[datetime]]:
    """Closed requests with known durations and open ones with known ages (one in the future)."""
    closes = [
        timedelta(minutes=25),
        timedelta(minutes=40, seconds=30),
        timedelta(hours=5, minutes=12),
        timedelta(days=1, hours=23, minutes=59),
        timedelta(days=3, hours=7, minutes=45),  # beyond 2 days: counted to the hour
    ]
    start = now - timedelta(days=20)
    batch = []
    for i, gap in enumerate(closes):
        opened = start + timedelta(days=i)
        done = snapshot(f"c{i}", status=RequestStatus.CLOSED, opened=opened, updated=opened + gap)
        batch.append(event("closed", done))
    opened_at = [
        now - timedelta(minutes=25),
        now - timedelta(hours=6),
        now - timedelta(days=3, hours=2),
        now + timedelta(hours=3),  # a feed clock running ahead: no age, counted apart
    ]
    batch += [event("opened", snapshot(f"o{i}", opened=at)) for i, at in enumerate(opened_at)]
    with engine.begin() as conn:
        apply_events(conn, batch)
    counted = []
    for gap in closes:
        seconds = int(gap.total_seconds())
        counted.append(seconds // 60 * 60 if seconds < 2 * 86_400 else seconds // 3600 * 3600)
    return counted, opened_at


@pytest.mark.parametrize("params", [{}, {"since": "2000-01-01T00:00:00Z"}], ids=["agg", "scan"])
def test_stats_equal_a_recount_in_seconds(
    client: TestClient, engine: Engine, params: dict[str, Any]
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    closes, opened_at = _seed_department(engine, now)
    body = client.get("/api/stats", params=params).json()
    as_of = datetime.fromisoformat(body["as_of"].replace("Z", "+00:00"))
    (close,) = body["time_to_close"]
    assert close["closed"] == len(closes)
    assert close["median_seconds"] == _percentile(closes, 0.5) == 5 * 3600 + 12 * 60
    assert close["p90_seconds"] == _percentile(closes, 0.9)
    assert min(closes) == 25 * 60  # the sub-hour close is 25 minutes, not rounded to 0 hours
    ages = [int((as_of - at).total_seconds()) for at in opened_at if at <= as_of]
    (backlog,) = body["backlog"]
    assert backlog["open"] == len(opened_at)
    assert backlog["dated_in_future"] == 1
    assert backlog["median_age_seconds"] == _percentile(ages, 0.5)
    assert backlog["p90_age_seconds"] == _percentile(ages, 0.9)
    assert backlog["oldest_age_seconds"] == max(ages)
    assert all(backlog[k] >= 0 for k in ("median_age_seconds", "p90_age_seconds"))


def test_pages_carry_the_city_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        MapApiSettings(display_timezone="Mars/Olympus")
    settings = MapApiSettings(display_timezone="America/Chicago")
    app = FastAPI()
    app.include_router(build_router(settings))
    page = TestClient(app).get("/stats").text
    assert '"timeZone": "America/Chicago"' in page
