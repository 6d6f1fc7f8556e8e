"""Open311 status notes older than what is stored, as timeline entries (pure).

The poller reads the requests list before `servicerequestupdates`, and the list already
holds the newest state, so change detection would drop every older update and its note
would never reach the timeline. Such an update becomes a *past note* instead: an event
whose snapshot is the request as that update described it (its status, its note, its
time, closed no later than then), with

- an event id derived from the source's update (`update_key`: request, update id and
  content), so a re-polled window carries the same id and is recognised as seen;
- `backfill` set: it is history (the current state and its email already went out), so
  the map API files it in the timeline by its source time, never rolls the current state
  back (a lower rank), and the matcher never emails it;
- `request.updated` as its type, whatever its status: the transitions themselves were
  published from the list, and counting this one as another closure would double-count.

The stored state is not changed by a past note.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from connect311_contracts.events import RequestUpdated
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_ingestor.changes import EVENT_NAMESPACE, changed_fields
from connect311_ingestor.records import Accepted, Rejected
from connect311_ingestor.updates import UpdateLike, apply_update

__all__ = ["as_noted", "past_note", "update_key"]


def update_key(update: UpdateLike) -> str:
    """A reproducible id for one update as the source gave it (request, id and content).

    A changed update (same id, new text or status) is a new key: a new timeline entry.
    """
    parts = (
        update.service_request_id,
        "update",
        update.update_id,
        update.updated_datetime.isoformat(),
        update.status.value,
        update.raw_status,
        update.description or "",
        update.media_url or "",
    )
    return str(uuid.uuid5(EVENT_NAMESPACE, "\n".join(parts)))


def as_noted(
    base: ServiceRequest, update: UpdateLike, location: str | None = None
) -> Accepted | Rejected:
    """The request as `update` described it at its own time, from a newer `base` snapshot.

    The note is the update's own (none when it has none, never the newer one), and a
    closure is dated no later than the update, so the entry sorts at the update's time.
    """
    applied = apply_update(base, update, location)
    if isinstance(applied, Rejected):
        return applied
    request = applied.request
    fix: dict[str, object] = {"status_notes": update.description or None}
    closed = request.closed_datetime
    at = update.updated_datetime
    if request.status is RequestStatus.CLOSED and closed is not None and closed > at:
        fix["closed_datetime"] = max(at, request.requested_datetime)
    return Accepted(request.model_copy(update=fix), location)


def past_note(
    noted: ServiceRequest,
    update: UpdateLike,
    *,
    before: ServiceRequest | None,
    now: datetime,
    trace_id: str | None = None,
) -> RequestUpdated:
    """The history event of a past note; `before` is the previous past note of the same
    request in this batch (None for the first: what preceded it is not known)."""
    return RequestUpdated(
        event_id=update_key(update),
        occurred_at=now,
        trace_id=trace_id,
        request=noted,
        previous_status=before.status if before is not None else None,
        changed_fields=changed_fields(before, noted) if before is not None else (),
        backfill=True,
    )
