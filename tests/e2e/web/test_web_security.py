"""The pages' security headers (pure functions, no browser)."""

from __future__ import annotations

import pytest

from connect311_map_api.web.security import content_security_policy, page_headers, tile_origin


@pytest.mark.parametrize(
    ("template", "origin"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tile.example.com/{z}/{x}/{y}.png", "https://*.tile.example.com"),
        ("http://127.0.0.1:8123/tiles/{z}/{x}/{y}.png", "http://127.0.0.1:8123"),
        ("/tiles/{z}/{x}/{y}.png", None),
    ],
)
def test_tile_origin_allows_exactly_the_tile_host(template: str, origin: str | None) -> None:
    assert tile_origin(template) == origin


def test_csp_allows_tiles_as_images_only() -> None:
    csp = content_security_policy("https://{s}.tiles.example/{z}/{x}/{y}.png", embeddable=False)
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert "https://*.tiles.example" in directives["img-src"].split()
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_only_the_embed_may_be_framed() -> None:
    tiles = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    page = page_headers(tiles)
    embed = page_headers(tiles, embeddable=True)
    assert page["X-Frame-Options"] == "DENY"
    assert "X-Frame-Options" not in embed
    assert "frame-ancestors *" in embed["Content-Security-Policy"]
    assert page["X-Content-Type-Options"] == embed["X-Content-Type-Options"] == "nosniff"
