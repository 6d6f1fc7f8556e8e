"""Volume preview: how many alerts a subscription would have produced, per week.

The rate is the events counted over the history actually present, never over a fixed 90
days: two days of data holding 19 matching events is about 66 a week, not 1.5. The window
starts at the city's first request (or 90 days before its newest event, whichever is later),
and a window shorter than `MIN_SPAN_DAYS` is treated as that long, so a few minutes of data
are not multiplied into thousands a week.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from connect311_contracts.events import EventKind

__all__ = ["MIN_SPAN_DAYS", "PREVIEW_DAYS", "history_window", "weekly_alerts"]

PREVIEW_DAYS = 90
"""The longest history a preview looks at."""
MIN_SPAN_DAYS = 1.0
"""The shortest span a weekly rate is extrapolated from."""


def history_window(first: datetime, newest: datetime) -> tuple[datetime, datetime]:
    """The span to count over: from the first request (at most 90 days back) to the newest."""
    return max(first, newest - timedelta(days=PREVIEW_DAYS)), newest


def weekly_alerts(
    candidates: Iterable[tuple[str, str, datetime, float, float]],
    inside: Callable[[str, float, float], bool],
    kinds: tuple[EventKind, ...],
    since: datetime,
    until: datetime,
) -> dict[str, Any]:
    """Count matching events in [since, until], per Monday-started week and per week on average."""
    wanted = {f"request.{k.value}" for k in kinds}
    weeks: Counter[date] = Counter()
    for rid, event_type, at, lat, long in candidates:
        if wanted and event_type not in wanted:
            continue
        if since <= at <= until and inside(rid, lat, long):
            day = at.date()
            weeks[day - timedelta(days=day.weekday())] += 1
    span_days = max((until - since).total_seconds() / 86_400, 0.0)
    first = since.date() - timedelta(days=since.weekday())
    starts = [first + timedelta(weeks=i) for i in range((until.date() - first).days // 7 + 1)]
    total = sum(weeks.values())
    return {
        "days": PREVIEW_DAYS,
        "history_days": round(span_days, 2),
        "short_history": span_days < PREVIEW_DAYS,
        "since": since.date().isoformat(),
        "until": until.date().isoformat(),
        "total": total,
        "per_week_average": round(total * 7 / max(span_days, MIN_SPAN_DAYS), 2),
        "weeks": [{"week": s.isoformat(), "alerts": weeks.get(s, 0)} for s in starts],
    }
