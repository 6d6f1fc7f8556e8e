"""Conditional GET (RFC 9110 section 13): ETags from the body, Last-Modified, and the 304 rule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

__all__ = ["etag_of", "http_date", "not_modified"]

MAX_VALIDATORS = 50
"""More ETags than this in one If-None-Match are not compared (the header is not a list of
every version a client ever saw); the answer is then a full 200."""


def etag_of(body: bytes, suffix: str = "") -> str:
    """A strong ETag for a body: the same bytes always get the same tag, across processes.

    `suffix` tells representations of one resource apart (a gzip body: ".gz", RFC 9110 8.8.3).
    """
    return '"' + hashlib.sha256(body).hexdigest()[:32] + suffix + '"'


def http_date(moment: datetime) -> str:
    """An HTTP-date (IMF-fixdate) for a Last-Modified header, to the second."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return format_datetime(aware.replace(microsecond=0), usegmt=True)


def _parse_date(text: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # an unreadable date is ignored, as the RFC says
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag  # weak comparison, as for GET


def not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: datetime | None = None,
) -> bool:
    """True when the client's copy is current, so the answer is 304 Not Modified.

    If-None-Match wins when present (If-Modified-Since is then ignored); otherwise the
    representation is unchanged when it was last modified no later than the given date.
    """
    if if_none_match is not None:
        tags = if_none_match.split(",", MAX_VALIDATORS)[:MAX_VALIDATORS]
        return any(t.strip() == "*" or _opaque(t) == etag for t in tags)
    if if_modified_since is None or last_modified is None:
        return False
    since = _parse_date(if_modified_since[:100])
    if since is None:
        return False
    modified = last_modified.replace(tzinfo=UTC) if last_modified.tzinfo is None else last_modified
    return modified.replace(microsecond=0) <= since
