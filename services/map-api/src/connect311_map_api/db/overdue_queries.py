"""Overdue requests from the stored state: a page of them (`/api/requests?overdue=true`) and
the overdue events a subscription would have heard of (the sign-up volume preview).

Overdue is judged in Python by the rule every service shares (`connect311_contracts.due`):
business days, holidays and the city's zone do not fit one SQL expression. SQL narrows to
open requests (or, for the preview, those still open at the start of the window) first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from connect311_contracts.due import due_date, due_status
from connect311_contracts.service_levels import ServiceLevels
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.state import naive_utc
from connect311_map_api.core.stored_due import due_input
from connect311_map_api.db.queries import conditions
from connect311_map_api.db.tables import requests

__all__ = ["overdue_candidates", "overdue_page"]

r = requests.c
CHUNK = 2_000


def overdue_page(
    conn: Connection,
    f: RequestFilters,
    levels: ServiceLevels,
    now: datetime,
    limit: int,
    after_pk: int | None,
) -> tuple[Sequence[Any], int | None]:
    """One keyset page (by storage key) of open requests overdue at `now` (naive UTC), with
    the next cursor: the same paging as the unfiltered list."""
    found: list[Any] = []
    where = [*conditions(f), r.status != "closed"]
    cursor = after_pk
    while len(found) <= limit:
        page = select(requests).where(and_(True, *where))
        if cursor is not None:
            page = page.where(r.pk > cursor)
        rows = conn.execute(page.order_by(r.pk).limit(CHUNK)).all()
        found += [row for row in rows if due_status(due_input(row), levels, now).overdue]
        if len(rows) < CHUNK:
            break
        cursor = rows[-1].pk
    if len(found) > limit:
        return found[:limit], found[limit - 1].pk
    return found, None


def overdue_candidates(
    conn: Connection, f: RequestFilters, levels: ServiceLevels, since: datetime, until: datetime
) -> Iterator[tuple[str, str, datetime, float, float]]:
    """(id, 'request.overdue', due time, lat, long) for each request that passed its due
    time in [since, until] while open, as the preview counts events.

    From the current state: a request closed after its due time counts, one closed before
    does not (as the ingestor's clock would have judged it).
    """
    start = naive_utc(since)
    query = select(requests).where(
        *conditions(f), or_(r.status != "closed", r.closed_datetime >= start)
    )
    for row in conn.execute(query.execution_options(yield_per=CHUNK)):
        item = due_input(row)
        due = due_date(item, levels).at
        if due is None or not (start <= due <= naive_utc(until)):
            continue
        closed = row.closed_datetime if row.status == "closed" else None
        if closed is None or closed > due:
            yield row.service_request_id, "request.overdue", due, row.lat, row.long
