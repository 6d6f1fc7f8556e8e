"""Property tests for the shared normalization, each against a simple independent oracle."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.parsers.coordinates import coordinates
from connect311_ingestor.parsers.dates import MAX_YEAR, MIN_YEAR, parse_datetime
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.statuses import STATUS_WORDS, closed_reason_from_text, map_status
from connect311_ingestor.parsers.text import clean_text, repair_mojibake

ZONES = [
    ZoneInfo(z) for z in ("America/New_York", "America/Chicago", "Europe/London", "Asia/Kolkata")
]
# No per-example deadline: a loaded CI machine must not turn slowness into failures.
relaxed = settings(deadline=None)
in_range = st.datetimes(min_value=datetime(MIN_YEAR, 1, 2), max_value=datetime(MAX_YEAR, 12, 30))


@relaxed
@given(naive=in_range, offset_minutes=st.integers(-14 * 60, 14 * 60))
def test_iso_dates_with_offsets_round_trip_to_utc(naive: datetime, offset_minutes: int) -> None:
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    parsed = parse_datetime(aware.isoformat(), field_name="d")
    assert parsed is not None and parsed.tzinfo is UTC
    assert parsed == aware


@relaxed
@given(naive=in_range.map(lambda d: d.replace(microsecond=0)), tz=st.sampled_from(ZONES))
def test_local_us_dates_are_read_in_the_source_zone(naive: datetime, tz: ZoneInfo) -> None:
    # Skip wall times that do not exist or happen twice (DST changes): no single answer.
    assume(tz.utcoffset(naive.replace(fold=0)) == tz.utcoffset(naive.replace(fold=1)))
    text = naive.strftime("%m/%d/%Y %I:%M:%S %p")
    parsed = parse_datetime(text, field_name="d", tz=tz)
    assert parsed is not None and parsed.tzinfo is UTC
    assert parsed.astimezone(tz).replace(tzinfo=None) == naive  # same wall clock in the city
    assert parsed.replace(tzinfo=None) == naive - tz.utcoffset(naive)  # oracle: minus offset


@relaxed
@given(year=st.one_of(st.integers(1, MIN_YEAR - 1), st.integers(MAX_YEAR + 1, 9999)))
def test_placeholder_years_are_invalid_dates(year: int) -> None:
    with pytest.raises(RecordError) as caught:
        parse_datetime(f"{year:04d}-06-15T12:00:00Z", field_name="requested_datetime")
    assert caught.value.reason is RejectReason.INVALID_DATE
    assert str(year) in caught.value.detail


@relaxed
@given(text=st.text(max_size=40))
def test_date_parsing_never_crashes(text: str) -> None:
    try:
        parsed = parse_datetime(text, field_name="d")
    except RecordError as error:
        assert error.reason is RejectReason.INVALID_DATE
    else:
        assert parsed is None or (
            parsed.tzinfo is UTC and MIN_YEAR - 1 <= parsed.year <= MAX_YEAR + 1
        )


def test_known_date_formats() -> None:
    ny = ZoneInfo("America/New_York")
    expected = datetime(2023, 3, 1, 4, 45, tzinfo=UTC)
    for text in (
        "02/28/2023 11:45:00 PM",
        "2023-02-28 23:45:00",
        "2023-02-28T23:45:00.000",
        "2023-03-01T04:45:00Z",
        "Tue, 28 Feb 2023 23:45:00 -0500",
    ):
        assert parse_datetime(text, field_name="d", tz=ny) == expected, text


@relaxed
@given(word=st.text(max_size=30), dated=st.booleans())
def test_status_mapping_is_total(word: str, dated: bool) -> None:
    mapping = map_status(word, has_closed_date=dated)
    assert mapping.status in set(RequestStatus)
    if mapping.closed_reason is not None:
        assert mapping.status is RequestStatus.CLOSED
    if not mapping.known:
        assert mapping.status is (RequestStatus.CLOSED if dated else RequestStatus.OPEN)


@relaxed
@given(
    word=st.sampled_from(sorted(STATUS_WORDS)),
    upper=st.booleans(),
    pad=st.sampled_from(["", " ", "  \t"]),
)
def test_status_words_ignore_case_and_spacing(word: str, upper: bool, pad: str) -> None:
    variant = pad + (word.upper() if upper else word.title()) + pad
    assert map_status(variant) == STATUS_WORDS[word]


def test_status_table_covers_the_real_feeds() -> None:
    seen = {
        "Open": RequestStatus.OPEN,
        "Acknowledged": RequestStatus.ACKNOWLEDGED,
        "Closed": RequestStatus.CLOSED,
        "Archived": RequestStatus.CLOSED,  # SeeClickFix
        "In Progress": RequestStatus.IN_PROGRESS,
        "Started": RequestStatus.IN_PROGRESS,  # NYC
        "in_progress": RequestStatus.IN_PROGRESS,
        "investigating": RequestStatus.IN_PROGRESS,
        "action_scheduled": RequestStatus.IN_PROGRESS,
        "duplicate": RequestStatus.CLOSED,
        "Completed": RequestStatus.CLOSED,
        "Canceled": RequestStatus.CLOSED,  # Chicago
    }
    for word, status in seen.items():
        assert map_status(word).status is status and map_status(word).known, word
    assert map_status("duplicate").closed_reason is ClosedReason.DUPLICATE
    assert map_status("Canceled").closed_reason is ClosedReason.CANCELLED
    assert map_status("internal_referral").closed_reason is ClosedReason.REFERRED


def test_closed_reason_from_resolution_text() -> None:
    assert closed_reason_from_text("Duplicate of Existing Case") is ClosedReason.DUPLICATE
    assert (
        closed_reason_from_text("closed or canceled at the complainant's request")
        is ClosedReason.CANCELLED
    )
    assert closed_reason_from_text("referred it to the NYPD") is ClosedReason.REFERRED
    assert closed_reason_from_text("The pothole was repaired.") is None
    assert closed_reason_from_text(None) is None


def coordinate_oracle(lat: object, long: object) -> str:
    """Brute-force statement of the rules: 'ok' or the reason."""

    def blank(v: object) -> bool:
        return v is None or (isinstance(v, str) and v.strip() == "")

    if blank(lat) or blank(long):
        return "missing_coordinates"
    try:
        la, lo = float(lat), float(long)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "invalid_coordinates"
    if any(math.isnan(v) or math.isinf(v) for v in (la, lo)):
        return "invalid_coordinates"
    if abs(la) > 90 or abs(lo) > 180 or (la == 0 and lo == 0):
        return "invalid_coordinates"
    return "ok"


coordinate_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "abc", "0", "0.0", "91", "-180", "1e999"]),
    st.integers(-200, 200),
)


@relaxed
@given(lat=coordinate_values, long=coordinate_values)
def test_coordinate_validation_agrees_with_the_oracle(lat: object, long: object) -> None:
    try:
        result = coordinates(lat, long)
    except RecordError as error:
        assert error.reason.value == coordinate_oracle(lat, long)
    else:
        assert coordinate_oracle(lat, long) == "ok"
        assert result == (float(lat), float(long))  # type: ignore[arg-type]


@relaxed
@given(text=st.text(max_size=3000), limit=st.integers(50, 2000))
def test_clean_text_respects_limits(text: str, limit: int) -> None:
    cleaned = clean_text(text, limit)
    if text.strip() == "":
        assert cleaned is None
    else:
        assert cleaned is not None and 0 < len(cleaned) <= limit
        if len(text.strip()) <= limit and text.isascii():
            assert cleaned == text.strip()  # short clean text passes through untouched


# What 311 text holds: ASCII, accented Latin letters, typographic quotes, dashes, ellipsis.
FEED_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0xC0, max_codepoint=0xFF),
        st.sampled_from("\u2018\u2019\u201c\u201d\u2013\u2014\u2026"),
    ),
    max_size=60,
)


@relaxed
@given(text=FEED_TEXT)
def test_mojibake_repair_undoes_latin1_damage(text: str) -> None:
    damaged = text.encode("utf-8").decode("latin-1")
    # Unambiguous damage: C1 control characters never occur in real text. (Damage such as
    # "Ã¥" for "å" can be real text, so it is left to ftfy's judgement and not promised.)
    assume(any("\u0080" <= ch <= "\u009f" for ch in damaged))
    assert repair_mojibake(damaged) == text


@relaxed
@given(text=FEED_TEXT.filter(lambda t: not set(t) & {"\u00c2", "\u00c3", "\u00e2"}))
def test_mojibake_repair_leaves_clean_feed_text_alone(text: str) -> None:
    # Only the lead characters of UTF-8 read as Latin-1 (Â, Ã, â) can start a repair.
    assert repair_mojibake(text) == text


def test_mojibake_repair_leaves_clean_text_alone() -> None:
    for text in (
        "café",
        "Transportation\u2019s",
        "\u201cLearn More\u201d",
        "São Paulo",
        "naïve 100°",
        "plain",
    ):
        assert repair_mojibake(text) == text
    assert (
        repair_mojibake("Transportation\u00e2\u0080\u0099s website")
        == "Transportation\u2019s website"
    )
