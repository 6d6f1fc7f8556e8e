"""Comments as a timeline (pure): one fetched record with N new comments -> N + 1 snapshots.

A source such as SeeClickFix returns an issue with all its comments, but a snapshot has one
`status_notes`. So that no comment vanishes, each comment newer than the stored snapshot
becomes its own snapshot, in time order: the request as it stood then, with
`status_notes` = that comment and `updated_datetime` = its time. The fetched record comes
last. What the request "stood as" is the stored snapshot; for a request seen for the first
time, the record itself as it was opened (not yet closed, no note), like an export's
lifecycle in `timeline`; a comment made once the record's closure had happened shows it
closed. Only comments newer than the stored snapshot are expanded, so a re-poll expands
nothing and publishes nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_ingestor.changes import as_of
from connect311_ingestor.records import Note

__all__ = ["Step", "as_opened", "steps"]


@dataclass(frozen=True)
class Step:
    """A snapshot to run through change detection; `news` is True for a comment, which is
    its own timeline entry even when its text repeats the one before."""

    request: ServiceRequest
    news: bool


def as_opened(request: ServiceRequest) -> ServiceRequest:
    """The request as it was first reported: not closed yet, no note, at its requested time."""
    update: dict[str, object] = {
        "status_notes": None,
        "updated_datetime": request.requested_datetime,
    }
    if request.status is RequestStatus.CLOSED:
        update.update(
            status=RequestStatus.OPEN, raw_status="Open", closed_reason=None, closed_datetime=None
        )
    return request.model_copy(update=update)


def _closed_by(request: ServiceRequest, at: datetime) -> bool:
    """Whether the request's closure had happened at `at`."""
    closed = request.closed_datetime
    return request.status is RequestStatus.CLOSED and closed is not None and closed <= at


def steps(
    stored: ServiceRequest | None, latest: ServiceRequest, notes: Sequence[Note]
) -> list[Step]:
    """The snapshots to ingest, oldest first, for a fetched record and its comments."""
    cutoff = as_of(stored) if stored is not None else None
    opened = latest.requested_datetime
    # Time order, list order among equals; a comment stamped before the request was opened
    # (clock skew) is placed at the opening rather than lost.
    timed = sorted(
        ((max(n.at, opened), i, n.text) for i, n in enumerate(notes)), key=lambda t: t[:2]
    )
    fresh = [(at, text) for at, _, text in timed if cutoff is None or at > cutoff]
    if not fresh:
        return [Step(latest, news=False)]
    base = stored if stored is not None else as_opened(latest)
    out = [] if stored is not None else [Step(base, news=False)]
    for at, text in fresh:
        state = latest if _closed_by(latest, at) else base
        note = state.model_copy(update={"status_notes": text, "updated_datetime": at})
        out.append(Step(note, news=True))
    last = fresh[-1][0]
    if as_of(latest) < last:
        # The record must not look older than its own newest comment, or it would be ignored.
        latest = latest.model_copy(update={"updated_datetime": last})
    out.append(Step(latest, news=False))
    return out
