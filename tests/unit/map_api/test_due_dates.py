"""Due dates: the order of the rules, business days, the city's wall clock, overdue, and a
service-levels file that says something impossible is refused with where and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connect311_contracts import service_levels
from connect311_contracts.due import DueInput, DueSource, due_date, due_status
from connect311_contracts.service_levels import ServiceLevelsError, Target, parse_service_levels
from connect311_map_api.core.periods import PeriodError, resolve_period
from connect311_map_api.settings import MapApiSettings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "service-levels.example.toml"
NY = ZoneInfo("America/New_York")


def utc(local: datetime) -> datetime:
    """A New York wall-clock time as naive UTC (the storage convention)."""
    return local.replace(tzinfo=NY).astimezone(UTC).replace(tzinfo=None)


def item(requested: datetime, **kw: object) -> DueInput:
    values: dict[str, object] = {
        "requested_at": requested,
        "expected_at": None,
        "service_code": "POT",
        "service_name": "Pothole",
        "agency": "Streets",
        "is_open": True,
    }
    return DueInput(**(values | kw))  # type: ignore[arg-type]


LEVELS = parse_service_levels(
    {
        "holidays": ["2024-07-04"],
        "service_code": {"pot": {"days": 3, "business_days": True}},
        "service_name": {" Graffiti ": {"hours": 8}},
        "agency": {"STREETS": {"days": 10}},
        "default": {"hours": 72},
    },
    NY,
)


def test_the_shipped_example_file_is_valid_and_sets_targets() -> None:
    levels = service_levels.read_service_levels(EXAMPLE, "America/New_York")
    assert levels.rules >= 10 and levels.default == Target(days=30)
    heat = levels.target_for("heat/hot water", None, None)
    assert heat == Target(hours=24)
    # Names are the feed's own spelling, matched ignoring case: NYC's "Agency Name".
    dot = levels.target_for(None, None, "Department of Transportation")
    assert dot == Target(days=15, business_days=True)


def test_feed_date_wins_then_code_name_agency_default() -> None:
    monday = utc(datetime(2024, 6, 3, 9, 0))
    feed = monday + timedelta(days=1)
    assert due_date(item(monday, expected_at=feed), LEVELS).source is DueSource.FEED
    assert due_date(item(monday), LEVELS).target == Target(days=3, business_days=True)
    by_name = item(monday, service_code="X", service_name="graffiti")
    assert due_date(by_name, LEVELS).at == monday + timedelta(hours=8)
    by_agency = item(monday, service_code="X", service_name="Y")
    assert due_date(by_agency, LEVELS).target == Target(days=10)
    other = item(monday, service_code=None, service_name=None, agency=None)
    assert due_date(other, LEVELS).at == monday + timedelta(hours=72)
    none = due_date(other, parse_service_levels({}, NY))
    assert none.at is None and none.source is None


def test_a_feed_date_before_the_request_is_ignored_and_said() -> None:
    monday = utc(datetime(2024, 6, 3, 9, 0))
    due = due_date(item(monday, expected_at=monday - timedelta(days=1)), LEVELS)
    assert due.feed_date_ignored and due.source is DueSource.SERVICE_LEVEL


@pytest.mark.parametrize(
    ("made", "due"),
    [
        # Monday 9:00 + 3 business days: Thursday 9:00.
        (datetime(2024, 6, 3, 9, 0), datetime(2024, 6, 6, 9, 0)),
        # Friday 16:10 + 3: Wednesday 16:10 (the weekend does not count).
        (datetime(2024, 6, 7, 16, 10), datetime(2024, 6, 12, 16, 10)),
        # Saturday: counting starts Monday 00:00, so + 3 is Thursday 00:00.
        (datetime(2024, 6, 8, 11, 0), datetime(2024, 6, 13, 0, 0)),
        # Tuesday 2 July + 3 skips the 4th (a holiday): Monday 8 July.
        (datetime(2024, 7, 2, 12, 0), datetime(2024, 7, 8, 12, 0)),
    ],
)
def test_business_days_skip_weekends_and_holidays(made: datetime, due: datetime) -> None:
    assert due_date(item(utc(made)), LEVELS).at == utc(due)


def test_days_keep_the_wall_clock_across_a_dst_change() -> None:
    # 10 days from Friday 8 March 2024, 16:10 EST is 18 March, 16:10 EDT: 239 elapsed hours.
    made = utc(datetime(2024, 3, 8, 16, 10))
    due = due_date(item(made, service_code="X", service_name="Y"), LEVELS).at
    assert due == utc(datetime(2024, 3, 18, 16, 10))
    assert due is not None and due - made == timedelta(hours=239)


def test_overdue_is_open_and_past_due_by_whole_seconds() -> None:
    made = utc(datetime(2024, 6, 3, 9, 0))
    due = utc(datetime(2024, 6, 6, 9, 0))
    at_due = due_status(item(made), LEVELS, due)
    assert not at_due.overdue and at_due.overdue_seconds is None
    late = due_status(item(made), LEVELS, due + timedelta(hours=2, microseconds=5))
    assert late.overdue and late.overdue_seconds == 7_200
    closed_late = item(made, is_open=False, closed_at=due + timedelta(seconds=1))
    status = due_status(closed_late, LEVELS, due + timedelta(days=9))
    assert not status.overdue and status.within_target is False
    on_time = due_status(item(made, is_open=False, closed_at=due), LEVELS, due)
    assert on_time.within_target is True


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"service_code": {"A": {"days": 2, "hours": 3}}}, "service_code.'A': give exactly one"),
        ({"agency": {"Parks": {"days": 0}}}, "days must be a whole number from 1"),
        ({"agency": {"Parks": {"days": 1.5}}}, "days must be a whole number"),
        ({"agency": {"Parks": {"hours": -1}}}, "hours must be above 0"),
        ({"agency": {"Parks": {"hours": 4, "business_days": True}}}, "applies to days"),
        ({"agency": {"Parks": {"weeks": 1}}}, "unknown key 'weeks'"),
        ({"agency": {"Parks": {"days": 1}, "parks ": {"days": 2}}}, "the same name twice"),
        ({"holidays": ["2024-13-01"]}, "is not a date"),
        ({"sla": {}}, "unknown key 'sla'"),
        ({"business_days": "yes"}, "business_days must be true or false"),
    ],
)
def test_impossible_targets_are_refused_with_where_and_why(
    document: dict[str, object], says: str
) -> None:
    with pytest.raises(ServiceLevelsError, match=says.replace(".", r"\.").replace("'", "'")):
        parse_service_levels(document)


def test_the_app_does_not_start_on_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "levels.toml"
    broken.write_text('[agency]\nParks = { days = "two" }\n')
    with pytest.raises(ValidationError, match=r"levels\.toml: agency\.'Parks': days must"):
        MapApiSettings(service_levels_file=broken)
    broken.write_text("[agency\n")
    with pytest.raises(ValidationError, match="not valid TOML"):
        MapApiSettings(service_levels_file=broken)


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "levels.toml"
    path.write_text("[agency]\nParks = { days = 2 }\n")
    first = service_levels.load(path, "UTC")
    assert service_levels.load(path, "UTC") is first  # unchanged: not parsed again
    path.write_text("[agency]\nParks = { days = 20 }\n")
    assert service_levels.load(path, "UTC").target_for(None, None, "Parks") == Target(days=20)


def test_periods_and_their_comparison_windows() -> None:
    now = datetime(2024, 3, 5, 15, 0)  # naive UTC: 10:00 in New York
    rolling = resolve_period("30d", now, NY)
    assert (rolling.start, rolling.end) == (now - timedelta(days=30), now)
    assert rolling.previous_start == now - timedelta(days=60)
    month = resolve_period("month", now, NY)
    assert month.start == utc(datetime(2024, 3, 1)) and month.end == now
    assert month.previous_start == month.start - (now - month.start)  # same length before
    january = resolve_period("last-month", datetime(2024, 1, 10), NY)
    assert (january.start, january.end) == (utc(datetime(2023, 12, 1)), utc(datetime(2024, 1, 1)))
    february = resolve_period("2024-02", now, NY)
    assert february.label == "February 2024" and february.end == utc(datetime(2024, 3, 1))
    assert resolve_period("2024-03", now, NY).end == now  # the current month: up to now
    for wrong in ("2024-04", "2024-13", "week", "30"):
        with pytest.raises(PeriodError):
            resolve_period(wrong, now, NY)
