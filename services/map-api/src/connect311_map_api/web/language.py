"""Which language a page is in: the `?lang=` switch, then the remembered choice, then the
browser's Accept-Language, else English. Pure: the caller passes the request's values.
"""

from __future__ import annotations

from collections.abc import Sequence

from babel.core import negotiate_locale

__all__ = ["DEFAULT_LANGUAGE", "choose_language", "parse_accept_language", "supported"]

DEFAULT_LANGUAGE = "en"
MAX_HEADER = 1_000
"""Longest Accept-Language read (browsers send under 100 characters); the rest is ignored."""
MAX_RANGES = 20


def _quality(params: list[str]) -> float:
    """The q= weight of one language range (1 when absent, 0 when unreadable)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def _plain_tag(tag: str) -> bool:
    """A language tag's shape ('es', 'es-419', 'zh-Hant-TW'): no wildcard, no junk."""
    return 0 < len(tag) <= 35 and all(c.isalnum() or c in "-_" for c in tag)


def parse_accept_language(header: str | None) -> list[str]:
    """'es-MX,es;q=0.9,en;q=0.5' -> ['es-MX', 'es', 'en']: best first, q=0 and junk left out.

    Equal weights keep the browser's order (a stable sort).
    """
    ranges: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "")[:MAX_HEADER].split(",")[:MAX_RANGES]):
        tag, *params = part.split(";")
        tag = tag.strip()
        q = _quality(params)
        if q > 0 and _plain_tag(tag):
            ranges.append((q, index, tag))
    ranges.sort(key=lambda r: (-r[0], r[1]))
    return [tag for _, _, tag in ranges]


def supported(code: str | None, available: Sequence[str]) -> str | None:
    """`code` when it is one of the available languages ('ES' and 'es-MX' count as 'es')."""
    if not code or len(code) > 35:
        return None
    return negotiate_locale([code.strip().lower()], list(available), sep="-")


def choose_language(
    query: str | None,
    cookie: str | None,
    accept_language: str | None,
    available: Sequence[str],
) -> str:
    """The page's language: the switch's choice, the remembered one, the browser's, English."""
    for chosen in (query, cookie):
        found = supported(chosen, available)
        if found:
            return found
    preferred = [tag.lower() for tag in parse_accept_language(accept_language)]
    return negotiate_locale(preferred, list(available), sep="-") or DEFAULT_LANGUAGE
