"""Volume preview: how many alerts a subscription would have produced, per week."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from connect311_contracts.events import EventKind

PREVIEW_DAYS = 90


def weekly_alerts(
    candidates: Iterable[tuple[str, str, datetime, float, float]],
    inside: Callable[[str, float, float], bool],
    kinds: tuple[EventKind, ...],
    since: date,
    until: date,
) -> dict[str, Any]:
    """Count matching events per Monday-started week between two days (inclusive)."""
    wanted = {f"request.{k.value}" for k in kinds}
    weeks: Counter[date] = Counter()
    for rid, event_type, at, lat, long in candidates:
        if wanted and event_type not in wanted:
            continue
        if inside(rid, lat, long):
            day = at.date()
            weeks[day - timedelta(days=day.weekday())] += 1
    first = since - timedelta(days=since.weekday())
    starts = [first + timedelta(weeks=i) for i in range((until - first).days // 7 + 1)]
    total = sum(weeks.values())
    return {
        "days": PREVIEW_DAYS,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "total": total,
        "per_week_average": round(total / (PREVIEW_DAYS / 7), 2),
        "weeks": [{"week": s.isoformat(), "alerts": weeks.get(s, 0)} for s in starts],
    }
