"""One bearer-token parser for every service: scheme required and case-insensitive."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_bus.auth import bearer_matches, bearer_token
from connect311_bus.proxies import proxy_options


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer a1", "a1"),
        ("bearer a1", "a1"),
        ("BEARER  a1 ", "a1"),
        ("  Bearer\ta1", None),  # a tab is not the scheme's separator
        ("a1", None),  # no scheme: refused (the map API used to accept this)
        ("Basic a1", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a1 extra", None),
        ("Bearera1", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_matches_any_configured_token_and_never_an_empty_one() -> None:
    assert bearer_matches("bearer b2", ["a1", "b2"])
    assert not bearer_matches("Bearer a1x", ["a1", "b2"])
    assert not bearer_matches("Bearer a1", [])
    assert not bearer_matches("Bearer ", [""])


@given(st.text(min_size=1, max_size=40).filter(lambda t: not any(c.isspace() for c in t)))
def test_any_scheme_spelling_carries_the_token(token: str) -> None:
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        assert bearer_token(f"{scheme} {token}") == token
        assert bearer_matches(f"{scheme} {token}", [token])
    assert bearer_token(token) is None  # the scheme is required


def test_proxy_headers_are_ignored_unless_proxies_are_named() -> None:
    assert proxy_options("") == {"proxy_headers": False, "forwarded_allow_ips": []}
    assert proxy_options(" , ") == {"proxy_headers": False, "forwarded_allow_ips": []}
    assert proxy_options("10.0.0.0/8, 192.0.2.1") == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8", "192.0.2.1"],
    }
