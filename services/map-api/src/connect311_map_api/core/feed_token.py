"""The private feed URL's token: a subscription id and a version, signed (pure).

Signed with the shared secret like the confirm and manage links (itsdangerous, its own
salt, so no other link's token works here and this one works nowhere else). It does not
expire, since feed readers keep a URL for years; it is revoked instead, by raising the
subscription's stored version (db/feed_tokens.py): a token naming an older version is gone.
The timestamped form keeps the token shaped like the other link tokens, so the log
redaction (tokenlog.py) recognises it anywhere.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

from connect311_contracts.tokens import InvalidToken

__all__ = ["read_feed_token", "sign_feed_token"]

_SALT = "connect311.feed"


def sign_feed_token(secret: str, subscription_id: str, version: int) -> str:
    """A URL-safe token for one subscription's feed at one version."""
    return URLSafeTimedSerializer(secret, salt=_SALT).dumps([subscription_id, version])


def read_feed_token(secret: str, token: str) -> tuple[str, int]:
    """(subscription id, version) inside a valid token; raises InvalidToken otherwise."""
    try:
        value = URLSafeTimedSerializer(secret, salt=_SALT).loads(token)
    except BadSignature as exc:
        raise InvalidToken("this feed address is not valid") from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or type(value[1]) is not int
    ):
        raise InvalidToken("this feed address is not valid")
    return value[0], value[1]
