"""A request's photo link, as every page and email may show it: http(s) only, or nothing.

Feeds carry `media_url` as the city gave it. A `javascript:` or `data:` URL, a URL with
credentials in it, or one with spaces or control characters is never shown (it would be a
script, a phishing vehicle or a broken image); such a request simply shows no photo.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["MAX_MEDIA_URL", "public_media_url"]

MAX_MEDIA_URL = 2000
_SCHEMES = ("http", "https")


def public_media_url(url: str | None) -> str | None:
    """The photo URL when it is a plain http(s) link to a host, else None."""
    if not url:
        return None
    text = url.strip()
    if len(text) > MAX_MEDIA_URL or any(
        ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text
    ):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return None
    del port
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None  # "https://city.gov@evil.example/" reads as the city's but is not
    return text
