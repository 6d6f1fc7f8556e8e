"""One page of a feed drawn from two newest-first sources (pure): recorded changes, read a
page at a time, and derived entries (overdue requests), each keyed by (time, key).

Paging stays exact (RFC 5005: every entry exactly once across pages) because both sources
use the cursor's order: newest first, ties broken by the larger key, "after" a cursor
meaning strictly smaller. The first source says how far it read; the second gives every
entry after the cursor that can still be on this page (its `limit + 1` newest suffice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

__all__ = ["Key", "merge_page"]

Key = tuple[datetime, str]
A = TypeVar("A")
B = TypeVar("B")


def merge_page(
    read: Sequence[tuple[Key, A]],
    read_to: Key | None,
    derived: Sequence[tuple[Key, B]],
    limit: int,
) -> tuple[list[A | B], Key | None]:
    """Up to `limit` items newest first, and the key the next page starts after (None: last).

    `read`: the first source's items after the cursor (at most `limit`), newest first;
    `read_to`: the key it stopped at, None when it has nothing more. `derived`: the second
    source's newest items after the cursor (at least `limit + 1` when it has that many).
    A derived item older than `read_to` waits for the page that reads past it.
    """
    picks: list[tuple[Key, A | B]] = list(read)
    picks += [(key, item) for key, item in derived if read_to is None or key > read_to]
    picks.sort(key=lambda pick: pick[0], reverse=True)
    if len(picks) > limit:
        return [item for _, item in picks[:limit]], picks[limit - 1][0]
    return [item for _, item in picks], read_to
