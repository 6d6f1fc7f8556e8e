"""Issue 19, the pure parts of the feeds: Atom rendering, tag URIs, cursors, conditional GET."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_map_api.core import atom, feed_cursor
from connect311_map_api.core.conditional import etag_of, http_date, not_modified

WHEN = datetime(2024, 5, 1, 12, 0, 0)


def _feed(text: str, entry_id: str) -> atom.Feed:
    entry = atom.Entry(
        id=entry_id,
        title=text,
        updated=WHEN,
        link="http://city.example/requests/1",
        summary=text,
        details=(("Notes", text),),
        categories=(text,) if text.strip() else (),
    )
    return atom.Feed(
        id=atom.tag_uri("city.example", "feed", text),
        title=text or "untitled",
        updated=WHEN,
        author="City 311",
        author_uri="http://city.example/",
        links=(atom.Link("http://city.example/feeds/requests.atom", "self", atom.ATOM_TYPE),),
        entries=(entry,),
    )


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80), key=st.text(min_size=1, max_size=40))
def test_any_text_renders_a_feed_a_real_parser_reads(text: str, key: str) -> None:
    entry_id = atom.tag_uri("city.example", "request", key, "2024-05-01T12:00:00Z")
    parsed = feedparser.parse(atom.render(_feed(text, entry_id)))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert [e.id for e in parsed.entries] == [entry_id]
    assert parsed.entries[0].author == "City 311"


def test_characters_xml_cannot_carry_are_dropped_and_the_rest_kept() -> None:
    assert atom.xml_text("a\x00b\x0bc\x1fd\té\n\ufffe\ud800") == "abcd\té\n"


def test_tag_uris_escape_what_a_tag_may_not_hold() -> None:
    uri = atom.tag_uri("City.Example", "request", "nyc:12 34/5?", "2024-05-01T12:00:00Z")
    assert uri == "tag:city.example,2024:request/nyc:12%2034%2F5%3F/2024-05-01T12:00:00Z"


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, 123456)
    assert feed_cursor.decode(feed_cursor.encode(at, 42)) == (at, "42")
    assert feed_cursor.decode(feed_cursor.encode(at.replace(tzinfo=UTC), "e.1")) == (at, "e.1")
    for bad in ("", "123", ".x", "12a.x", "1.", "١٢.x", "9" * 21 + ".x", "1.a\nb"):
        with pytest.raises(feed_cursor.BadCursor):
            feed_cursor.decode(bad)


def test_the_304_rule() -> None:
    tag = etag_of(b"body")
    assert tag == etag_of(b"body") != etag_of(b"other")
    stamp = http_date(WHEN)
    assert stamp == "Wed, 01 May 2024 12:00:00 GMT"
    assert not_modified(tag, None, tag, WHEN)
    assert not_modified(f"W/{tag}", None, tag, WHEN)
    assert not_modified(f'"a", {tag}', None, tag, WHEN)
    assert not_modified("*", None, tag, WHEN)
    assert not not_modified('"other"', stamp, tag, WHEN)  # If-None-Match decides
    assert not_modified(None, stamp, tag, WHEN + timedelta(microseconds=900))
    assert not not_modified(None, stamp, tag, WHEN + timedelta(seconds=1))
    assert not not_modified(None, "not a date", tag, WHEN)
    assert not not_modified(None, None, tag, WHEN)
    # A header listing more tags than anyone keeps compares only the first ones.
    many = ", ".join(['"x"'] * 60 + [tag])
    assert not not_modified(many, None, tag, WHEN)
