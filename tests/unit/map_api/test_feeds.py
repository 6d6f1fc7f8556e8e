"""Issue 19: Atom feeds of a map view and of one request's timeline, read back by feedparser.

Valid (bozo 0) with hostile text in the data, stable entry ids across fetches and a replay
into a fresh database, conditional GETs, paging that walks every entry once, clean 4xx for
hostile parameters, and nothing a reporter wrote beyond the city's own notes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus
from connect311_contracts.settings import SigningSettings
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import T0, RecordingPublisher, event, lifecycle, snapshot

REPORTER_TEXT = "Call Jane Roe on 555-0100, jane@example.org"


def _apply(engine: Engine, events: Sequence[RequestEvent]) -> None:
    with engine.begin() as conn:
        apply_events(conn, events)


def _city(n: int = 6) -> list[RequestEvent]:
    """`n` requests in two departments, each opened, updated and closed on its own days."""
    events: list[RequestEvent] = []
    for i in range(n):
        agency = "Water" if i % 2 else "Streets"
        kw: dict[str, Any] = {
            "agency": agency,
            "opened": T0 + timedelta(hours=i),
            "description": REPORTER_TEXT,
        }
        events += lifecycle(str(i), **kw)
    return events


def _parsed(body: bytes) -> Any:
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


def _get(client: TestClient, url: str, **kw: Any) -> Any:
    """A relative path for the test client (feed links are absolute on the public URL)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.get(path, **kw)


def test_a_map_view_feed_is_valid_atom_with_the_views_requests(
    client: TestClient, engine: Engine
) -> None:
    _apply(engine, _city())
    answer = client.get("/feeds/requests.atom", params={"agency": "Water", "status": "closed"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    assert answer.headers["cache-control"].startswith("public")
    feed = _parsed(answer.content)
    assert feed.version == "atom10"
    assert [e.link for e in feed.entries] == [
        f"http://testserver/requests/test%3A{i}"
        for i in (5, 3, 1)  # newest change first
    ]
    first = feed.entries[0]
    assert first.title == "Pothole at 100 Central Ave"
    assert first.author == "City 311"
    assert "Closed" in first.summary and "Filled" in first.content[0].value
    assert [t.term for t in first.tags] == ["Pothole", "Water"]
    assert feed.feed.title == "311 requests: Water, closed"
    alternate = next(x for x in feed.feed.links if x.rel == "alternate")
    assert alternate.href == "http://testserver/?agency=Water&status=closed"
    # What the reporter wrote is not in any feed; the city's notes are.
    assert REPORTER_TEXT.encode() not in answer.content
    timeline = client.get("/feeds/requests/test:1.atom")
    assert REPORTER_TEXT.encode() not in timeline.content


def test_each_change_is_a_new_entry_and_ids_survive_a_replay(
    client: TestClient, engine: Engine, tmp_path: Path, signing: SigningSettings
) -> None:
    events = _city(4)
    opened = [e for e in events if e.event_type == "request.opened"]
    _apply(engine, opened)
    before = {e.id for e in _parsed(client.get("/feeds/requests.atom").content).entries}
    again = {e.id for e in _parsed(client.get("/feeds/requests.atom").content).entries}
    assert before == again and len(before) == 4
    _apply(engine, events)
    after = _parsed(client.get("/feeds/requests.atom").content).entries
    assert len(after) == 4 and not before & {e.id for e in after}  # every request changed
    timeline = {e.id for e in _parsed(client.get("/feeds/requests/test:2.atom").content).entries}
    assert len(timeline) == 3
    # The same events, shuffled and repeated, into a fresh database: the same ids.
    replay = events * 2
    random.Random(7).shuffle(replay)
    with make_client(f"sqlite:///{tmp_path / 'replay.db'}", RecordingPublisher(), signing) as other:
        _apply(other.app.state.ctx.engine, replay)  # type: ignore[attr-defined]
        # (Requests changed at the same instant may list in another order: storage keys.)
        replayed_view = _parsed(other.get("/feeds/requests.atom").content).entries
        assert {e.id for e in replayed_view} == {e.id for e in after}
        replayed = _parsed(other.get("/feeds/requests/test:2.atom").content).entries
        assert {e.id for e in replayed} == timeline


def test_conditional_get_answers_304_until_something_changes(
    client: TestClient, engine: Engine
) -> None:
    _apply(engine, _city(2))
    first = client.get("/feeds/requests.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert client.get("/feeds/requests.atom", headers={"If-None-Match": etag}).status_code == 304
    weak = client.get("/feeds/requests.atom", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304 and weak.content == b""
    assert weak.headers["etag"] == etag
    since = client.get("/feeds/requests.atom", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    older = format_datetime(T0, usegmt=True)
    assert (
        client.get("/feeds/requests.atom", headers={"If-Modified-Since": older}).status_code == 200
    )
    junk = client.get("/feeds/requests.atom", headers={"If-Modified-Since": "yesterday"})
    assert junk.status_code == 200  # an unreadable date is ignored
    # A stale ETag wins over a current date: If-None-Match decides when both are sent.
    both = {"If-None-Match": '"stale"', "If-Modified-Since": modified}
    assert client.get("/feeds/requests.atom", headers=both).status_code == 200
    later = snapshot("0", status=RequestStatus.CLOSED, updated=T0 + timedelta(days=30))
    _apply(engine, [event("closed", later, previous=RequestStatus.CLOSED)])
    changed = client.get("/feeds/requests.atom", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert client.get("/feeds/requests/test:0.atom").headers["etag"]
    timeline_etag = client.get("/feeds/requests/test:0.atom").headers["etag"]
    repeat = client.get("/feeds/requests/test:0.atom", headers={"If-None-Match": timeline_etag})
    assert repeat.status_code == 304


def test_paging_walks_every_entry_exactly_once(client: TestClient, engine: Engine) -> None:
    # 23 requests, several changed at the very same second: ties break on the storage key.
    opened = [
        event("opened", snapshot(str(i), opened=T0 + timedelta(minutes=i // 4))) for i in range(23)
    ]
    _apply(engine, opened)
    seen: list[str] = []
    url: str | None = "/feeds/requests.atom?limit=5"
    pages = 0
    while url:
        feed = _parsed(_get(client, url).content)
        pages += 1
        seen += [e.id for e in feed.entries]
        url = next((x.href for x in feed.feed.links if x.rel == "next"), None)
        assert any(x.rel == "first" for x in feed.feed.links)
    assert pages == 5 and len(seen) == 23 and len(set(seen)) == 23
    times = [s.rsplit("/", 1)[1] for s in seen]
    assert times == sorted(times, reverse=True)


def test_hostile_parameters_get_a_clean_4xx(client: TestClient, engine: Engine) -> None:
    _apply(engine, _city(1))
    bad = {
        "limit=1000000000": 422,
        "limit=0": 422,
        "limit=-1": 422,
        "bbox=nan,0,1,1": 422,
        "bbox=-inf,0,1,1": 422,
        "bbox=1e999,0,1,1": 422,
        "bbox=0,0,1": 422,
        "status=gone": 422,
        "q=%00": 422,
        "since=2024-01-01T00:00:00": 422,  # no time zone
        "cursor=abc": 422,
        "cursor=99999999999999999999.1": 422,
        "cursor=1.x": 422,
        "cursor=" + "9" * 200: 422,
    }
    for query, status in bad.items():
        answer = client.get(f"/feeds/requests.atom?{query}")
        assert answer.status_code == status, (query, answer.text)
        assert answer.json()["detail"]
    assert client.get("/feeds/requests/nobody:1.atom").status_code == 404
    assert client.get("/feeds/subscription.atom?token=not-a-real-token").status_code == 404
    assert client.get("/feeds/subscription.atom").status_code == 422


def test_text_xml_cannot_carry_is_removed_and_markup_stays_text(
    client: TestClient, engine: Engine
) -> None:
    hostile = snapshot("x", name="Pot\x0bhole <b>&", notes="</content><script>alert(1)</script>")
    _apply(engine, [event("opened", hostile)])
    for path in ("/feeds/requests.atom", "/feeds/requests/test:x.atom"):
        answer = client.get(path)
        feed = _parsed(answer.content)
        entry = feed.entries[0]
        assert entry.title.endswith("Pothole <b>& at 100 Central Ave")  # \x0b removed
        assert b"<script>" not in answer.content
        # The notes are text in the HTML content (escaped), never markup.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in entry.content[0].value
