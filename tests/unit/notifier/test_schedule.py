"""Digest schedule against a brute-force oracle that walks the clock in 15-minute steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from connect311_contracts.subscriptions import Delivery
from connect311_notifier.schedule import next_digest_at

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Adelaide", "Asia/Kolkata"]
STEP = timedelta(minutes=15)


def oracle(period: Delivery, now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The first quarter-hour instant after `now` that is a boundary of the period."""
    t = now.replace(minute=(now.minute // 15) * 15, second=0, microsecond=0)
    while True:
        t += STEP
        if t <= now:
            continue
        local = t.astimezone(tz)
        if period is Delivery.HOURLY and t.minute == 0:
            return t
        boundary = period is not Delivery.HOURLY and (local.hour, local.minute) == (hour, 0)
        if boundary and (period is Delivery.DAILY or local.weekday() == 0):
            return t


@given(
    period=st.sampled_from([Delivery.HOURLY, Delivery.DAILY, Delivery.WEEKLY]),
    now=st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    zone=st.sampled_from(ZONES),
    # Hours 1-3 can fall into a daylight-saving gap, where the oracle and the schedule
    # legitimately disagree on which instant is "02:00".
    hour=st.sampled_from([0, *range(4, 24)]),
)
def test_next_digest_matches_the_oracle(
    period: Delivery, now: datetime, zone: str, hour: int
) -> None:
    tz = ZoneInfo(zone)
    assert next_digest_at(period, now, tz, hour) == oracle(period, now, tz, hour)


def test_daily_digest_is_at_seven_local_time() -> None:
    tz = ZoneInfo("America/New_York")
    now = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)  # 08:00 EDT: today's 07:00 has passed
    due = next_digest_at(Delivery.DAILY, now, tz, 7)
    assert due.astimezone(tz).isoformat() == "2024-07-02T07:00:00-04:00"
