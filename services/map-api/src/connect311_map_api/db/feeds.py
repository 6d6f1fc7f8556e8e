"""Feed queries: requests by newest change, and the recorded changes a subscription covers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, not_, select

from connect311_map_api.core.feed_scope import EventScope
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.db.queries import _small_bbox, conditions
from connect311_map_api.db.tables import history, requests, subscriptions

__all__ = [
    "HISTORY_COLUMNS",
    "REQUEST_COLUMNS",
    "changed_page",
    "newest_change",
    "older_than",
    "scoped_rows",
    "subscription_edited_at",
]

r = requests.c
h = history.c

HISTORY_COLUMNS = (
    h.event_id,
    h.event_type,
    h.status,
    h.previous_status,
    h.status_notes,
    h.source_at,
    h.backfill,
)
# What an event entry shows from its request (the change itself comes from the history).
REQUEST_COLUMNS = (
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


def older_than(
    time_column: Any, key_column: Any, before: tuple[datetime, Any] | None
) -> list[ColumnElement[bool]]:
    """Strictly after (time, key) in newest-first order, as a range the time index can seek
    (an OR of the two cases would make SQLite scan from the newest end every page)."""
    if before is None:
        return []
    at, key = before
    return [time_column <= at, not_(and_(time_column == at, key_column >= key))]


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
    where += older_than(r.rank_source_at, r.pk, before)
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


def subscription_edited_at(conn: Connection, subscription_id: str) -> datetime | None:
    """When a subscription was last changed (an edit changes what its feed holds)."""
    query = select(subscriptions.c.updated_at).where(
        subscriptions.c.subscription_id == subscription_id
    )
    result: datetime | None = conn.execute(query).scalar()
    return result


def _request_conditions(scope: EventScope, bbox_index: bool) -> list[ColumnElement[bool]]:
    where = conditions(scope.filters, bbox_index=bbox_index)
    if scope.requested_since is not None:
        where.append(r.requested_datetime >= scope.requested_since)
    return where


def _by_place(
    conn: Connection, scope: EventScope, before: tuple[datetime, str] | None, chunk: int
) -> Iterator[tuple[Any, bool]]:
    """A small place (or one followed request): its requests by index, their changes sorted.

    Few requests, so sorting their changes is cheap; SQL applies every rule but the shape.
    """
    while True:
        where = [h.backfill == 0, *_request_conditions(scope, bbox_index=True)]
        where += older_than(h.source_at, h.event_id, before)
        if scope.event_types:
            where.append(h.event_type.in_(scope.event_types))
        if scope.service_request_id is not None:
            where.append(h.service_request_id == scope.service_request_id)
        query = (
            select(*HISTORY_COLUMNS, *REQUEST_COLUMNS)
            .join(requests, r.service_request_id == h.service_request_id)
            .where(*where)
            .order_by(h.source_at.desc(), h.event_id.desc())
            .limit(chunk)
        )
        rows = conn.execute(query).all()
        for row in rows:
            yield row._mapping, scope.inside(row.service_request_id, row.lat, row.long)
        if len(rows) < chunk:
            return
        before = (rows[-1].source_at, rows[-1].event_id)


def _by_time(
    conn: Connection, scope: EventScope, before: tuple[datetime, str] | None, chunk: int
) -> Iterator[tuple[Any, bool]]:
    """The whole city or a large place: walk every change newest first (the time index) and
    look its requests up by key, so no page sorts the city and each row costs one lookup."""
    while True:
        walk = (
            select(*HISTORY_COLUMNS, h.service_request_id)
            .where(*older_than(h.source_at, h.event_id, before))
            .order_by(h.source_at.desc(), h.event_id.desc())
            .limit(chunk)
        )
        rows = conn.execute(walk).all()
        ids = {row.service_request_id for row in rows}
        found = conn.execute(
            select(*REQUEST_COLUMNS).where(
                r.service_request_id.in_(ids), *_request_conditions(scope, bbox_index=False)
            )
        ).all()
        wanted = {req.service_request_id: req._mapping for req in found}
        for row in rows:
            req = wanted.get(row.service_request_id)
            ok = (
                req is not None
                and not row.backfill
                and (not scope.event_types or row.event_type in scope.event_types)
                and scope.inside(row.service_request_id, req["lat"], req["long"])
            )
            yield {**row._mapping, **(req or {})}, ok
        if len(rows) < chunk:
            return
        before = (rows[-1].source_at, rows[-1].event_id)


def scoped_rows(
    conn: Connection, scope: EventScope, before: tuple[datetime, str] | None, chunk: int
) -> Iterator[tuple[Any, bool]]:
    """Changes newest first from `before` on, each with whether it is in the scope.

    Every row read is yielded (in scope or not), so the caller can bound how many it reads
    and still give a cursor that resumes exactly after the last one.
    """
    f = scope.filters
    by_place = scope.service_request_id is not None or (f.bbox is not None and _small_bbox(conn, f))
    return (_by_place if by_place else _by_time)(conn, scope, before, chunk)
