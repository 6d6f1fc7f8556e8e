"""Issue 19: feed entry ids survive a re-ingest, on a real city export.

A real NYC 311 export (../shared/data) goes through the real ingest step into the map API's
state, twice, into two fresh pairs of databases, and once more into the first (a re-run of
the same import): every feed page parses (bozo 0) and every entry id is the same in both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
from fastapi.testclient import TestClient

from connect311_contracts.settings import SigningSettings
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.parsers.tabular import parse_row
from connect311_ingestor.records import Accepted, Rejected
from connect311_ingestor.sources.files import read_records
from tests.support.ingest_to_map import IngestToMap
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import RecordingPublisher

EXPORT = "city311/nyc/nyc311_2022-05-01_924rows.csv"
NOW = datetime(2022, 5, 2, tzinfo=UTC)
SIGNING = SigningSettings(
    secret_key="feed-test-secret-0123456789", public_base_url="https://c.example"
)


def _accepted(path: Path) -> list[Accepted]:
    profile = get_profile("nyc")
    readable = ((where, row) for where, row in read_records(path) if not isinstance(row, Rejected))
    parsed = (parse_row(row, profile, where) for where, row in readable)
    return [r for r in parsed if isinstance(r, Accepted)]


def _walk(client: TestClient, path: str) -> list[Any]:
    entries: list[Any] = []
    url: str | None = path
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        feed = feedparser.parse(answer.content)
        assert feed.bozo == 0, feed.get("bozo_exception")
        entries += feed.entries
        link = next((x.href for x in feed.feed.links if x.rel == "next"), None)
        url = None if link is None else urlsplit(link).path + "?" + urlsplit(link).query
    return entries


def _ids(where: Path, sample: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    with make_client(f"sqlite:///{where / 'map.db'}", RecordingPublisher(), SIGNING) as client:
        view = sorted(e.id for e in _walk(client, "/feeds/requests.atom?limit=200"))
        timelines = {
            srid: [e.id for e in _walk(client, f"/feeds/requests/{srid}.atom")] for srid in sample
        }
    return view, timelines


def test_entry_ids_are_the_same_after_a_re_ingest(shared_data: Path, tmp_path: Path) -> None:
    records = _accepted(shared_data / EXPORT)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    once = IngestToMap(first, NOW)
    events = once.ingest(records, source="nyc")
    assert len(events) == len(records) > 900
    assert once.ingest(records, source="nyc") == []  # the same import again adds nothing
    IngestToMap(second, NOW).ingest(records, source="nyc")
    sample = sorted({e.request.service_request_id for e in events})[::150]
    view, timelines = _ids(first, sample)
    assert len(view) == len(set(view)) == len(records)
    assert (view, timelines) == _ids(second, sample)
    assert all(len(ids) == 1 for ids in timelines.values())
