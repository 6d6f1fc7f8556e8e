"""Pure core: snapshot ranking, stats roll-ups and percentiles, geometry, preview."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_contracts.events import EventKind
from connect311_contracts.request import RequestStatus
from connect311_contracts.subscriptions import AreaTarget, CircleTarget, CorridorTarget
from connect311_map_api.core.geo import (
    InvalidGeometry,
    haversine_m,
    parse_bbox,
    point_matcher,
    target_bbox,
    validate_target,
)
from connect311_map_api.core.preview import weekly_alerts
from connect311_map_api.core.state import event_rank, is_newer, request_row
from connect311_map_api.core.stats import (
    Interval,
    backlog,
    opened_resolved,
    percentile,
    period_start,
)
from tests.unit.map_api.factories import T0, event, snapshot


def test_later_source_time_outranks_later_ingest() -> None:
    new = event("updated", snapshot("1", updated=T0 + timedelta(hours=2)), occurred=T0)
    old = event("opened", snapshot("1"), occurred=T0 + timedelta(days=3))
    assert is_newer(event_rank(new), event_rank(old))
    assert not is_newer(event_rank(old), event_rank(new))
    assert is_newer(event_rank(old), None)


def test_row_derives_stats_columns() -> None:
    done = snapshot("1", status=RequestStatus.CLOSED, updated=T0 + timedelta(hours=49, minutes=5))
    row = request_row(event("closed", done))
    assert row["hours_to_close"] == 49
    assert row["opened_day"] == "2024-05-01"
    assert row["closed_day"] == "2024-05-03"
    assert row["requested_datetime"].tzinfo is None


@given(
    st.lists(st.tuples(st.integers(0, 500), st.integers(1, 20)), max_size=30), st.floats(0.01, 1.0)
)
def test_percentile_matches_sorted_expansion(hist: list[tuple[int, int]], q: float) -> None:
    values = sorted(v for v, n in hist for _ in range(n))
    expected = values[max(1, math.ceil(q * len(values))) - 1] if values else None
    assert percentile(hist, q) == expected


def test_period_starts() -> None:
    day = date(2024, 5, 16)  # a Thursday
    assert period_start(day, Interval.DAY) == day
    assert period_start(day, Interval.WEEK) == date(2024, 5, 13)
    assert period_start(day, Interval.MONTH) == date(2024, 5, 1)


def test_opened_resolved_rolls_days_into_weeks() -> None:
    opened = [("Water", "2024-05-13", 2), ("Water", "2024-05-15", 3), (None, "2024-05-20", 1)]
    resolved = [("Water", "2024-05-19", 4)]
    rows = opened_resolved(opened, resolved, Interval.WEEK)
    assert rows == [
        {"period": "2024-05-13", "agency": "Water", "opened": 5, "resolved": 4},
        {"period": "2024-05-20", "agency": "(unknown)", "opened": 1, "resolved": 0},
    ]


def test_backlog_ages_in_seconds_and_future_dates_counted_apart() -> None:
    now = datetime(2024, 5, 11, 12, 0)
    made = [
        datetime(2024, 5, 1, 12, 0),  # 10 days
        datetime(2024, 5, 1, 18, 0),  # 9.75 days
        *[datetime(2024, 5, 11, 11, 35)] * 3,  # 25 minutes
        *[datetime(2024, 5, 11, 13, 0)] * 2,  # an hour ahead of now: no age yet
    ]
    read: list[str] = []

    def times_of(agency: str | None, day: str) -> list[datetime]:
        read.append(day)
        return [t for t in made if agency == "Water" and t.date().isoformat() == day]

    days = [("Water", "2024-05-01", 2), ("Water", "2024-05-11", 5), ("Water", "2024-05-03", 0)]
    (entry,) = backlog(days, times_of, now)
    assert entry == {
        "agency": "Water",
        "open": 7,
        "dated_in_future": 2,
        "median_age_seconds": 25 * 60,
        "p90_age_seconds": 10 * 86_400,
        "oldest_age_seconds": 10 * 86_400,
    }
    assert sorted(set(read)) == ["2024-05-01", "2024-05-11"]  # only the days that matter
    (ahead,) = backlog([(None, "2024-05-12", 1)], lambda _a, _d: [datetime(2024, 5, 12)], now)
    assert ahead["agency"] == "(unknown)"
    assert ahead["dated_in_future"] == 1 and ahead["median_age_seconds"] is None


@given(
    offsets=st.lists(st.integers(-2 * 86_400, 40 * 86_400), min_size=1, max_size=60),
    fraction=st.sampled_from([0.5, 0.9]),
)
def test_backlog_percentiles_equal_a_full_sort(offsets: list[int], fraction: float) -> None:
    now = datetime(2024, 5, 11, 12, 0, 30)
    made = [now - timedelta(seconds=o) for o in offsets]
    per_day: dict[str, int] = {}
    for t in made:
        per_day[t.date().isoformat()] = per_day.get(t.date().isoformat(), 0) + 1
    (entry,) = backlog(
        [("A", day, n) for day, n in per_day.items()],
        lambda _a, day: [t for t in made if t.date().isoformat() == day],
        now,
    )
    ages = sorted(o for o in offsets if o >= 0)
    key = "median_age_seconds" if fraction == 0.5 else "p90_age_seconds"
    expected = ages[max(1, math.ceil(fraction * len(ages))) - 1] if ages else None
    assert entry[key] == expected
    assert entry["oldest_age_seconds"] == (ages[-1] if ages else None)
    assert entry["dated_in_future"] == len(offsets) - len(ages)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1,2,3", "four numbers"),
        ("a,b,c,d", "numbers"),
        ("0,0,200,1", "longitudes"),
        ("0,-91,1,1", "latitudes"),
        ("2,0,1,1", "minimum"),
        ("nan,0,1,1", "finite"),
    ],
)
def test_bad_bbox_reasons(text: str, reason: str) -> None:
    with pytest.raises(InvalidGeometry, match=reason):
        parse_bbox(text)


def _square(n_extra: int = 0) -> dict[str, object]:
    ring = [[-82.7, 27.7], [-82.6, 27.7], [-82.6, 27.8], [-82.7, 27.8], [-82.7, 27.7]]
    ring[1:1] = [[-82.7 + 0.1 * i / (n_extra + 1), 27.7] for i in range(1, n_extra + 1)]
    return {"type": "Polygon", "coordinates": [ring]}


def test_self_intersecting_polygon_is_refused_with_reason() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(InvalidGeometry, match="Self-intersection"):
        validate_target(AreaTarget(geometry=bowtie), 100)


def test_too_many_vertices_is_refused() -> None:
    validate_target(AreaTarget(geometry=_square(10)), 100)
    with pytest.raises(InvalidGeometry, match="at most 10"):
        validate_target(AreaTarget(geometry=_square(10)), 10)


@given(st.floats(27.0, 28.5), st.floats(-83.5, -82.0), st.floats(50, 10_000))
def test_circle_matches_haversine_and_fits_its_bbox(lat: float, long: float, r: float) -> None:
    target = CircleTarget(lat=27.77, long=-82.64, radius_m=r)
    inside = point_matcher(target)("x", lat, long)
    assert inside == (haversine_m(27.77, -82.64, lat, long) <= r)
    box = target_bbox(target)
    assert box is not None
    if inside:
        assert box.min_lat <= lat <= box.max_lat and box.min_long <= long <= box.max_long


def test_corridor_distance_in_metres() -> None:
    # A line along a parallel; 1 degree of latitude is ~111 km, so 0.001 deg ~ 111 m.
    target = CorridorTarget(coordinates=((-82.70, 27.77), (-82.60, 27.77)), width_m=150)
    inside = point_matcher(target)
    assert inside("x", 27.771, -82.65)  # ~111 m north
    assert not inside("x", 27.772, -82.65)  # ~222 m north
    assert not inside("x", 27.77, -82.59)  # beyond the line's end by ~990 m


def test_area_respects_holes() -> None:
    outer = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    hole = [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]
    inside = point_matcher(AreaTarget(geometry={"type": "Polygon", "coordinates": [outer, hole]}))
    assert inside("x", 0.5, 0.5)
    assert not inside("x", 2, 2)


def test_weekly_alerts_counts_kinds_per_week() -> None:
    base = datetime(2024, 5, 13, tzinfo=UTC).replace(tzinfo=None)
    rows = [
        ("a", "request.opened", base, 0.0, 0.0),
        ("a", "request.closed", base + timedelta(days=8), 0.0, 0.0),
        ("b", "request.opened", base + timedelta(days=1), 5.0, 5.0),
    ]
    near = lambda _rid, lat, _long: lat < 1  # noqa: E731
    end = datetime(2024, 5, 26)
    out = weekly_alerts(rows, near, (EventKind.OPENED,), base, end)
    assert out["total"] == 1
    assert out["weeks"] == [
        {"week": "2024-05-13", "alerts": 1},
        {"week": "2024-05-20", "alerts": 0},
    ]
    both = weekly_alerts(rows, near, (), base, end)
    assert [w["alerts"] for w in both["weeks"]] == [1, 1]
