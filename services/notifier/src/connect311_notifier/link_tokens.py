"""The tokens of `connect311_contracts.tokens.sign_subscription_token`, signed at less cost.

Every alert carries two signed links (manage, unsubscribe). Signing one with the contract's
function builds an itsdangerous serializer and signer, derives the signing key from the
secret and salt, and computes the HMAC through the hmac module's pure-Python path (the
digest is given as a function): a quarter of rendering an alert (bench/README.md). Here
the serializer and the derived key are made once per secret and purpose, the HMAC is
computed in one call by OpenSSL, and the payload (the subscription id) is encoded once for
both links of an email. The token is the same string, byte for byte, as the contract's at
the same second (tests/unit/notifier/test_render.py), so the map API reads it as before.
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

from connect311_contracts.tokens import TokenPurpose

__all__ = ["TokenSigner", "payload", "token_signer"]


@functools.cache
def _serializer() -> URLSafeTimedSerializer:
    """Only its payload encoding is used (JSON, compressed when shorter, base64): no key."""
    return URLSafeTimedSerializer("unused")


@functools.lru_cache(maxsize=64)
def payload(subscription_id: str) -> bytes:
    """The token's first part, the same for every purpose and time."""
    return _serializer().dump_payload(subscription_id)


@dataclass(frozen=True)
class TokenSigner:
    """Signs tokens for one secret and purpose (salted `connect311.<purpose>`, as the
    contract's, with its serializer's default signer: timestamped, HMAC-SHA1, django-concat
    key derivation)."""

    key: bytes
    sep: bytes
    clock: TimestampSigner
    """Its get_timestamp is the contract's clock (tests freeze it there)."""

    def sign(self, subscription_id: str, now: float | None = None) -> str:
        """The token naming one subscription, stamped with `now` (default: the clock)."""
        stamp = self.clock.get_timestamp() if now is None else int(now)
        value = payload(subscription_id) + self.sep + base64_encode(int_to_bytes(stamp))
        signature = base64_encode(hmac.digest(self.key, value, "sha1"))
        return (value + self.sep + signature).decode("ascii")


@functools.lru_cache(maxsize=16)
def token_signer(secret: str, purpose: TokenPurpose) -> TokenSigner:
    """The signer for one secret and purpose, made once."""
    signer = URLSafeTimedSerializer(secret, salt=f"connect311.{purpose}").make_signer()
    if not isinstance(signer, TimestampSigner) or signer.digest_method().name != "sha1":
        raise RuntimeError("link_tokens assumes timestamped HMAC-SHA1 signatures")
    return TokenSigner(signer.derive_key(), signer.sep, signer)
