"""Watermarks move past a record rejected for good: over real HTTP, the second poll neither
re-publishes nor re-counts a bad record (and SeeClickFix does not even fetch it again)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connect311_ingestor.settings import Open311Feed, SeeClickFixFeed
from connect311_ingestor.sources.http import Backoff, Fetcher
from connect311_ingestor.sources.open311 import Open311Poller, iso
from connect311_ingestor.sources.seeclickfix import SeeClickFixPoller
from connect311_ingestor.store import IngestorStore
from tests.support.ingestor_rejects import recording_ingestor, rejects_counted

NOW = datetime(2024, 5, 3, 0, 0, tzinfo=UTC)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def store(tmp_path: Path) -> IngestorStore:
    return IngestorStore.from_url(f"sqlite:///{tmp_path}/ingestor.db")


def fetcher(client: httpx.AsyncClient, no_sleep: Any) -> Fetcher:
    return Fetcher(client, max_bytes=1_000_000, retries=1, backoff=Backoff(), sleep=no_sleep)


def scf_issue(issue_id: int, updated: datetime, **changes: Any) -> dict[str, Any]:
    return {
        "id": issue_id,
        "status": "Open",
        "summary": "Pothole",
        "lat": 38.9,
        "lng": -77.03,
        "address": "1 Main St",
        "created_at": (updated - timedelta(hours=1)).isoformat(),
        "updated_at": updated.isoformat(),
        "comments": [{"comment": "seen", "commenter": {"name": "Ann Reporter"}}],
        **changes,
    }


async def test_seeclickfix_watermark_moves_past_a_rejected_issue(
    feed_server: Any, no_sleep: Any, store: IngestorStore
) -> None:
    good = scf_issue(1, NOW - timedelta(hours=3))
    bad = scf_issue(2, NOW - timedelta(hours=1), lat=999)  # rejected for good, newest

    def issues(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        # A real server's filter: only issues updated after the watermark asked for.
        after = parse(query["updated_at_after"])
        found = [i for i in (good, bad) if parse(i["updated_at"]) > after]
        return 200, {}, json.dumps({"metadata": {"pagination": {}}, "issues": found}).encode()

    feed_server.route("/api/v2/issues", issues)
    feed = SeeClickFixFeed(
        source="scf", base_url=f"{feed_server.base_url}/api/v2", place_url="dc", backfill_days=1
    )
    ingestor, publisher = recording_ingestor(store)
    async with httpx.AsyncClient() as client:
        poller = SeeClickFixPoller(feed, fetcher(client, no_sleep), ingestor, clock=lambda: NOW)
        first = await poller.poll_once()
        published = len(publisher.events)
        second = await poller.poll_once()

    assert (first.accepted, sum(first.rejects.values()), first.new_rejects) == (1, 1, 1)
    assert store.get_cursor("scf") == {
        "updated_after": iso(NOW - timedelta(hours=1)),  # the rejected issue's updated_at
        "caught_up": True,
    }
    asked = [query["updated_at_after"] for _, query in feed_server.seen]
    assert asked[1] == iso(NOW - timedelta(hours=1))
    assert second.records == 0, "the rejected issue was not fetched again"
    assert len(publisher.rejects) == 1 and len(publisher.events) == published
    assert store.reject_counts() == {("scf", "invalid_coordinates"): 1}
    assert rejects_counted(ingestor, "scf", "invalid_coordinates") == 1


async def test_open311_re_read_overlap_does_not_re_publish_or_re_count_a_rejected_record(
    feed_server: Any, no_sleep: Any, store: IngestorStore
) -> None:
    moment = NOW - timedelta(minutes=2)
    bad = {
        "service_request_id": "501",
        "status": "open",
        "service_code": "001",
        "requested_datetime": iso(moment),
        "lat": 137.0,  # rejected for good
        "long": -122.4,
        "first_name": "Ann",
    }

    def requests(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        start, end = parse(query["start_date"]), parse(query["end_date"])
        found = [bad] if start <= moment < end else []
        return 200, {}, json.dumps(found).encode()

    feed_server.route("/v2/requests.json", requests)
    feed_server.route("/v2/services.json", feed_server.reply(200, "[]"))
    feed = Open311Feed(
        source="o311",
        base_url=f"{feed_server.base_url}/v2",
        backfill_days=0.5,
        overlap_minutes=10,
        use_page=False,
    )
    clock = iter([NOW, NOW + timedelta(minutes=5)])
    ingestor, publisher = recording_ingestor(store)
    async with httpx.AsyncClient() as client:
        poller = Open311Poller(feed, fetcher(client, no_sleep), ingestor, clock=lambda: next(clock))
        first = await poller.poll_once()
        second = await poller.poll_once()  # re-reads the last 10 minutes: the bad record again

    assert (sum(first.rejects.values()), first.new_rejects) == (1, 1)
    assert (sum(second.rejects.values()), second.new_rejects) == (1, 0)
    assert len(publisher.rejects) == 1
    assert store.reject_counts() == {("o311", "invalid_coordinates"): 1}
    assert rejects_counted(ingestor, "o311", "invalid_coordinates") == 1
    cursor = store.get_cursor("o311") or {}
    assert cursor["requests_until"] == iso(NOW + timedelta(minutes=5)), "watermark moved on"
    assert "Ann" not in publisher.rejects[0].raw
