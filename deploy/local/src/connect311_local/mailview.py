"""How the local inbox shows a message: clickable links, safely.

The HTML part is shown in a sandboxed frame (no scripts, no same-origin). A link followed inside
that frame would load the site into it, and the site refuses to be framed, so links open in a
new tab instead: a `<base target="_blank">` goes into the message, and the sandbox allows
popups that escape it. The plain-text part is escaped first; only then do http(s) URLs become
links.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# One character class with one quantifier: linear, no backtracking.
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"  # sentence punctuation after a URL is not part of it
_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
BASE_TAG = '<base target="_blank">'

FRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
"""The HTML part's sandbox: links may open a new tab; scripts, forms and same-origin stay off."""


def links_open_outside(html: str) -> str:
    """The message HTML with a `<base target="_blank">` first in its head (or first of all).

    The first `<base>` of a document wins, so a message's own base cannot take this back.
    """
    head = _HEAD.search(html, 0, 4096)  # a head tag comes first; do not scan a whole body
    if head is None:
        return BASE_TAG + html
    return html[: head.end()] + BASE_TAG + html[head.end() :]


def linkify(text: str) -> Markup:
    """The text HTML-escaped, with every http(s) URL a link that opens in a new tab."""
    pieces: list[str] = []
    done = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if url in ("http://", "https://"):
            continue
        start = match.start()
        pieces.append(str(escape(text[done:start])))
        href = escape(url)
        pieces.append(f'<a href="{href}" target="_blank" rel="noopener noreferrer">{href}</a>')
        done = start + len(url)
    pieces.append(str(escape(text[done:])))
    return Markup("".join(pieces))  # noqa: S704 (every piece above is escaped)


__all__ = ["BASE_TAG", "FRAME_SANDBOX", "linkify", "links_open_outside"]
