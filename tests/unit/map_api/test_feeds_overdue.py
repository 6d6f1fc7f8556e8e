"""Issue 19, continued: the private feed says when a request the alert covers went overdue,
as its emails do (the map API stores no `request.overdue`: the feed derives them).

The oracle is a brute-force recount: every stored request's due time by the shared rule,
"went overdue" when that time passed while it was open, turned into the ingestor's own
`RequestOverdue` (its event id function) and put to the matcher (`find_matches`) with the
recorded changes. The feed must hold exactly those, each once, across pages.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.due import DueInput, DueSource, due_date, naive_utc
from connect311_contracts.events import EventKind, RequestEvent, RequestOverdue
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.service_levels import ServiceLevels, Target, read_service_levels
from connect311_contracts.settings import SigningSettings
from connect311_ingestor.overdue import overdue_event_id
from connect311_map_api.api import feeds_routes
from connect311_map_api.core.feed_merge import merge_page
from connect311_map_api.core.feed_overdue import longest_target, went_overdue
from connect311_map_api.core.feed_scope import subscription_scope
from connect311_map_api.db import feed_overdue, private_feed
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.db.tables import subscriptions
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import find_matches
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import T0, RecordingPublisher, event, snapshot
from tests.unit.map_api.test_feeds_private import (
    CONFIRMED,
    HOME,
    TARGETS,
    _feed_url,
    _path,
    _save,
    _subscription,
    _walk,
)

# Wednesday 1 May 2024, 08:00 in the city; Monday 6 May is a holiday.
LEVELS = """
business_days = true
holidays = ["2024-05-06"]
[agency]
Streets = { days = 2 }
[service_code]
TREE = { hours = 30 }
"""
NOW = T0 + timedelta(days=7)  # some due times passed, some not yet
FILTERS: dict[str, dict[str, Any]] = {
    "circle": {"event_kinds": ["overdue", "closed"]},
    "area": {"event_kinds": ["overdue"]},
    "corridor": {"event_kinds": ["closed"]},  # never asked: no overdue entries
    "follow": {},  # following hears of it unless the kinds leave it out
    "small circle": {"event_kinds": ["overdue", "updated"]},
    "citywide": {"agencies": ["Streets"], "event_kinds": ["overdue", "opened"]},
}


@pytest.fixture
def levels_client(
    database_url: str,
    tmp_path: Path,
    publisher: RecordingPublisher,
    signing: SigningSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """An app with service levels, its overdue clock held at NOW."""
    path = tmp_path / "levels.toml"
    path.write_text(LEVELS)
    monkeypatch.setattr(feeds_routes, "now", lambda: naive_utc(NOW))
    # Chunks of 3: the overdue walks page and stop early on this small city as on a large one.
    monkeypatch.setattr(feed_overdue, "CHUNK", 3)
    with make_client(database_url, publisher, signing, service_levels_file=path) as client:
        yield client


def _levels(client: TestClient) -> ServiceLevels:
    settings = client.app.state.ctx.settings  # type: ignore[attr-defined]
    if settings.service_levels_file is None:
        return ServiceLevels(zone=ZoneInfo(settings.display_timezone))
    return read_service_levels(settings.service_levels_file, settings.display_timezone)


def _requests() -> list[RequestEvent]:
    """Requests north of HOME: targets by department, by category and the city's own date,
    none at all; open, closed before and after their due time; made before and after the
    alerts were confirmed; due before and after NOW (and over a weekend and a holiday)."""
    events: list[RequestEvent] = []
    for i in range(12):
        for prefix, opened in (("new", T0 + timedelta(hours=9 * i)), ("old", T0 - timedelta(3))):
            if i % 3 == 0:
                kind = {"code": "TREE", "name": "Fallen tree", "agency": "Parks"}
            else:
                kind = {"code": "POT", "name": "Pothole", "agency": "Water" if i % 2 else "Streets"}
            kw: dict[str, Any] = {"lat": HOME[0] + i * 0.0012, "long": HOME[1], **kind}
            sid = f"{prefix}-{i}"
            first = snapshot(sid, opened=opened, **kw)
            if i % 4 == 3:  # the city's own date wins over any target
                first = first.model_copy(update={"expected_datetime": opened + timedelta(1)})
            events.append(event("opened", first))
            closes = {1: opened + timedelta(hours=1), 2: NOW - timedelta(hours=1)}.get(i % 5)
            if closes is not None:
                done = first.model_copy(
                    update={
                        "status": RequestStatus.CLOSED,
                        "closed_datetime": closes,
                        "updated_datetime": closes,
                    }
                )
                events.append(event("closed", done, previous=RequestStatus.OPEN))
    return events


def _went_overdue(request: ServiceRequest, levels: ServiceLevels) -> RequestOverdue | None:
    """The ingestor's event for a request whose due time passed before NOW while it was open
    (brute force, from the final snapshot)."""
    is_open = request.status is not RequestStatus.CLOSED
    closed = None if is_open else naive_utc(request.closed_datetime)  # type: ignore[arg-type]
    item = DueInput(
        requested_at=naive_utc(request.requested_datetime),
        expected_at=naive_utc(request.expected_datetime) if request.expected_datetime else None,
        service_code=request.service_code,
        service_name=request.service_name,
        agency=request.agency_responsible,
        is_open=is_open,
        closed_at=closed,
    )
    due = due_date(item, levels)
    if due.at is None or due.at >= naive_utc(NOW) or (closed is not None and closed <= due.at):
        return None
    event_id = overdue_event_id(request.service_request_id, due.at)
    return RequestOverdue(
        event_id=event_id,
        occurred_at=due.at.replace(tzinfo=UTC),
        trace_id=event_id.replace("-", ""),
        request=request,
        service_request_id=request.service_request_id,
        due_datetime=due.at.replace(tzinfo=UTC),
        due_source="feed" if due.source is DueSource.FEED else "service_level",
        target=due.target,
        overdue_by_s=60,
    )


def _overdue_events(history: list[RequestEvent], levels: ServiceLevels) -> list[RequestOverdue]:
    final = {e.request.service_request_id: e.request for e in history}
    return [o for r in final.values() if (o := _went_overdue(r, levels)) is not None]


def _entry_id(entry: Any) -> str:
    return str(entry.id).rsplit("/", 1)[1]


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_overdue_entries_are_exactly_what_the_matcher_would_email_across_pages(
    levels_client: TestClient, kind: str
) -> None:
    _matches_the_recount(levels_client, kind)


@pytest.mark.parametrize("kind", ["area", "follow"])
def test_without_service_levels_the_citys_own_dates_still_make_entries(
    database_url: str,
    publisher: RecordingPublisher,
    signing: SigningSettings,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.setattr(feeds_routes, "now", lambda: naive_utc(NOW))
    monkeypatch.setattr(feed_overdue, "CHUNK", 3)
    with make_client(database_url, publisher, signing) as client:
        _matches_the_recount(client, kind)


def _matches_the_recount(client: TestClient, kind: str) -> None:
    engine: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    history = _requests()
    with engine.begin() as conn:
        apply_events(conn, history)
    overdue = _overdue_events(history, _levels(client))
    sub = _subscription(f"od-{kind.replace(' ', '-')}", TARGETS[kind], FILTERS[kind])
    _save(engine, sub)
    index = SubscriptionIndex()
    index.upsert(sub)
    late = {o.event_id for o in overdue if find_matches(index, o)}
    changes = {e.event_id for e in history if find_matches(index, e)}
    if kind != "corridor":
        assert late, "every target asking for overdue must have some to hear of"
    # Four a page: overdue entries and recorded changes share pages and their boundaries.
    entries = _walk(client, _feed_url(client, sub.subscription_id) + "&limit=4")
    ids = [_entry_id(e) for e in entries]
    assert len(ids) == len(set(ids))
    assert set(ids) == late | changes
    times = [e.updated_parsed for e in entries]
    assert times == sorted(times, reverse=True)
    for entry in entries:
        if _entry_id(entry) in late:
            assert entry.title.startswith("Overdue: ") and ", due " in entry.title
            assert "is now overdue" in entry.summary
            srid = entry.link.rsplit("/", 1)[1].replace("%3A", ":")
            assert overdue_event_id(srid, naive_utc(datetime(*entry.updated_parsed[:6]))) == (
                _entry_id(entry)
            )
    assert "owner@example.org" not in str(entries) and "A hole in the road" not in str(entries)


def test_a_due_time_passing_changes_etag_and_last_modified(
    levels_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = levels_client
    engine: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        apply_events(conn, _requests())
    sub = _subscription("watch", {"kind": "follow", "service_request_id": "test:new-0"}, {})
    _save(engine, sub)
    with engine.begin() as conn:  # edited long ago: the entries alone move Last-Modified
        conn.execute(subscriptions.update().values(updated_at=naive_utc(CONFIRMED)))
    url = _path(_feed_url(client, "watch"))
    due = naive_utc(T0) + timedelta(hours=30)  # new-0: a fallen tree, 30 hours, still open
    late_id = overdue_event_id("test:new-0", due)
    monkeypatch.setattr(feeds_routes, "now", lambda: due - timedelta(minutes=1))
    before = client.get(url)
    assert late_id not in before.text
    held = {
        "If-None-Match": before.headers["etag"],
        "If-Modified-Since": before.headers["last-modified"],
    }
    assert client.get(url, headers=held).status_code == 304
    monkeypatch.setattr(feeds_routes, "now", lambda: due + timedelta(minutes=1))
    after = client.get(url, headers=held)
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    since = {"If-Modified-Since": before.headers["last-modified"]}
    assert client.get(url, headers=since).status_code == 200  # a date-only reader refetches
    newest = feedparser.parse(after.content).entries[0]
    assert _entry_id(newest) == late_id
    assert newest.title == "Overdue: Fallen tree at 100 Central Ave, due Thu 02 May 2024, 14:00 EDT"
    assert client.get(newest.link.replace("http://testserver", "")).status_code == 200


def test_a_page_that_reads_its_limit_of_rows_still_places_every_overdue_entry_once(
    levels_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = levels_client
    engine: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        apply_events(conn, _requests())
    sub = _subscription("bounded", TARGETS["area"], {"event_kinds": ["overdue", "opened"]})
    _save(engine, sub)
    url = _feed_url(client, "bounded")
    whole = [e.id for e in _walk(client, url)]
    assert any("Overdue" in e.title for e in _walk(client, url))
    monkeypatch.setattr(private_feed, "SCAN_CHUNK", 3)
    monkeypatch.setattr(private_feed, "SCAN_MAX", 5)
    assert [e.id for e in _walk(client, url + "&limit=3")] == whole


def test_merging_keeps_derived_entries_older_than_what_was_read_for_later_pages() -> None:
    at = datetime(2024, 5, 1)
    read = [((at + timedelta(hours=h), f"r{h}"), f"r{h}") for h in (9, 7, 5)]
    derived = [((at + timedelta(hours=h), f"d{h}"), f"d{h}") for h in (8, 4, 1)]
    # The read source stopped at 5 h: the 4 h and 1 h entries wait for the next page.
    assert merge_page(read, read[-1][0], derived, 4) == (["r9", "d8", "r7", "r5"], read[-1][0])
    assert merge_page(read, read[-1][0], derived, 3) == (["r9", "d8", "r7"], read[1][0])
    # It read only these (a page's row limit): however short the page, no older entry yet.
    assert merge_page(read, read[-1][0], derived, 10) == (["r9", "d8", "r7", "r5"], read[-1][0])
    assert merge_page(read, None, derived, 10) == (
        ["r9", "d8", "r7", "r5", "d4", "d1"],
        None,
    )


@pytest.mark.parametrize(
    "target",
    [Target(days=10, business_days=True), Target(days=3), Target(hours=30)],
)
def test_no_due_time_is_later_after_the_making_than_the_longest_target(target: Target) -> None:
    holidays = ["2024-12-24", "2024-12-25", "2024-12-26", "2024-12-31", "2025-01-01"]
    levels = ServiceLevels(
        zone=ZoneInfo("America/New_York"),
        default=target,
        holidays=frozenset(datetime.fromisoformat(d).date() for d in holidays),
    )
    bound = longest_target(levels)
    assert bound is not None
    rnd = random.Random(5)
    worst = timedelta(0)
    for _ in range(2_000):
        made = datetime(2024, 12, 10) + timedelta(minutes=rnd.randrange(60 * 24 * 40))
        item = DueInput(made, None, "X", None, None, is_open=True)
        due = due_date(item, levels).at
        assert due is not None
        worst = max(worst, due - made)
    assert worst <= bound


def test_the_overdue_walk_stops_once_no_older_request_can_be_due_later(
    levels_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two months of requests, one a day: a page's walk reads a few chunks, not the city,
    and still finds the newest due times (an older request can be due later than a newer
    one: a business-day target spans a weekend and the holiday, an hour target does not)."""
    client = levels_client
    engine: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    events = []
    for day in range(60):
        opened = T0 - timedelta(days=53) + timedelta(days=day, hours=day % 7)
        kind = {"code": "TREE", "name": "Fallen tree"} if day % 2 else {}
        events.append(event("opened", snapshot(f"d-{day}", opened=opened, **kind)))
    with engine.begin() as conn:
        apply_events(conn, events)
    sub = _subscription("walk", {"kind": "citywide"}, {"agencies": ["Streets"]})
    sub = sub.model_copy(
        update={
            "filters": sub.filters.model_copy(update={"event_kinds": (EventKind.OVERDUE,)}),
            "confirmed_at": T0 - timedelta(days=60),
        }
    )
    overdue = _overdue_events(events, _levels(client))
    expected = sorted(((o.due_datetime, o.event_id) for o in overdue), reverse=True)
    read = 0

    def counted(*args: Any) -> Any:
        nonlocal read
        read += 1
        return went_overdue(*args)

    monkeypatch.setattr(feed_overdue, "went_overdue", counted)
    levels = _levels(client)
    with engine.connect() as conn:
        for k in (1, 5, 12):
            found = feed_overdue.newest_overdue(
                conn, subscription_scope(sub), levels, naive_utc(NOW), None, k
            )
            assert [(f.due_at.replace(tzinfo=UTC), f.event_id) for f in found] == expected[:k]
        assert read < 3 * 60 / 2  # stopped early each time (a whole walk reads 60 each)
        after = (found[3].due_at, found[3].event_id)
        rest = feed_overdue.newest_overdue(
            conn, subscription_scope(sub), levels, naive_utc(NOW), after, 5
        )
        assert [(f.due_at.replace(tzinfo=UTC), f.event_id) for f in rest] == expected[4:9]
