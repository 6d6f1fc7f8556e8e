"""The local inbox's message view: links work, nothing from a message runs or escapes quoting."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from connect311_local.mailview import BASE_TAG, FRAME_SANDBOX, linkify, links_open_outside


def test_plain_text_urls_become_new_tab_links_and_the_rest_is_escaped() -> None:
    text = "See it on the map: http://localhost:8000/track?id=nyc:1&x=2.\n<b>bold</b>"
    html = str(linkify(text))
    assert (
        '<a href="http://localhost:8000/track?id=nyc:1&amp;x=2" target="_blank" '
        'rel="noopener noreferrer">http://localhost:8000/track?id=nyc:1&amp;x=2</a>.' in html
    )
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>" not in html


def test_only_http_urls_are_linked() -> None:
    html = str(linkify("javascript:alert(1) data:text/html,x ftp://x https:// mailto:a@b"))
    assert "<a " not in html


def test_a_quote_after_a_url_cannot_break_out_of_the_href() -> None:
    html = str(linkify('https://x.example/"onmouseover="alert(1)'))
    assert html.startswith('<a href="https://x.example/" ')
    assert 'onmouseover="' not in html  # the quote is text, escaped


_TAG = re.compile(r"<[^>]*>")


@given(st.text(max_size=300))
def test_linkify_only_adds_anchors_around_escaped_text(text: str) -> None:
    html = str(linkify(text))
    # Take the anchors' tags away and what is left is exactly the escaped text.
    assert _TAG.sub("", html) == str(escape(text))
    for tag in _TAG.findall(html):
        assert tag == "</a>" or tag.startswith('<a href="http')


def test_html_links_open_in_a_new_tab_and_scripts_stay_off() -> None:
    assert links_open_outside("<p>hi</p>") == BASE_TAG + "<p>hi</p>"
    doc = '<!doctype html><html><HEAD lang="en"><base href="https://evil.example/"></head></html>'
    shown = links_open_outside(doc)
    # Ours is the first <base>, so it wins over the message's own.
    assert shown.index(BASE_TAG) < shown.index('<base href="https://evil.example/">')
    assert shown.startswith('<!doctype html><html><HEAD lang="en">' + BASE_TAG)
    tokens = FRAME_SANDBOX.split()
    assert "allow-popups-to-escape-sandbox" in tokens
    assert "allow-scripts" not in tokens and "allow-same-origin" not in tokens
