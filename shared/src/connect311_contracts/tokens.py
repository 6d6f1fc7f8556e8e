"""Signed, expiring tokens in links (confirm, unsubscribe, manage): one format, two services."""

from __future__ import annotations

from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

__all__ = ["InvalidToken", "TokenPurpose", "read_subscription_token", "sign_subscription_token"]


class TokenPurpose(StrEnum):
    """A token signed for one purpose is useless for another (separate salts)."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    MANAGE = "manage"


class InvalidToken(Exception):
    """The token is forged, for another purpose, or expired."""


def sign_subscription_token(secret: str, purpose: TokenPurpose, subscription_id: str) -> str:
    """A URL-safe token naming one subscription, for one purpose."""
    return URLSafeTimedSerializer(secret, salt=f"connect311.{purpose}").dumps(subscription_id)


def read_subscription_token(
    secret: str, purpose: TokenPurpose, token: str, max_age_s: int | None
) -> str:
    """The subscription id inside a valid token; raises InvalidToken otherwise."""
    serializer = URLSafeTimedSerializer(secret, salt=f"connect311.{purpose}")
    try:
        value = serializer.loads(token, max_age=max_age_s)
    except SignatureExpired as exc:
        raise InvalidToken("this link has expired") from exc
    except BadSignature as exc:
        raise InvalidToken("this link is not valid") from exc
    if not isinstance(value, str):
        raise InvalidToken("this link is not valid")
    return value
