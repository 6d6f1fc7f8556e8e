"""Bearer-token checks for admin and push endpoints: one parser for every service.

`Authorization: Bearer <token>` (RFC 6750): the scheme is required and case-insensitive,
the token is compared in constant time against every configured token (no early exit, so
the time taken does not tell which one nearly matched).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

__all__ = ["bearer_matches", "bearer_token"]

_SCHEME = "bearer"


def bearer_token(header: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` header, or None if there is none.

    No scheme, another scheme (`Basic`), an empty token or a token with inner spaces all
    give None.
    """
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    token = rest.strip()
    if scheme.lower() != _SCHEME or not token or any(ch.isspace() for ch in token):
        return None
    return token


def bearer_matches(header: str | None, tokens: Iterable[str]) -> bool:
    """True when the header carries one of `tokens` (empty tokens never match)."""
    given = bearer_token(header)
    if given is None:
        return False
    given_bytes = given.encode()
    matched = False
    for token in tokens:
        if token and hmac.compare_digest(given_bytes, token.encode()):
            matched = True
    return matched
