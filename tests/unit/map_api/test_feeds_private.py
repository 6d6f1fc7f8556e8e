"""Issue 19: an alert's private Atom feed carries what its emails carry, and its URL can be
replaced (the old one then answers 410).

The oracle is the matcher itself (services/matcher rules.find_matches): for each kind of
target, the feed's entries are exactly the events the matcher would have emailed about.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus
from connect311_contracts.subscriptions import Subscription
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.db import private_feed
from connect311_map_api.db import subscription_store as store
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.db.tables import feed_tokens, subscriptions
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import find_matches
from tests.unit.map_api.conftest import SECRET
from tests.unit.map_api.factories import T0, event, snapshot

HOME = (27.77, -82.64)
CONFIRMED = T0 - timedelta(days=1)
# ~111 m per 0.001 degree of latitude: rows of requests north of HOME, 0 to ~1.3 km away.
OFFSETS = [i * 0.0012 for i in range(12)]
TARGETS: dict[str, dict[str, Any]] = {
    "circle": {"kind": "circle", "lat": HOME[0], "long": HOME[1], "radius_m": 500},
    "area": {
        "kind": "area",
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [
                    [-82.641, 27.7730],
                    [-82.639, 27.7730],
                    [-82.639, 27.7790],
                    [-82.641, 27.7790],
                    [-82.641, 27.7730],
                ]
            ],
        },
    },
    "corridor": {
        "kind": "corridor",
        "coordinates": [[-82.6405, 27.765], [-82.6395, 27.776]],
        "width_m": 120,
    },
    "follow": {"kind": "follow", "service_request_id": "test:old-3"},
    # Small against the data's extent: read by place (the others walk every change by time).
    "small circle": {"kind": "circle", "lat": HOME[0] + 0.0024, "long": HOME[1], "radius_m": 60},
    "citywide": {"kind": "citywide"},
}
FILTERS: dict[str, dict[str, Any]] = {
    "circle": {"service_codes": ["POT"]},
    "area": {},
    "corridor": {"event_kinds": ["closed", "opened"]},
    "follow": {},
    "small circle": {"event_kinds": ["updated"]},
    "citywide": {"agencies": ["Water"], "event_kinds": ["closed"]},
}


def _history() -> list[RequestEvent]:
    """Requests along a line north of HOME: two categories, two departments, a full life each,
    some made before the alerts were confirmed, and a backfilled import that never alerts."""
    events: list[RequestEvent] = []
    for i, dlat in enumerate(OFFSETS):
        code, name = ("POT", "Pothole") if i % 3 else ("GRAF", "Graffiti")
        agency = "Water" if i % 2 else "Streets"
        for prefix, opened in (("new", T0 + timedelta(hours=i)), ("old", T0 - timedelta(days=3))):
            kw: dict[str, Any] = {
                "lat": HOME[0] + dlat,
                "long": HOME[1],
                "code": code,
                "name": name,
                "agency": agency,
                "opened": opened,
            }
            sid = f"{prefix}-{i}"
            events.append(event("opened", snapshot(sid, **kw)))
            moved = snapshot(
                sid, status=RequestStatus.IN_PROGRESS, updated=opened + timedelta(1), **kw
            )
            events.append(event("updated", moved, previous=RequestStatus.OPEN))
            done = snapshot(sid, status=RequestStatus.CLOSED, updated=opened + timedelta(2), **kw)
            events.append(event("closed", done, previous=RequestStatus.IN_PROGRESS))
    backfilled = event("opened", snapshot("import", lat=HOME[0], long=HOME[1], opened=T0))
    events.append(backfilled.model_copy(update={"backfill": True}))
    return events


def _subscription(sid: str, target: dict[str, Any], filters: dict[str, Any]) -> Subscription:
    return Subscription.model_validate(
        {
            "subscription_id": sid,
            "email": "owner@example.org",
            "target": target,
            "filters": filters,
            "status": "active",
            "created_at": CONFIRMED - timedelta(hours=1),
            "confirmed_at": CONFIRMED,
        }
    )


def _save(engine: Engine, *subs: Subscription) -> None:
    with engine.begin() as conn:
        for sub in subs:
            store.insert(conn, sub)


def _manage_token(sid: str) -> str:
    return sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)


def _feed_url(client: TestClient, sid: str) -> str:
    answer = client.get("/api/subscriptions/feeds", params={"token": _manage_token(sid)})
    assert answer.status_code == 200
    return str(next(f["feed_url"] for f in answer.json()["feeds"] if f["subscription_id"] == sid))


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _walk(client: TestClient, url: str) -> list[Any]:
    """Every entry of a paged feed, following `next` links."""
    entries: list[Any] = []
    next_url: str | None = url
    while next_url:
        answer = client.get(_path(next_url))
        assert answer.status_code == 200, answer.text
        feed = feedparser.parse(answer.content)
        assert feed.bozo == 0, feed.get("bozo_exception")
        entries += feed.entries
        next_url = next((x.href for x in feed.feed.links if x.rel == "next"), None)
    return entries


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_the_private_feed_holds_exactly_what_the_matcher_would_email(
    client: TestClient, engine: Engine, kind: str
) -> None:
    history = _history()
    with engine.begin() as conn:
        apply_events(conn, history)
    sub = _subscription(f"sub-{kind.replace(' ', '-')}", TARGETS[kind], FILTERS[kind])
    _save(engine, sub)
    index = SubscriptionIndex()
    index.upsert(sub)
    emailed = {e.event_id for e in history if find_matches(index, e)}
    assert emailed, "the fixture must give every target something to match"
    entries = _walk(client, _feed_url(client, sub.subscription_id) + "&limit=4")
    ids = [e.id.rsplit("/", 1)[1] for e in entries]
    assert len(ids) == len(set(ids))
    assert set(ids) == emailed
    assert "owner@example.org" not in str(entries)


def test_a_replaced_feed_address_is_gone_and_the_new_one_works(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        apply_events(conn, _history())
    mine = _subscription("mine", TARGETS["circle"], {})
    theirs = _subscription("theirs", TARGETS["circle"], {}).model_copy(
        update={"email": "someone@example.org"}
    )
    _save(engine, mine, theirs)
    old = _feed_url(client, "mine")
    first = client.get(_path(old))
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("private")
    assert first.headers["referrer-policy"] == "no-referrer"
    assert (
        client.get(_path(old), headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    )
    token = {"token": _manage_token("mine")}
    replaced = client.post(
        "/api/subscriptions/feeds", params=token, json={"subscription_id": "mine"}
    )
    assert replaced.status_code == 200
    new = next(f["feed_url"] for f in replaced.json()["feeds"] if f["subscription_id"] == "mine")
    assert new != old
    assert client.get(_path(old)).status_code == 410
    assert client.get(_path(new)).status_code == 200
    # Another address's alert cannot be touched with this link; a forged link is refused.
    other = client.post(
        "/api/subscriptions/feeds", params=token, json={"subscription_id": "theirs"}
    )
    assert other.status_code == 403
    assert client.get(_path(_feed_url(client, "theirs"))).status_code == 200
    forged = client.get("/api/subscriptions/feeds", params={"token": "x" * 40})
    assert forged.status_code == 400
    # Paused: no emails, so no feed; deleted: gone, with its stored version.
    manage = "/api/subscriptions/manage"
    client.post(manage, params=token, json={"subscription_id": "mine", "action": "unsubscribe"})
    assert client.get(_path(new)).status_code == 404
    client.post(manage, params=token, json={"subscription_id": "mine", "action": "resume"})
    assert client.get(_path(new)).status_code == 200
    client.post(manage, params=token, json={"subscription_id": "mine", "action": "delete"})
    assert client.get(_path(new)).status_code == 410
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(feed_tokens)).scalar() == 0


def test_an_edit_moves_last_modified_so_a_date_only_reader_refetches(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        apply_events(conn, _history())
    sub = _subscription("edited", TARGETS["circle"], {})
    _save(engine, sub)
    url = _path(_feed_url(client, "edited"))
    before = client.get(url)
    stamp = {"If-Modified-Since": before.headers["last-modified"]}
    assert client.get(url, headers=stamp).status_code == 304
    edited = sub.model_copy(
        update={"filters": sub.filters.model_copy(update={"agencies": ("Water",)})}
    )
    later = datetime.now(UTC) + timedelta(days=1)
    with engine.begin() as conn:
        store.save(conn, edited)
        # HTTP dates have whole seconds: the edit is dated a day on, not this same second.
        conn.execute(
            subscriptions.update()
            .where(subscriptions.c.subscription_id == "edited")
            .values(updated_at=later.replace(tzinfo=None))
        )
    after = client.get(url, headers=stamp)
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]


@pytest.mark.parametrize("kind", ["area", "small circle"])
def test_a_page_that_reads_its_limit_of_rows_ends_early_and_the_walk_loses_nothing(
    client: TestClient, engine: Engine, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.begin() as conn:
        apply_events(conn, _history())
    sub = _subscription("bounded", TARGETS[kind], FILTERS[kind])
    _save(engine, sub)
    url = _feed_url(client, "bounded")
    whole = [e.id for e in _walk(client, url)]
    monkeypatch.setattr(private_feed, "SCAN_CHUNK", 3)
    monkeypatch.setattr(private_feed, "SCAN_MAX", 7)  # fewer rows than the history holds
    pages = 0
    bounded: list[str] = []
    next_url: str | None = url
    while next_url:
        feed = feedparser.parse(client.get(_path(next_url)).content)
        bounded += [e.id for e in feed.entries]
        next_url = next((x.href for x in feed.feed.links if x.rel == "next"), None)
        pages += 1
    assert bounded == whole
    # On SQLite an area large against the data is walked by time: 7 changes read a page
    # (PostgreSQL's planner reads by place, with statistics to choose its own plan).
    if kind == "area" and engine.dialect.name == "sqlite":
        assert pages >= len(_history()) // 7
