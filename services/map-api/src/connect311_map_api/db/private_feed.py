"""One page of an alert's private feed: the recorded changes it covers (history, read in
bounded chunks) and the overdue requests derived from the stored state, merged newest first
with exact keyset paging (core/feed_merge.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from connect311_contracts.service_levels import ServiceLevels
from connect311_map_api.core.feed_merge import Key, merge_page
from connect311_map_api.core.feed_overdue import Late
from connect311_map_api.core.feed_scope import EventScope
from connect311_map_api.db import feeds
from connect311_map_api.db.feed_overdue import newest_overdue

__all__ = ["SCAN_CHUNK", "SCAN_MAX", "private_page", "scoped_page"]

SCAN_CHUNK = 500  # history rows read at a time for a private feed (exact shape test in Python)
SCAN_MAX = 20_000  # rows one private-feed page may read; past it the page ends, `next` goes on


def scoped_page(
    conn: Connection, scope: EventScope, limit: int, before: Key | None
) -> tuple[list[Any], Key | None]:
    """Up to `limit` changes in scope and the key the walk stopped at (None: no more).

    Reads at most SCAN_MAX rows: a page that reaches it ends early at the last row read, so
    no request costs more than that and the walk still sees everything.
    """
    found: list[Any] = []
    last: Any = None
    for scanned, (row, in_scope) in enumerate(feeds.scoped_rows(conn, scope, before, SCAN_CHUNK)):
        if in_scope:
            found.append(row)
            if len(found) > limit:
                end = found[limit - 1]
                return found[:limit], (end["source_at"], end["event_id"])
        last = row
        if scanned + 1 >= SCAN_MAX:
            return found, (last["source_at"], last["event_id"])
    return found, None


def private_page(
    conn: Connection,
    scope: EventScope,
    levels: ServiceLevels | None,
    now: datetime,
    limit: int,
    before: Key | None,
) -> tuple[list[Mapping[str, Any] | Late], Key | None]:
    """A page of the private feed: recorded changes and (with `levels`, when the alert asks
    for them) the overdue requests derived from the stored state at `now`, merged newest
    first, and the key the next page starts after (None: the last page)."""
    rows, read_to = scoped_page(conn, scope, limit, before)
    late = []
    if levels is not None:  # the newest `limit + 1`: enough to know whether more follow
        late = newest_overdue(conn, scope, levels, now, before, limit + 1)
    return merge_page(
        [((row["source_at"], row["event_id"]), row) for row in rows],
        read_to,
        [(item.key, item) for item in late],
        limit,
    )
