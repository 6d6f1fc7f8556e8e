"""The webhook client's pure parts: the pinned URL, the Host header, failures sorted.

Delivery itself runs against a real receiver in tests/integration/notifier/test_webhook_client.py.
"""

from __future__ import annotations

import ssl

import httpx

from connect311_notifier.outcome import Outcome
from connect311_notifier.webhook_client import _transport_failure, pinned_url
from connect311_notifier.webhook_target import Pinned, Target, TargetPolicy, check_url


def target(url: str) -> Target:
    checked = check_url(url, TargetPolicy(allow=("hooks.example.com:*",)))
    assert isinstance(checked, Target)
    return checked


def test_the_pinned_url_names_the_address_and_the_host_header_the_name() -> None:
    named = target("https://hooks.example.com/a?b=1")
    assert pinned_url(Pinned(named, "93.184.215.14")) == "https://93.184.215.14:443/a?b=1"
    assert pinned_url(Pinned(named, "2606:2800::1")) == "https://[2606:2800::1]:443/a?b=1"
    assert named.host_header == "hooks.example.com"
    assert target("https://hooks.example.com:8443/").host_header == "hooks.example.com:8443"
    literal = target("https://[2606:4700:4700::1111]/x")
    assert literal.host_header == "[2606:4700:4700::1111]"


def test_transport_failures_are_temporary_and_named() -> None:
    timeout = _transport_failure(httpx.ReadTimeout("read timed out"))
    assert (timeout.outcome, timeout.kind) == (Outcome.TEMPORARY, "timeout")
    assert _transport_failure(TimeoutError()).kind == "timeout"
    refused = _transport_failure(httpx.ConnectError("[Errno 111] Connection refused"))
    assert (refused.outcome, refused.kind) == (Outcome.TEMPORARY, "connect")
    try:
        raise httpx.ConnectError("handshake failed") from ssl.SSLCertVerificationError("bad")
    except httpx.ConnectError as exc:
        assert _transport_failure(exc).kind == "tls"
    broken = _transport_failure(httpx.RemoteProtocolError("peer closed connection"))
    assert (broken.outcome, broken.kind) == (Outcome.TEMPORARY, "transport")
    assert len(_transport_failure(httpx.ConnectError("x" * 5000)).reason) <= 300
