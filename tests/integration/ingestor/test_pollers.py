"""Open311 and SeeClickFix pollers against a real local HTTP server (429, 500, then data)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord

from connect311_bus.kafka import decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.rejects import RecordRejected
from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS
from connect311_ingestor.app import Runtime
from connect311_ingestor.settings import Open311Feed, SeeClickFixFeed
from connect311_ingestor.sources.documents import FeedUnusable
from connect311_ingestor.sources.http import Backoff, Fetcher, FetchError, TooLarge
from connect311_ingestor.sources.open311 import Open311Poller
from connect311_ingestor.sources.seeclickfix import SeeClickFixPoller

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
NOW = datetime(2024, 5, 3, 0, 0, tzinfo=UTC)


def fetcher(client: httpx.AsyncClient, sleep: Any, max_bytes: int = 1_000_000) -> Fetcher:
    return Fetcher(client, max_bytes=max_bytes, retries=3, backoff=Backoff(base_s=0.5), sleep=sleep)


def georeport(rid: str, requested: datetime, **changes: Any) -> dict[str, Any]:
    record = {
        "service_request_id": rid,
        "status": "open",
        "service_code": "001",
        "requested_datetime": requested.isoformat(),
        "updated_datetime": requested.isoformat(),
        "lat": 37.76,
        "long": -122.46,
    }
    record.update(changes)
    return record


def in_window(query: dict[str, str], when: datetime) -> bool:
    start = datetime.fromisoformat(query["start_date"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(query["end_date"].replace("Z", "+00:00"))
    return start <= when < end


async def test_open311_poller_backs_off_then_walks_windows_and_pages(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str, topic_reader: Reader
) -> None:
    docs = [
        georeport("1", NOW - timedelta(hours=30)),
        georeport("2", NOW - timedelta(hours=5)),
        georeport("3", NOW - timedelta(minutes=5)),
    ]

    def requests(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        # Page 1 of each window holds its requests; later pages are empty.
        hits = [
            d for d in docs if in_window(query, datetime.fromisoformat(d["requested_datetime"]))
        ]
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(hits if query["page"] == "1" else []).encode(),
        )

    services = json.dumps(
        [{"service_code": "001", "service_name": "Pothole", "metadata": False, "type": "realtime"}]
    )
    feed_server.route(
        "/v2/services.json", feed_server.reply(500, "oops"), feed_server.reply(200, services)
    )
    feed_server.route(
        "/v2/requests.json",
        feed_server.reply(429, "slow down", Retry_After="0"),
        feed_server.reply(503, "busy"),
        requests,
    )
    feed = Open311Feed(
        source=source_name,
        base_url=f"{feed_server.base_url}/v2",
        jurisdiction_id="city.gov",
        api_key="k-123",
        backfill_days=2,
        window_hours=24,  # type: ignore[arg-type]
    )
    async with httpx.AsyncClient() as client:
        poller = Open311Poller(feed, fetcher(client, no_sleep), runtime.ingestor, clock=lambda: NOW)
        first = await poller.poll_once()
        assert first.events == {"request.opened": 3}
        cursor = runtime.store.get_cursor(source_name)
        assert cursor == {"requests_until": "2024-05-03T00:00:00Z", "caught_up": True}

        # An hour later: request 3 (inside the re-read overlap) was closed and 4 is new.
        closed_at = (NOW + timedelta(minutes=30)).isoformat()
        docs[2] = georeport(
            "3", NOW - timedelta(minutes=5), status="closed", updated_datetime=closed_at
        )
        docs.append(georeport("4", NOW + timedelta(minutes=20)))
        later = Open311Poller(
            feed,
            fetcher(client, no_sleep),
            runtime.ingestor,
            clock=lambda: NOW + timedelta(hours=1),
        )
        second = await later.poll_once()

    services_backoff, retry_after, server_error_backoff = no_sleep.delays
    assert retry_after == 0.0, "Retry-After honoured"
    assert 0 <= services_backoff <= 0.5 and 0 <= server_error_backoff <= 1.0, "jittered back-off"
    assert second.events == {"request.opened": 1, "request.closed": 1}
    request_queries = [q for path, q in feed_server.seen if path == "/v2/requests.json"]
    assert all(
        q["jurisdiction_id"] == "city.gov" and q["api_key"] == "k-123" for q in request_queries
    )
    assert request_queries[-1]["start_date"] == "2024-05-02T23:50:00Z"

    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for r in await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    ]
    # One partition per key keeps each request's events in order; keys interleave freely.
    assert sorted((e.request.source_request_id, e.event_type, e.backfill) for e in events) == [
        ("1", "request.opened", True),
        ("2", "request.opened", True),
        ("3", "request.closed", False),
        ("3", "request.opened", True),
        ("4", "request.opened", False),
    ]
    three = [e.event_type for e in events if e.request.source_request_id == "3"]
    assert three == ["request.opened", "request.closed"]
    assert {e.request.service_name for e in events} == {"Pothole"}, "named from the services list"


async def test_open311_updates_close_a_known_request(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str, topic_reader: Reader
) -> None:
    known = georeport("77", NOW - timedelta(hours=3))
    feed_server.route("/v2/services.xml", feed_server.reply(200, "<services></services>"))

    def requests(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        rows = "".join(
            f"<request>{''.join(f'<{k}>{v}</{k}>' for k, v in known.items())}</request>"
            if query.get("page", "1") == "1" and in_window(query, NOW - timedelta(hours=3))
            else ""
            for _ in [0]
        )
        return 200, {}, f"<service_requests>{rows}</service_requests>".encode()

    updates = (
        "<service_requests_updates><request_update><update_id>u9</update_id>"
        "<service_request_id>77</service_request_id><status>closed</status>"
        "<description>Pothole filled</description>"
        f"<updated_datetime>{(NOW - timedelta(hours=1)).isoformat()}</updated_datetime>"
        "</request_update><request_update><update_id>u10</update_id>"
        "<service_request_id>never-seen</service_request_id><status>closed</status>"
        f"<updated_datetime>{(NOW - timedelta(hours=1)).isoformat()}</updated_datetime>"
        "</request_update></service_requests_updates>"
    )
    feed_server.route("/v2/requests.xml", requests)
    feed_server.route("/v2/servicerequestupdates.xml", feed_server.reply(200, updates))
    feed = Open311Feed(
        source=source_name,
        base_url=f"{feed_server.base_url}/v2",
        format="xml",
        backfill_days=1,
        updates=True,
    )
    async with httpx.AsyncClient() as client:
        summary = await Open311Poller(
            feed, fetcher(client, no_sleep), runtime.ingestor, clock=lambda: NOW
        ).poll_once()
    assert summary.events == {"request.opened": 1, "request.closed": 1}
    assert summary.unmatched_updates == 1
    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for r in await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    ]
    closed = events[-1]
    assert closed.event_type == "request.closed"
    assert closed.request.status_notes == "Pothole filled"
    assert closed.request.closed_datetime == NOW - timedelta(hours=1)


async def test_unusable_documents_are_rejected_and_their_window_is_retried_not_skipped(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str, topic_reader: Reader
) -> None:
    good = json.dumps([georeport("5", NOW - timedelta(hours=2))])
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]"))
    feed_server.route(
        "/v2/requests.json",
        feed_server.reply(200, b"[" + b" " * 5000 + b"]"),  # over the 1,000-byte bound
        feed_server.reply(200, "<html>maintenance</html>"),  # 200 but not JSON
        feed_server.reply(200, good),
    )
    feed = Open311Feed(
        source=source_name, base_url=f"{feed_server.base_url}/v2", backfill_days=0.5, use_page=False
    )
    async with httpx.AsyncClient() as client:
        poller = Open311Poller(
            feed, fetcher(client, no_sleep, max_bytes=1000), runtime.ingestor, clock=lambda: NOW
        )
        with pytest.raises(FeedUnusable, match="too_large"):
            await poller.poll_once()
        with pytest.raises(FeedUnusable, match="invalid_json"):
            await poller.poll_once()
        assert runtime.store.get_cursor(source_name) is None, "watermark did not move"
        summary = await poller.poll_once()
    assert summary.events == {"request.opened": 1}
    assert runtime.store.get_cursor(source_name) == {
        "requests_until": "2024-05-03T00:00:00Z",
        "caught_up": True,
    }
    rejects = [
        RecordRejected.model_validate_json(r.value)
        for r in await topic_reader(REQUEST_REJECTS.name, source_name)
    ]
    mine = [r for r in rejects if r.source == source_name]
    assert [r.reason.value for r in mine] == ["too_large", "invalid_json"]
    assert "1000" in mine[0].detail
    # An unparseable body keeps its shape only: words that are not known keys are masked.
    assert mine[1].raw == "<xxxx>xxxxxxxxxxx</xxxx>"


async def test_fetcher_gives_up_after_retries_and_does_not_retry_client_errors(
    feed_server: Any, no_sleep: Any
) -> None:
    feed_server.route("/down", feed_server.reply(500, "down"))
    feed_server.route("/missing", feed_server.reply(404, "no such feed"))
    feed_server.route("/big", feed_server.reply(200, b"x" * 2048))
    async with httpx.AsyncClient() as client:
        fetch = fetcher(client, no_sleep, max_bytes=1024)
        with pytest.raises(FetchError, match="gave up after 4 tries"):
            await fetch.get(f"{feed_server.base_url}/down")
        with pytest.raises(FetchError, match="HTTP 404"):
            await fetch.get(f"{feed_server.base_url}/missing")
        with pytest.raises(TooLarge):
            await fetch.get(f"{feed_server.base_url}/big")
    paths = [p for p, _ in feed_server.seen]
    assert paths.count("/down") == 4 and paths.count("/missing") == 1


def issue(number: int, updated: datetime, **changes: Any) -> dict[str, Any]:
    record = {
        "id": number,
        "status": "Open",
        "summary": "Pothole",
        "description": "deep one",
        "lat": 27.77,
        "lng": -82.64,
        "address": "1st Ave N",
        "created_at": (updated - timedelta(hours=1)).isoformat(),
        "updated_at": updated.isoformat(),
        "closed_at": None,
        "request_type": {"id": 1, "title": "Pothole"},
    }
    record.update(changes)
    return record


async def test_seeclickfix_poller_follows_pages_and_advances_the_watermark(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str, topic_reader: Reader
) -> None:
    page2_url = f"{feed_server.base_url}/api/v2/issues?page=2&place_url=st-pete"

    def issues(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("page") == "2":
            body = {
                "metadata": {"pagination": {"page": 2, "pages": 2, "next_page_url": None}},
                "issues": [
                    issue(
                        3,
                        NOW - timedelta(hours=2),
                        status="Closed",
                        closed_at=(NOW - timedelta(hours=2)).isoformat(),
                    )
                ],
            }
        else:
            body = {
                "metadata": {"pagination": {"page": 1, "pages": 2, "next_page_url": page2_url}},
                "issues": [
                    issue(1, NOW - timedelta(hours=5)),
                    issue(2, NOW - timedelta(minutes=30)),
                    {"id": 9, "status": "Open"},
                ],
            }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    feed_server.route("/api/v2/issues", feed_server.reply(500, "hiccup"), issues)
    feed = SeeClickFixFeed(
        source=source_name,
        base_url=f"{feed_server.base_url}/api/v2",
        place_url="st-pete",
        backfill_days=1,
    )
    async with httpx.AsyncClient() as client:
        summary = await SeeClickFixPoller(
            feed, fetcher(client, no_sleep), runtime.ingestor, clock=lambda: NOW
        ).poll_once()

    assert summary.events == {"request.opened": 3}
    assert sum(summary.rejects.values()) == 1
    first_query = [q for p, q in feed_server.seen if p == "/api/v2/issues"][1]
    assert first_query["details"] == "true" and first_query["place_url"] == "st-pete"
    assert first_query["updated_at_after"] == "2024-05-02T00:00:00Z"
    assert runtime.store.get_cursor(source_name) == {
        "updated_after": "2024-05-02T23:30:00Z",
        "caught_up": True,
    }
    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for r in await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    ]
    assert sorted(e.request.source_request_id for e in events) == ["1", "2", "3"]
    assert all(e.backfill for e in events)


async def test_open311_update_notes_older_than_the_list_reach_the_topic_as_history(
    runtime: Runtime, feed_server: Any, no_sleep: Any, source_name: str, topic_reader: Reader
) -> None:
    """The list (read first) already shows the closure; both earlier updates still arrive,
    each at its time, as history; a second poll re-reads the overlap and adds nothing."""
    opened_at = NOW - timedelta(hours=4)
    closed = georeport(
        "88",
        opened_at,
        status="closed",
        status_notes="Filled",
        updated_datetime=(NOW - timedelta(hours=1)).isoformat(),
        closed_datetime=(NOW - timedelta(hours=1)).isoformat(),
    )
    feed_server.route("/v2/services.xml", feed_server.reply(200, "<services></services>"))

    def requests(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        rows = ""
        if query.get("page", "1") == "1" and in_window(query, opened_at):
            rows = f"<request>{''.join(f'<{k}>{v}</{k}>' for k, v in closed.items())}</request>"
        return 200, {}, f"<service_requests>{rows}</service_requests>".encode()

    def entry(uid: str, hours: int, status: str, text: str) -> str:
        at = (NOW - timedelta(hours=hours)).isoformat()
        return (
            f"<request_update><update_id>{uid}</update_id><service_request_id>88"
            f"</service_request_id><status>{status}</status><description>{text}</description>"
            f"<updated_datetime>{at}</updated_datetime></request_update>"
        )

    updates = (
        "<service_requests_updates>"
        + entry("c", 1, "closed", "Filled")
        + entry("b", 2, "in_progress", "Crew on site")
        + entry("a", 3, "acknowledged", "Seen")
        + "</service_requests_updates>"
    )
    feed_server.route("/v2/requests.xml", requests)
    feed_server.route("/v2/servicerequestupdates.xml", feed_server.reply(200, updates))
    feed = Open311Feed(
        source=source_name,
        base_url=f"{feed_server.base_url}/v2",
        format="xml",
        backfill_days=1,
        window_hours=48,
        updates=True,
    )
    async with httpx.AsyncClient() as client:
        poller = Open311Poller(feed, fetcher(client, no_sleep), runtime.ingestor, clock=lambda: NOW)
        first = await poller.poll_once()
        again = await poller.poll_once()  # the overlap re-reads every update

    assert first.past_notes == 2 and again.past_notes == 0
    assert sum(again.events.values()) == 0
    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for r in await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    ]
    notes = [(e.request.status_notes, e.request.updated_datetime, e.backfill) for e in events]
    assert notes == [
        ("Filled", NOW - timedelta(hours=1), True),  # the list's state (first poll: history)
        ("Seen", NOW - timedelta(hours=3), True),
        ("Crew on site", NOW - timedelta(hours=2), True),
    ]
    assert events[1].request.status == "acknowledged" and events[2].request.status == "in_progress"
