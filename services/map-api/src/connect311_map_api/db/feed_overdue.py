"""The overdue requests a private feed shows: the newest few after a cursor, read from the
stored state (the map API keeps no `request.overdue` events; core/feed_overdue.py).

Two walks, because a due time comes from one of two places (one index,
`ix_requests_expected_requested`, serves both):

- the feed's own expected date: walk `expected_datetime` newest first (the due time itself);
- a service level (no expected date): walk requests newest made first. A due time is at
  most the longest target after the request was made (`longest_target`), so the walk stops
  once every older request would be due before the `k`th entry it already holds.

Each walk reads chunks and stops after `k` entries it can prove are the newest, so a page of
the feed costs about one chunk per walk, not the city. The subscription's place and filters
narrow in SQL (its box), the exact shape in Python, as for its recorded changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, not_, or_, select

from connect311_contracts.service_levels import ServiceLevels
from connect311_map_api.core.feed_merge import Key
from connect311_map_api.core.feed_overdue import Late, longest_target, went_overdue
from connect311_map_api.core.feed_scope import EventScope
from connect311_map_api.db.feeds import REQUEST_COLUMNS
from connect311_map_api.db.queries import _small_bbox, conditions
from connect311_map_api.db.tables import requests

__all__ = ["CHUNK", "newest_overdue"]

r = requests.c
CHUNK = 1_000
COLUMNS = (
    *REQUEST_COLUMNS,
    r.pk,
    r.status,
    r.expected_datetime,
    r.closed_datetime,
    r.rank_source_at,
)


def _scope_conditions(scope: EventScope, small_box: bool) -> list[ColumnElement[bool]]:
    """The alert's box and filters, and "still open at a due time it could hear of"."""
    where = conditions(scope.filters, bbox_index=small_box)
    if scope.service_request_id is not None:
        where.append(r.service_request_id == scope.service_request_id)
    # Closed before its due time: never overdue. Closed before the alert was confirmed:
    # before any due time the alert hears of (`went_overdue` checks the exact rule).
    closed_after = (
        r.closed_datetime > scope.overdue_since
        if scope.overdue_since is not None
        else r.closed_datetime.is_not(None)
    )
    where.append(or_(r.status != "closed", closed_after))
    return where


def _walk(
    conn: Connection,
    where: list[ColumnElement[bool]],
    column: Any,
    seek: Any,
    stop: Callable[[datetime], bool],
    first: int,
) -> Iterator[Any]:
    """Rows by `column` newest first (ties: storage key), a chunk at a time, until `stop`
    says (given the last row's value) that no later row can matter. `seek` is the column
    as the range conditions name it (see `_hidden`). Chunks start at `first` rows and
    double up to CHUNK: a page usually needs a few dozen."""
    last: tuple[datetime, int] | None = None
    size = min(first, CHUNK)
    while True:
        page = where
        if last is not None:
            at, pk = last
            page = [*where, seek <= at, not_(and_(seek == at, r.pk >= pk))]
        query = select(*COLUMNS).where(*page).order_by(column.desc(), r.pk.desc()).limit(size)
        rows = conn.execute(query).all()
        yield from rows
        if len(rows) < size:
            return
        size = min(2 * size, CHUNK)
        tail = rows[-1]
        last = (tail._mapping[column.name], tail.pk)
        if stop(last[0]):
            return


def _hidden(column: Any) -> Any:
    """The same value in an expression no index matches (the planner's hint, portable)."""
    return func.coalesce(column, column)


def newest_overdue(
    conn: Connection,
    scope: EventScope,
    levels: ServiceLevels,
    now: datetime,
    before: Key | None,
    k: int,
) -> list[Late]:
    """The `k` newest overdue entries of the scope after the cursor `before`, newest first.

    An entry's time is the due time, only once passed (`now`, naive UTC); its key the
    ingestor's event id.
    """
    if not scope.overdue:
        return []
    top = min(now, before[0]) if before is not None else now
    found: list[Late] = []

    def keep(row: Any) -> None:
        m = row._mapping
        late = went_overdue(m, levels, now, scope.overdue_since)
        if late is None or (before is not None and late.key >= before):
            return
        if scope.inside(m["service_request_id"], m["lat"], m["long"]):
            found.append(late)

    def kth() -> datetime | None:
        """The due time of the `k`th newest entry found so far (None: fewer found)."""
        found.sort(key=lambda late: late.key, reverse=True)
        del found[k:]
        return found[k - 1].due_at if len(found) >= k else None

    def beaten(latest: datetime) -> bool:
        """True when `k` entries are found and every one still unread is due before them
        (the walk's unread rows are due at `latest` or earlier)."""
        due = kth()
        return due is not None and due > latest

    f = scope.filters
    small_box = f.bbox is not None and _small_bbox(conn, f)
    base = _scope_conditions(scope, small_box)
    made, expected = r.requested_datetime, r.expected_datetime
    # A small box: its few requests by the place index, sorted. The same values through
    # coalesce keep SQLite from walking every request of a period by time instead.
    hide = small_box and conn.dialect.name == "sqlite"  # PostgreSQL plans with statistics
    seek_made, seek_expected = (_hidden(made), _hidden(expected)) if hide else (made, expected)
    # The city's own date: due at `expected_datetime` itself (when not before the making).
    by_date = [*base, seek_expected.is_not(None), expected >= made, seek_expected <= top]
    if scope.overdue_since is not None:
        by_date.append(seek_expected >= scope.overdue_since)
    for row in _walk(conn, by_date, expected, seek_expected, beaten, 4 * k):
        keep(row)
    span = longest_target(levels)
    if span is not None:  # without any service level only the city's dates make due times
        # A service level: no date of the city's (the index's NULL end, walked by making).
        by_level = [*base, seek_expected.is_(None), seek_made <= top]
        if scope.overdue_since is not None:
            by_level.append(seek_made >= scope.overdue_since - span)
        for row in _walk(conn, by_level, made, seek_made, lambda at: beaten(at + span), 4 * k):
            keep(row)
        # Or a city's date before the making (a data error the rule ignores). Rare, so all
        # are read; the index answers `expected < made` without reading the rows.
        broken = [*base, expected < made, expected < top, _hidden(made) <= top]
        for row in conn.execute(select(*COLUMNS).where(*broken)):
            keep(row)
    kth()
    return found
