"""Keyset cursors of feed pages (RFC 5005 `next` links): `<microseconds>.<key>` (pure).

A page ends at the last entry's (time, key); the next page starts strictly after it in
newest-first order, so a walk over a quiet feed sees every entry exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["MAX_CURSOR", "BadCursor", "decode", "encode"]

MAX_CURSOR = 140
"""Longest cursor accepted: 20 digits, a dot and a key of at most 100 characters."""
_EPOCH = datetime(1970, 1, 1)


class BadCursor(ValueError):
    """A cursor that no page of this feed produced."""


def encode(at: datetime, key: str | int) -> str:
    """The cursor after an entry changed at `at` (naive UTC) with tie-breaking `key`."""
    naive = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    micros = (naive - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{key}"


def decode(text: str) -> tuple[datetime, str]:
    """(naive UTC time, key) of a cursor; BadCursor with the reason otherwise."""
    micros, dot, key = text.partition(".")
    if not dot or not micros.isascii() or not micros.isdigit() or len(micros) > 20 or not key:
        raise BadCursor("cursor must be the value of a previous page's next link")
    if not key.isprintable() or len(key) > MAX_CURSOR:
        raise BadCursor("cursor must be the value of a previous page's next link")
    try:
        at = _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError as exc:
        raise BadCursor("cursor time is out of range") from exc
    return at, key
