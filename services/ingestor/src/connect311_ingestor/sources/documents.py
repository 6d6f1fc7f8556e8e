"""Whole-document failures: a feed page that could not be read at all."""

from __future__ import annotations

from collections.abc import Sequence

from connect311_ingestor.records import Rejected
from connect311_ingestor.sources.http import FetchError


class FeedUnusable(FetchError):
    """A feed document was rejected as a whole; its window is retried on a later poll.

    The reject is published first (operators see it); the watermark does not move past
    data we never read, so a transient bad page skips nothing.
    """


def document_reject(results: Sequence[object], where: str) -> Rejected | None:
    """The rejection of the whole document at `where`, if that is what the parser returned."""
    first = results[0] if len(results) == 1 else None
    return first if isinstance(first, Rejected) and first.location == where else None


def unusable(reject: Rejected) -> FeedUnusable:
    """The error that stops a poll cycle after a whole-document reject."""
    return FeedUnusable(f"{reject.location}: {reject.reason.value}: {reject.detail}")
