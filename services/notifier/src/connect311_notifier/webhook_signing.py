"""Standard Webhooks signatures (https://www.standardwebhooks.com/): sign, verify, secrets.

A webhook carries three headers: `webhook-id` (the same on every retry, the receiver's
idempotency key), `webhook-timestamp` (this attempt, integer Unix seconds) and
`webhook-signature`: space-separated `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
one per secret, so a rotated-out secret keeps verifying until the receiver has the new one.
Secrets are shown as `whsec_<base64 of 24..64 random bytes>`.

Pure: no I/O; the caller passes the time in. Receivers in any language verify what this
signs with their own Standard Webhooks library (tested against the spec's published vector).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_secrets
from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "SignatureError",
    "decode_secret",
    "new_secret",
    "sign",
    "signature_header",
    "signed_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's marker, not a secret
MIN_SECRET_BYTES = 24
"""The spec's floor for a symmetric secret (192 bits)."""
MAX_SECRET_BYTES = 64
NEW_SECRET_BYTES = 32
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
DEFAULT_TOLERANCE_S = 300
"""Five minutes either side, as the reference libraries check against replays."""
MAX_ID_CHARS = 200
MAX_SIGNATURES = 20
"""More signatures than this in one header is not rotation but an attempt to make us work."""
_VERSION = "v1"


class SignatureError(ValueError):
    """A webhook that does not verify; `reason` is one short, countable code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_secret(nbytes: int = NEW_SECRET_BYTES) -> str:
    """A fresh random secret, as shown to its owner once: `whsec_<base64>`."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(random_secrets.token_bytes(nbytes)).decode("ascii")


def decode_secret(secret: str | bytes) -> bytes:
    """The key bytes of a `whsec_` secret (the prefix optional); raw bytes pass through.

    Padding may be missing (some providers strip it); anything not base64 is refused rather
    than read leniently, since a secret that silently decodes differently never verifies.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip().removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("the secret is not base64") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def _check_id(msg_id: str) -> None:
    # A '.' in the id would let one (id, timestamp) pair pose as another in the signed text.
    if not msg_id or len(msg_id) > MAX_ID_CHARS or "." in msg_id or not msg_id.isascii():
        raise ValueError("a webhook id is 1-200 ASCII characters without '.'")


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature, `v1,<base64>`, over exactly the bytes that are sent."""
    _check_id(msg_id)
    digest = _digest(decode_secret(secret), msg_id, timestamp, body)
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(
    secrets: Sequence[str | bytes], msg_id: str, timestamp: int, body: bytes
) -> str:
    """The `webhook-signature` value: one signature per secret (current first), space-separated."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets)


def signed_headers(
    secrets: Sequence[str | bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: signature_header(secrets, msg_id, timestamp, body),
    }


def _timestamp(text: str) -> int:
    # Integer seconds only (the spec's form): "1e9", " 12", "+5" or a float are refused.
    if not text or len(text) > 12 or not (text.isascii() and text.isdigit()):
        raise SignatureError("bad_timestamp")
    return int(text)


def _candidates(header: str) -> list[bytes]:
    """The v1 signatures in a header; other versions (v1a) and malformed ones are skipped."""
    found = []
    for token in header.split(" ")[:MAX_SIGNATURES]:
        version, _, value = token.partition(",")
        if version != _VERSION or not value:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> str:
    """Check a received webhook; its id when it verifies, else SignatureError(reason).

    Header names are matched case-insensitively; the timestamp must be within
    `tolerance_s` of `now` (replays and clock skew); every v1 signature is compared in
    constant time against the expected one, and any match is enough (rotation).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(HEADER_ID, "")
    stamp = lower.get(HEADER_TIMESTAMP, "")
    header = lower.get(HEADER_SIGNATURE, "")
    if not (msg_id and stamp and header):
        raise SignatureError("missing_headers")
    try:
        _check_id(msg_id)
    except ValueError as exc:
        raise SignatureError("bad_id") from exc
    timestamp = _timestamp(stamp)
    if timestamp < now - tolerance_s:
        raise SignatureError("too_old")
    if timestamp > now + tolerance_s:
        raise SignatureError("too_new")
    expected = _digest(decode_secret(secret), msg_id, timestamp, body)
    # Every candidate is compared (no early exit on the first), so timing says nothing
    # about which one matched.
    matched = False
    for candidate in _candidates(header):
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no_matching_signature")
    return msg_id
