"""Nothing leaked: personal values planted anywhere in a record never reach a topic, a table,
a log line or the push API's answer, whether the record is accepted or rejected.

Planted values are distinctive ('PII' + hex), and are only put where nothing is published
on purpose: reporter fields, extra and nested keys, SeeClickFix comments[].commenter and
questions[] answers, extra export columns. When the record is rejected they are also put in
its free text (description, status notes, comment text): a reject keeps only the length of
free text (see connect311_ingestor.scrub).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import uuid
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connect311_ingestor.parsers.open311 import parse_requests
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.parsers.seeclickfix import parse_issues_page
from connect311_ingestor.pipeline import Ingestor
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.sources.files import import_file
from connect311_ingestor.store import IngestorStore
from connect311_ingestor.web import create_app
from tests.support.ingestor_rejects import RecordingPublisher, dump_tables, recording_ingestor

TOKENS = st.text("0123456789abcdef", min_size=12, max_size=12).map(lambda h: f"PII{h}")
# Keys no adapter publishes: reporter fields, private notes, nested contact blocks.
JUNK_KEYS = st.sampled_from(
    [
        "first_name",
        "last_name",
        "email",
        "phone",
        "device_id",
        "account_id",
        "contact",
        "owner",
        "private_notes",
        "extras",
        "attribute",
        "reporter",
        "caller",
    ]
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def junk(token: str) -> st.SearchStrategy[Any]:
    """A JSON-like tree whose leaves are the planted value (or harmless words)."""
    leaf = st.sampled_from([token, f"call {token} after 5", "ok"])
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3),
            st.dictionaries(JUNK_KEYS, inner, min_size=1, max_size=3),
        ),
        max_leaves=6,
    )


@st.composite
def planted(draw: st.DrawFn, breakages: list[str | None]) -> tuple[str, dict[str, Any], str | None]:
    """(token, extra keys holding it, how the record is broken or None)."""
    token = draw(TOKENS)
    extra = draw(st.dictionaries(JUNK_KEYS, junk(token), min_size=1, max_size=4))
    extra["first_name"] = token  # always at least one reporter field
    return token, extra, draw(st.sampled_from(breakages))


def open311_record(extra: dict[str, Any], broken: str | None, token: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "service_request_id": "1001",
        "status": "open",
        "service_code": "POT",
        "service_name": "Pothole",
        "requested_datetime": "2024-05-01T10:00:00Z",
        "lat": "42.35",
        "long": "-71.06",
        "address": "1 Main St",
        "description": "deep hole",
        **extra,
    }
    if broken is not None:
        record["description"] = f"please call {token}"  # rejected: free text is not kept
        record["status_notes"] = f"spoke to {token}"
    if broken == "lat":
        record["lat"] = "999"
    elif broken == "date":
        record["requested_datetime"] = ""
    elif broken == "id":
        record["service_request_id"] = ""
    elif broken == "non_public":
        record["non_public"] = "true"
    return record


def to_xml(tag: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(to_xml(tag, v) for v in value)
    if isinstance(value, dict):
        return f"<{tag}>{''.join(to_xml(k, v) for k, v in value.items())}</{tag}>"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def assert_nothing_leaked(token: str, store: IngestorStore, *texts: str) -> None:
    places = {"tables": dump_tables(store), **{f"text {i}": t for i, t in enumerate(texts)}}
    for name, content in places.items():
        assert token not in content, f"{token} leaked into {name}: {content[:2000]}"


async def ingest_and_check(
    ingestor: Ingestor, publisher: RecordingPublisher, results: list[Any], token: str
) -> int:
    """Ingest, check nothing leaked, and say how many records were rejected."""
    summary, outcomes = await ingestor.ingest(results, source="city")
    assert summary.records == len(results)
    answers = json.dumps([[o.service_request_id, o.event_type] for o in outcomes])
    assert_nothing_leaked(token, ingestor.store, publisher.wire(), answers)
    return sum(summary.rejects.values())


BREAKAGES: list[str | None] = [None, "lat", "date", "id", "non_public"]


@pytest.fixture
def store(tmp_path: Path) -> IngestorStore:
    return IngestorStore.from_url(f"sqlite:///{tmp_path}/ingestor.db")


@SETTINGS
@given(case=planted([*BREAKAGES, "truncated"]))
def test_open311_json_records(
    case: tuple[str, dict[str, Any], str | None],
    store: IngestorStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, extra, broken = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    body = json.dumps([open311_record(extra, broken, token)]).encode()
    if broken == "truncated":  # a whole document that is not JSON: its words are masked
        body = body[:-3]
    results = parse_requests(body, source="city", fmt="json", location="feed page 1")
    ingestor, publisher = recording_ingestor(store)
    rejected = asyncio.run(ingest_and_check(ingestor, publisher, list(results), token))
    assert_nothing_leaked(token, store, caplog.text)
    assert rejected == (broken is not None)


@SETTINGS
@given(case=planted(BREAKAGES))
def test_open311_xml_records(
    case: tuple[str, dict[str, Any], str | None],
    store: IngestorStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, extra, broken = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    body = to_xml("service_requests", {"request": open311_record(extra, broken, token)})
    results = parse_requests(body.encode(), source="city", fmt="xml", location="feed.xml")
    ingestor, publisher = recording_ingestor(store)
    rejected = asyncio.run(ingest_and_check(ingestor, publisher, list(results), token))
    assert_nothing_leaked(token, store, caplog.text)
    assert rejected == (broken is not None)


def issue(extra: dict[str, Any], broken: str | None, token: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": 5501,
        "status": "Open",
        "summary": "Pothole",
        "description": "deep hole",
        "lat": 42.35,
        "lng": -71.06,
        "address": "1 Main St",
        "created_at": "2024-05-01T10:00:00-04:00",
        "updated_at": "2024-05-01T11:00:00-04:00",
        "request_type": {"id": 7, "title": "Pothole", "organization": "Public Works"},
        "reporter": {"id": 99, "name": token, "avatar": {"full": f"https://x/{token}.png"}},
        "comments": [
            {
                "comment": "Work order created.",
                "created_at": "2024-05-01T11:00:00-04:00",
                "commenter": {"id": 98, "name": token, "role": "Verified Official"},
            }
        ],
        "questions": [{"question": "Your phone number?", "answer": token}],
        **extra,
    }
    if broken is not None:
        record["description"] = f"please call {token}"
        record["comments"][0]["comment"] = f"spoke to {token}"
    if broken == "lat":
        record["lat"] = 999
    elif broken == "date":
        del record["created_at"]
    elif broken == "id":
        record["id"] = None
    elif broken == "non_public":
        record["status"] = ""
    return record


@SETTINGS
@given(case=planted(BREAKAGES))
def test_seeclickfix_issues(
    case: tuple[str, dict[str, Any], str | None],
    store: IngestorStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, extra, broken = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"metadata": {"pagination": {}}, "issues": [issue(extra, broken, token)]})
    page = parse_issues_page(body.encode(), source="city", location="issues page 1")
    ingestor, publisher = recording_ingestor(store)
    rejected = asyncio.run(ingest_and_check(ingestor, publisher, list(page.results), token))
    assert_nothing_leaked(token, store, caplog.text)
    assert rejected == (broken is not None)


CSV_EXTRA = ["owner_name", "reporter_phone", "email", "private_notes"]


@SETTINGS
@given(token=TOKENS, broken=st.sampled_from([None, "lat", "date", "id", "columns"]))
def test_csv_rows_with_owner_and_reporter_columns(
    token: str, broken: str | None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    row = {
        "service_request_id": "77",
        "requested_datetime": "2024-05-01T10:00:00Z",
        "status": "open",
        "service_name": "Graffiti",
        "lat": "42.35",
        "long": "-71.06",
        "description": "tag on wall",
        "status_notes": "",
        **{column: f"{token} {column}" for column in CSV_EXTRA},
    }
    if broken is not None:
        row["description"], row["status_notes"] = f"call {token}", f"met {token}"
    if broken == "lat":
        row["lat"] = "north"
    elif broken == "date":
        row["requested_datetime"] = "soon"
    elif broken == "id":
        row["service_request_id"] = ""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(row)
    values = list(row.values())
    writer.writerow([*values, token] if broken == "columns" else values)  # an unquoted comma
    run = uuid.uuid4().hex  # one file and database per example
    export = tmp_path / f"export-{run}.csv"
    export.write_text(out.getvalue(), encoding="utf-8")
    store = IngestorStore.from_url(f"sqlite:///{tmp_path}/{run}.db")
    ingestor, publisher = recording_ingestor(store)
    profile = get_profile("open311").model_copy(update={"source": "city"})
    summary = asyncio.run(import_file(ingestor, export, profile))
    assert sum(summary.rejects.values()) == (broken is not None)
    assert_nothing_leaked(token, store, publisher.wire(), caplog.text)
    store.close()


@SETTINGS
@given(case=planted([*BREAKAGES, "truncated"]))
def test_pushed_requests_and_the_push_answer(
    case: tuple[str, dict[str, Any], str | None],
    store: IngestorStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, extra, broken = case
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    body = json.dumps([open311_record(extra, broken, token)]).encode()
    if broken == "truncated":
        body = body[:-3]
    ingestor, publisher = recording_ingestor(store)
    settings_ = IngestorSettings(push_tokens="tok", push_source="city")  # type: ignore[arg-type]

    async def health() -> dict[str, str]:
        return {"database": "ok"}

    async def push() -> httpx.Response:
        app = create_app(ingestor, settings_, health)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as http:
            return await http.post(
                "/api/v1/requests",
                content=body,
                headers={"Authorization": "Bearer tok", "Content-Type": "application/json"},
            )

    answer = asyncio.run(push())
    assert answer.status_code == (400 if broken == "truncated" else 200)
    assert_nothing_leaked(token, store, answer.text, publisher.wire(), caplog.text)
    if broken not in (None, "truncated"):
        assert answer.json()["rejected"] == 1
