"""The department view's numbers equal a plain recount of random request histories.

Histories mix every status, reopen (an open snapshot still carrying its old close time),
late and repeated events in any order and batching, feed due dates (some before the request,
which must be ignored), requests dated after `now`, and three kinds of target (business
days, elapsed hours, none). They are stored by the real state writer; the view is read back
from the database. The recount below is written out plainly from the events alone: the
latest snapshot of each request by (source time, ingest time, event id), then every number
by its definition, with its own due-date and percentile arithmetic.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_contracts.due import DueInput
from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.service_levels import parse_service_levels
from connect311_map_api.core.departments import department_report
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.periods import Period, resolve_period
from connect311_map_api.db.department_queries import department_rows
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import event
from tests.unit.map_api.test_aggregates import _empty
from tests.unit.map_api.test_aggregates import engine as engine  # the fixture: one database

NY = ZoneInfo("America/New_York")
NOW = datetime(2024, 6, 20, 15, 30)  # naive UTC, a Thursday
DAY = 86_400
LEVELS = parse_service_levels(
    {
        "service_code": {"POT": {"days": 2, "business_days": True}},
        "agency": {"Water": {"hours": 30}},
    },
    NY,
)
AGENCIES = ["Streets", "Water", None]
PERIODS = ["7d", "30d", "90d", "month", "last-month"]

# Edges where a number changes: age buckets (8, 31 and 91 days), period starts (7, 30, 60,
# 90 and 180 days back, month starts) and "now" itself, each hit exactly and a second off.
EDGES = [0, 7 * DAY, 8 * DAY, 30 * DAY, 31 * DAY, 60 * DAY, 90 * DAY, 91 * DAY, 180 * DAY]
MONTH_STARTS = [NOW - datetime(2024, 6, 1, 4), NOW - datetime(2024, 5, 1, 4)]  # EDT midnights
EDGE_SECONDS = [int(t.total_seconds()) for t in MONTH_STARTS] + EDGES
near_edge = st.builds(
    lambda edge, off: edge + off, st.sampled_from(EDGE_SECONDS), st.sampled_from([-1, 0, 1])
)
# Closes this long after the request tie on the median, and meet a due date to the second
# (a feed date as long, or Water's 30 hours): "within target" includes the due time itself.
FEW_DURATIONS = [1_800, 30 * 3_600, 2 * DAY, 9 * DAY]
requests_st = st.fixed_dictionaries(
    {
        "agency": st.sampled_from(AGENCIES),
        "code": st.sampled_from(["POT", "TREE"]),
        "dataset": st.sampled_from(["311", "other"]),
        # Seconds before NOW the request was made: up to 200 days, some dated ahead of it.
        "made_ago": st.integers(-2 * DAY, 200 * DAY) | near_edge,
    }
)
snapshots_st = st.fixed_dictionaries(
    {
        "status": st.sampled_from(list(RequestStatus)),
        # Few distinct durations too, so departments tie on the median and rank by closes.
        "close_after": st.integers(0, 120 * DAY) | st.sampled_from(FEW_DURATIONS),
        "close_ago": st.none() | near_edge,  # or closed exactly at (or by) an edge
        "keeps_close_time": st.booleans(),  # an open snapshot after a reopen
        "update_after": st.integers(0, 150 * DAY),
        # Due: relative to the request (some before it: ignored), or exactly around now.
        "expected_after": st.none()
        | st.integers(-3 * DAY, 40 * DAY)
        | st.sampled_from(FEW_DURATIONS),
        "expected_from_now": st.none() | st.sampled_from([-1, 0, 1]),
        "kind": st.sampled_from(["opened", "updated", "closed", "reopened"]),
    }
)
histories_st = st.lists(st.tuples(st.integers(0, 6), snapshots_st), min_size=1, max_size=16)


def _aware(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


def _events(
    requests: list[dict[str, Any]], history: list[tuple[int, dict[str, Any]]]
) -> list[RequestEvent]:
    out = []
    for i, (number, s) in enumerate(history):
        req = requests[number]
        made = NOW - timedelta(seconds=req["made_ago"], microseconds=number * 1_000)
        closed = made + timedelta(seconds=s["close_after"])
        if s["close_ago"] is not None:
            closed = max(made, NOW - timedelta(seconds=s["close_ago"]))
        is_closed = s["status"] is RequestStatus.CLOSED
        expected = s["expected_after"]
        if s["expected_from_now"] is not None:
            expected = (NOW - made).total_seconds() + s["expected_from_now"]
        snapshot = ServiceRequest(
            service_request_id=f"t:{number}",
            source="t",
            source_request_id=str(number),
            dataset=req["dataset"],
            service_code=req["code"],
            service_name=req["code"].title(),
            agency_responsible=req["agency"],
            status=s["status"],
            raw_status=s["status"].value,
            lat=27.77,
            long=-82.64,
            requested_datetime=_aware(made),
            updated_datetime=_aware(made + timedelta(seconds=s["update_after"])),
            closed_datetime=_aware(closed) if is_closed or s["keeps_close_time"] else None,
            expected_datetime=None
            if expected is None
            else _aware(made + timedelta(seconds=expected)),
        )
        occurred = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
        out.append(event(s["kind"], snapshot, occurred=occurred, event_id=f"e{i:03d}"))
    return out


# ------------------------------------------------------------------ the plain recount


def _latest(events: list[RequestEvent]) -> list[ServiceRequest]:
    """Each request's snapshot with the highest (source time, ingest time, event id)."""

    def rank(e: RequestEvent) -> tuple[datetime, datetime, str]:
        r = e.request
        times = [t for t in (r.requested_datetime, r.updated_datetime, r.closed_datetime) if t]
        return (max(times), e.occurred_at, e.event_id)

    best: dict[str, RequestEvent] = {}
    for e in events:
        rid = e.request.service_request_id
        if rid not in best or rank(e) > rank(best[rid]):
            best[rid] = e
    return [e.request for e in best.values()]


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _working_days_after(first: date, count: int) -> date:
    """The `count`-th Monday-to-Friday date after `first` (listed out, then picked)."""
    following = [first + timedelta(days=n) for n in range(1, 7 * count + 7)]
    return [d for d in following if d.weekday() < 5][count - 1]


def _due(r: ServiceRequest) -> datetime | None:
    made = _naive(r.requested_datetime)
    assert made is not None
    expected = _naive(r.expected_datetime)
    if expected is not None and expected >= made:
        return expected
    if r.service_code == "POT":  # 2 business days in New York
        local = made.replace(tzinfo=UTC).astimezone(NY).replace(tzinfo=None)
        while local.weekday() >= 5:  # weekend: from the next working day's midnight
            local = datetime.combine(local.date() + timedelta(days=1), time())
        day = _working_days_after(local.date(), 2)
        due_local = datetime.combine(day, local.time()).replace(tzinfo=NY)
        return due_local.astimezone(UTC).replace(tzinfo=None)
    if r.agency_responsible == "Water":
        return made + timedelta(hours=30)
    return None


def _whole_seconds(start: datetime, end: datetime) -> int:
    return int((end.replace(microsecond=0) - start.replace(microsecond=0)).total_seconds())


def _nearest_rank(values: list[int], fraction: float) -> int | None:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] if ordered else None


def _half_up(value: Fraction) -> float:
    """One decimal, halves away from zero, by decimal arithmetic."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _window(reqs: list[ServiceRequest], start: datetime, end: datetime) -> dict[str, Any]:
    opened = [r for r in reqs if start <= _naive(r.requested_datetime) < end]  # type: ignore[operator]
    closed = [
        r
        for r in reqs
        if r.status is RequestStatus.CLOSED
        and r.closed_datetime is not None
        and start <= _naive(r.closed_datetime) < end  # type: ignore[operator]
    ]
    with_target = [r for r in closed if _due(r) is not None]
    within = [r for r in with_target if _naive(r.closed_datetime) <= _due(r)]  # type: ignore[operator]
    counted = []
    for r in closed:
        seconds = _whole_seconds(_naive(r.requested_datetime), _naive(r.closed_datetime))  # type: ignore[arg-type]
        counted.append(seconds // 60 * 60 if seconds < 2 * DAY else seconds // 3600 * 3600)
    return {
        "opened": len(opened),
        "closed": len(closed),
        "closed_with_target": len(with_target),
        "closed_within_target": len(within),
        "share_within_target_pct": _half_up(Fraction(100 * len(within), len(with_target)))
        if with_target
        else None,
        "median_close_seconds": _nearest_rank(counted, 0.5),
        "p90_close_seconds": _nearest_rank(counted, 0.9),
    }


def _row(name: str, reqs: list[ServiceRequest], period: Period) -> dict[str, Any]:
    now_w = _window(reqs, period.start, period.end)
    before = _window(reqs, period.previous_start, period.start)
    open_now = [r for r in reqs if r.status is not RequestStatus.CLOSED]
    ages = [_whole_seconds(_naive(r.requested_datetime), NOW) for r in open_now]  # type: ignore[arg-type]
    days = [a // DAY for a in ages if a >= 0]
    change = None
    if now_w["closed_with_target"] and before["closed_with_target"]:
        share_now = Fraction(now_w["closed_within_target"], now_w["closed_with_target"])
        share_before = Fraction(before["closed_within_target"], before["closed_with_target"])
        change = _half_up(100 * (share_now - share_before))
    return {
        "agency": name,
        **now_w,
        "previous": before,
        "share_change_pts": change,
        "open": len(open_now),
        "age_0_7": sum(1 for d in days if d <= 7),
        "age_8_30": sum(1 for d in days if 8 <= d <= 30),
        "age_31_90": sum(1 for d in days if 31 <= d <= 90),
        "age_over_90": sum(1 for d in days if d > 90),
        "overdue": sum(1 for r in open_now if (d := _due(r)) is not None and d < NOW),
        "dated_in_future": sum(1 for a in ages if a < 0),
    }


def _recount(reqs: list[ServiceRequest], period: Period) -> dict[str, Any]:
    names = sorted({r.agency_responsible or "(unknown)" for r in reqs})
    rows = []
    for name in names:
        mine = [r for r in reqs if (r.agency_responsible or "(unknown)") == name]
        row = _row(name, mine, period)
        shown = row["open"] or any(w["opened"] or w["closed"] for w in (row, row["previous"]))
        if shown:
            rows.append(row)

    def rank_key(row: dict[str, Any]) -> tuple[Any, ...]:
        n, d = row["closed_within_target"], row["closed_with_target"]
        median = row["median_close_seconds"]
        share = Fraction(n, d) if d else Fraction(0)
        return (d == 0, -share, median is None, median or 0, -row["closed"], row["agency"])

    rows.sort(key=rank_key)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    counted = [
        r
        for r in reqs
        if r.status is not RequestStatus.CLOSED
        or (
            r.closed_datetime is not None and period.start <= _naive(r.closed_datetime) < period.end  # type: ignore[operator]
        )
    ]
    expected_ignored = [
        r
        for r in counted
        if r.expected_datetime is not None and r.expected_datetime < r.requested_datetime
    ]
    feed = [r for r in counted if r.expected_datetime and r not in expected_ignored]
    no_target = [r for r in counted if _due(r) is None]
    return {
        "departments": rows,
        "total": _row("All departments", reqs, period),
        "due_dates": {
            "feed": len(feed),
            "service_level": len(counted) - len(feed) - len(no_target),
            "no_target": len(no_target),
            "feed_date_ignored": len(expected_ignored),
            "closed_without_date": sum(
                1
                for r in reqs
                if r.status is RequestStatus.CLOSED
                and r.closed_datetime is None
                and period.start <= _naive(r.requested_datetime) < period.end  # type: ignore[operator]
            ),
        },
    }


# ------------------------------------------------------------------ the property


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    requests=st.lists(requests_st, min_size=7, max_size=7),
    history=histories_st,
    period_name=st.sampled_from(PERIODS),
    data=st.data(),
)
def test_department_numbers_equal_a_plain_recount(
    engine: Engine,
    requests: list[dict[str, Any]],
    history: list[tuple[int, dict[str, Any]]],
    period_name: str,
    data: st.DataObject,
) -> None:
    _empty(engine)
    events = _events(requests, history)
    # Any order, with repeats, in batches of any size: late events arrive after newer ones.
    replay = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events)))))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(replay)), max_size=4)))
    for start, end in zip([0, *cuts], [*cuts, len(replay)], strict=True):
        with engine.begin() as conn:
            apply_events(conn, replay[start:end])
    period = resolve_period(period_name, NOW, NY)
    final = _latest(events)
    for f in (RequestFilters(), RequestFilters(agencies=("Water",), datasets=("311",))):
        with engine.connect() as conn:
            shown = department_report(
                department_rows(conn, f, period.previous_start), LEVELS, period, NOW
            )
        chosen = [
            r
            for r in final
            if (not f.agencies or r.agency_responsible in f.agencies)
            and (not f.datasets or r.dataset in f.datasets)
        ]
        assert shown == _recount(chosen, period), f


def _closed(agency: str, made_ago_days: int, took: timedelta, code: str = "TREE") -> DueInput:
    made = NOW - timedelta(days=made_ago_days)
    return DueInput(made, None, code, None, agency, is_open=False, closed_at=made + took)


def test_rank_share_first_then_faster_median_then_more_closes_then_name() -> None:
    hour = timedelta(hours=1)
    items = [
        # No targets at all (TREE): ranked after every department with one.
        _closed("Parks", 12, hour),
        # 1 of 2 within target each (POT: 2 business days): tie on share...
        _closed("Roads", 12, hour, "POT"),
        _closed("Roads", 12, 9 * 24 * hour, "POT"),
        _closed("Bridges", 12, 2 * hour, "POT"),
        _closed("Bridges", 12, 9 * 24 * hour, "POT"),
        # ... Roads' median is faster (1 h vs 2 h); Lights ties Roads on share and median
        # but closed more, so ranks above it; Signs ties Lights on everything but the name.
        *[_closed("Lights", 12, hour, "POT") for _ in range(2)],
        *[_closed("Lights", 12, 9 * 24 * hour, "POT") for _ in range(2)],
        *[_closed("Signs", 12, hour, "POT") for _ in range(2)],
        *[_closed("Signs", 12, 9 * 24 * hour, "POT") for _ in range(2)],
    ]
    report = department_report(items, LEVELS, resolve_period("30d", NOW, NY), NOW)
    ranked = [(row["rank"], row["agency"]) for row in report["departments"]]
    assert ranked == [(1, "Lights"), (2, "Signs"), (3, "Roads"), (4, "Bridges"), (5, "Parks")]
    assert report["total"]["share_within_target_pct"] == 50.0
