"""Standard Webhooks signatures: the spec's published vector, verification, rotation, secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from connect311_notifier.webhook_signing import (
    DEFAULT_TOLERANCE_S,
    SECRET_PREFIX,
    SignatureError,
    decode_secret,
    new_secret,
    sign,
    signature_header,
    signed_headers,
    verify,
)

# The reference test vector (standard-webhooks/standard-webhooks, libraries/python/tests,
# test_sign_function; the same in the JavaScript, Go, PHP and Rust libraries).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = EXPECTED, msg_id: str = MSG_ID, ts: str = str(TIMESTAMP)) -> dict:
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": signature}


def reason(**kw: object) -> str:
    args = {"secret": SECRET, "headers": headers(), "body": BODY, "now": TIMESTAMP, **kw}
    with pytest.raises(SignatureError) as caught:
        verify(**args)  # type: ignore[arg-type]
    return caught.value.reason


def test_sign_reproduces_the_published_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    # The prefix is optional, as in the reference libraries.
    assert sign(SECRET.removeprefix(SECRET_PREFIX), MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_verify_accepts_the_published_vector_and_returns_its_id() -> None:
    assert verify(SECRET, headers(), BODY, now=TIMESTAMP) == MSG_ID


def test_header_names_are_case_insensitive() -> None:
    upper = {k.upper(): v for k, v in headers().items()}
    assert verify(SECRET, upper, BODY, now=TIMESTAMP) == MSG_ID


def test_signed_headers_are_what_verify_reads() -> None:
    sent = signed_headers([SECRET], MSG_ID, TIMESTAMP, BODY)
    assert sent == headers()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"body": b'{"test": 2432232315}'}, "no_matching_signature"),
        ({"body": BODY + b" "}, "no_matching_signature"),
        ({"headers": headers(msg_id="msg_other")}, "no_matching_signature"),
        ({"headers": headers(ts=str(TIMESTAMP + 1)), "now": TIMESTAMP}, "no_matching_signature"),
        ({"secret": new_secret()}, "no_matching_signature"),
        (
            {"headers": headers(signature="v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")},
            "no_matching_signature",
        ),
    ],
)
def test_anything_changed_fails(change: dict, expected: str) -> None:
    assert reason(**change) == expected


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_fails(missing: str) -> None:
    partial = {k: v for k, v in headers().items() if k != missing}
    assert reason(headers=partial) == "missing_headers"


@pytest.mark.parametrize(
    "stamp", ["hello", "1614265330.0", "1e9", " 1614265330", "-1", "+1614265330"]
)
def test_a_timestamp_that_is_not_integer_seconds_fails(stamp: str) -> None:
    assert reason(headers=headers(ts=stamp)) == "bad_timestamp"


def test_timestamps_outside_the_tolerance_fail_either_side() -> None:
    assert verify(SECRET, headers(), BODY, now=TIMESTAMP + DEFAULT_TOLERANCE_S) == MSG_ID
    assert verify(SECRET, headers(), BODY, now=TIMESTAMP - DEFAULT_TOLERANCE_S) == MSG_ID
    assert reason(now=TIMESTAMP + DEFAULT_TOLERANCE_S + 1) == "too_old"
    assert reason(now=TIMESTAMP - DEFAULT_TOLERANCE_S - 1) == "too_new"
    assert reason(now=TIMESTAMP + 61, tolerance_s=60) == "too_old"


def test_any_one_of_several_signatures_is_enough_and_junk_is_skipped() -> None:
    # Rotation: the receiver knows one of the secrets; other versions (v1a) and malformed
    # tokens are passed over, not errors.
    header = (
        f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc v1a,xyz v1,!!! nocomma {EXPECTED}"
    )
    assert verify(SECRET, headers(signature=header), BODY, now=TIMESTAMP) == MSG_ID


def test_rotation_signs_with_every_secret_and_each_verifies_on_its_own() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], MSG_ID, TIMESTAMP, BODY)
    assert header.count("v1,") == 2
    for secret in (old, new):
        assert verify(secret, headers(signature=header), BODY, now=TIMESTAMP) == MSG_ID
    assert reason(secret=new_secret(), headers=headers(signature=header)) == "no_matching_signature"


def test_signing_matches_hmac_sha256_over_id_timestamp_body() -> None:
    key = decode_secret(SECRET)
    digest = hmac.new(key, f"{MSG_ID}.{TIMESTAMP}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(key, MSG_ID, TIMESTAMP, BODY) == "v1," + base64.b64encode(digest).decode()


def test_an_id_with_a_dot_is_refused_both_ways() -> None:
    # "a.1" + "." + "2.body" would sign the same text as "a" + ".1.2" + ...: ids never have dots.
    with pytest.raises(ValueError, match=r"without '\.'"):
        sign(SECRET, "msg.1", TIMESTAMP, BODY)
    assert reason(headers=headers(msg_id="msg.1")) == "bad_id"


def test_new_secrets_are_random_prefixed_and_decode_to_32_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith(SECRET_PREFIX) and first != second
    assert len(decode_secret(first)) == 32
    assert len(decode_secret(new_secret(64))) == 64
    with pytest.raises(ValueError):
        new_secret(16)


def test_decode_secret_takes_unpadded_base64_and_refuses_junk_or_short_keys() -> None:
    padded = SECRET_PREFIX + base64.b64encode(b"k" * 25).decode()
    assert padded.endswith("=")
    assert decode_secret(padded.rstrip("=")) == b"k" * 25
    with pytest.raises(ValueError, match="not base64"):
        decode_secret("whsec_not*base64")
    with pytest.raises(ValueError, match="24 to 64"):
        decode_secret(SECRET_PREFIX + base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="24 to 64"):
        decode_secret(b"x" * 65)
    with pytest.raises(ValueError):
        signature_header([], MSG_ID, TIMESTAMP, BODY)
