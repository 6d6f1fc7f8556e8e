"""Pure digest schedule: when the next hourly, daily or weekly digest goes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connect311_contracts.subscriptions import Delivery


def next_digest_at(period: Delivery, now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The first digest boundary strictly after `now` (UTC result).

    Hourly: the next top of the hour. Daily: the next `hour`:00 local time. Weekly: the next
    Monday at `hour`:00 local time.
    """
    now = now.astimezone(UTC)
    if period is Delivery.HOURLY:
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if period is Delivery.INSTANT:
        return now
    local = now.astimezone(tz)
    day = local.date()
    while True:
        candidate = datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)
        weekly_ok = period is not Delivery.WEEKLY or day.weekday() == 0
        if candidate > now and weekly_ok:
            return candidate
        day += timedelta(days=1)
