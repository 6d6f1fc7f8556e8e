"""Feed queries: requests by newest change, and the recorded changes a subscription covers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from connect311_map_api.core.feed_scope import EventScope
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.db.queries import _small_bbox, conditions
from connect311_map_api.db.tables import history, requests, subscriptions

r = requests.c
h = history.c

# The columns an event entry shows: the change from the history, the rest from its request.
EVENT_COLUMNS = (
    h.event_id,
    h.event_type,
    h.status,
    h.previous_status,
    h.status_notes,
    h.source_at,
    r.service_request_id,
    r.service_name,
    r.service_code,
    r.agency_responsible,
    r.dataset,
    r.address,
    r.requested_datetime,
    r.lat,
    r.long,
)


def changed_page(
    conn: Connection, f: RequestFilters, limit: int, before: tuple[datetime, int] | None
) -> Sequence[Any]:
    """Up to `limit` + 1 requests, newest change first (`rank_source_at`, then storage key).

    `before` is the (change time, key) a previous page ended on; the extra row tells the
    caller whether another page follows.
    """
    # A box covering much of the city: walk the change-time index rather than sort every
    # request in the box (the heuristic /api/requests pages use, see queries._small_bbox).
    where = conditions(f, bbox_index=_small_bbox(conn, f))
    if before is not None:
        at, pk = before
        where.append(or_(r.rank_source_at < at, and_(r.rank_source_at == at, r.pk < pk)))
    query = (
        select(requests)
        .where(and_(True, *where))
        .order_by(r.rank_source_at.desc(), r.pk.desc())
        .limit(limit + 1)
    )
    return conn.execute(query).all()


def newest_change(conn: Connection) -> datetime | None:
    """The latest change time of any request (an empty feed's `updated`)."""
    query = select(r.rank_source_at).order_by(r.rank_source_at.desc()).limit(1)
    result: datetime | None = conn.execute(query).scalar()
    return result


def scoped_events(
    conn: Connection, scope: EventScope, before: tuple[datetime, str] | None, chunk: int
) -> Sequence[Any]:
    """Up to `chunk` changes in scope, newest first (source time, then event id), alert-worthy
    only: backfill imports never alert, so they are never in a subscription's feed."""
    where = [h.backfill == 0, *conditions(scope.filters)]
    if scope.event_types:
        where.append(h.event_type.in_(scope.event_types))
    if scope.service_request_id is not None:
        where.append(h.service_request_id == scope.service_request_id)
    if scope.requested_since is not None:
        where.append(r.requested_datetime >= scope.requested_since)
    if before is not None:
        at, event_id = before
        where.append(or_(h.source_at < at, and_(h.source_at == at, h.event_id < event_id)))
    query = (
        select(*EVENT_COLUMNS)
        .join(requests, r.service_request_id == h.service_request_id)
        .where(*where)
        .order_by(h.source_at.desc(), h.event_id.desc())
        .limit(chunk)
    )
    return conn.execute(query).all()


def subscription_edited_at(conn: Connection, subscription_id: str) -> datetime | None:
    """When a subscription was last changed (an edit changes what its feed holds)."""
    query = select(subscriptions.c.updated_at).where(
        subscriptions.c.subscription_id == subscription_id
    )
    result: datetime | None = conn.execute(query).scalar()
    return result
