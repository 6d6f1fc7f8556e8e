"""Replay timeline (pure): an export's rows as the snapshots a live feed would have shown."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connect311_contracts.request import RequestStatus, ServiceRequest

_TIMES = ("requested_datetime", "updated_datetime", "closed_datetime", "expected_datetime")


@dataclass(frozen=True)
class Cue:
    """A snapshot to ingest when the feed clock reaches `at`."""

    at: datetime
    request: ServiceRequest


def shifted(request: ServiceRequest, delta: timedelta) -> ServiceRequest:
    """The request with every timestamp moved by `delta`."""
    moved = {
        name: value + delta for name in _TIMES if (value := getattr(request, name)) is not None
    }
    return request.model_copy(update=moved)


def lifecycle(request: ServiceRequest) -> list[Cue]:
    """An exported row as it appeared over time: opened when requested, closed when closed.

    An export only holds the final state; a closed request is first shown as open (without
    its closing fields) at its requested time, then as exported at its closed time.
    """
    closed_at = request.closed_datetime
    if request.status is not RequestStatus.CLOSED or closed_at is None:
        return [Cue(request.requested_datetime, request)]
    if closed_at <= request.requested_datetime:
        return [Cue(closed_at, request)]
    opened = request.model_copy(
        update={
            "status": RequestStatus.OPEN,
            "raw_status": "Open",
            "closed_reason": None,
            "closed_datetime": None,
            "status_notes": None,
            "updated_datetime": request.requested_datetime,
        }
    )
    return [Cue(request.requested_datetime, opened), Cue(closed_at, request)]


def timeline(
    requests: Iterable[ServiceRequest], *, start: datetime | None = None, as_lifecycle: bool = True
) -> list[Cue]:
    """Every cue in feed-time order; with `start`, times shift so the earliest request is then."""
    rows = list(requests)
    if start is not None and rows:
        delta = start - min(r.requested_datetime for r in rows)
        rows = [shifted(r, delta) for r in rows]
    cues = [
        c for r in rows for c in (lifecycle(r) if as_lifecycle else [Cue(r.requested_datetime, r)])
    ]
    return sorted(cues, key=lambda c: c.at)


def wall_offset(cue_at: datetime, feed_start: datetime, speed: float) -> float:
    """Seconds after the replay's start at which a cue is due, at `speed` x real time."""
    return max(0.0, (cue_at - feed_start).total_seconds() / speed)
