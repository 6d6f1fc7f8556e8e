"""The push endpoint, /healthz and /metrics over a real ingestor and broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from pydantic import SecretStr
from sqlalchemy import create_engine

from connect311_bus.kafka import decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.rejects import RecordRejected
from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS
from connect311_ingestor.app import Runtime
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.web import PUSH_DISABLED, create_app

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]


@pytest.fixture
def ingestor_settings(ingestor_settings: IngestorSettings, source_name: str) -> IngestorSettings:
    return ingestor_settings.model_copy(update={"push_source": source_name})


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=runtime.http_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as http:
        yield http


def open311(rid: str, **changes: Any) -> dict[str, Any]:
    record = {
        "service_request_id": rid,
        "status": "open",
        "service_code": "POTHOLE",
        "service_name": "Pothole",
        "requested_datetime": "2024-05-01T10:00:00-04:00",
        "lat": 27.7676,
        "long": -82.6403,
        "address": "100 Central Ave",
    }
    record.update(changes)
    return record


AUTH = {"Authorization": "Bearer tok-2"}


async def test_push_answers_per_record_and_publishes_events_and_rejects(
    client: httpx.AsyncClient, source_name: str, topic_reader: Reader
) -> None:
    body = [
        open311("a1"),
        open311("a2", lat=None),
        "not an object",
        open311("a3", status="closed", updated_datetime="2024-05-02T10:00:00Z"),
    ]
    response = await client.post("/api/v1/requests", json=body, headers=AUTH)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    statuses = [
        (r["index"], r["status"], r.get("reason") or r.get("event_type")) for r in answer["results"]
    ]
    assert statuses == [
        (0, "accepted", "request.opened"),
        (1, "rejected", "missing_coordinates"),
        (2, "rejected", "unexpected_shape"),
        (3, "accepted", "request.opened"),
    ]
    # The same request again is accepted and causes nothing; a change causes one update.
    again = await client.post(
        "/api/v1/requests", json=open311("a1", status_notes="crew sent"), headers=AUTH
    )
    assert again.json()["results"][0]["event_type"] == "request.updated"

    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for r in await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    ]
    # Events of one request stay in order (same key, same partition).
    assert [
        (e.request.service_request_id, e.event_type)
        for e in events
        if e.request.source_request_id == "a1"
    ] == [
        (f"{source_name}:a1", "request.opened"),
        (f"{source_name}:a1", "request.updated"),
    ]
    assert sorted(e.request.source_request_id for e in events) == ["a1", "a1", "a3"]
    rejects = [
        RecordRejected.model_validate_json(r.value)
        for r in await topic_reader(REQUEST_REJECTS.name, source_name)
    ]
    assert sorted(r.reason.value for r in rejects if r.source == source_name) == [
        "missing_coordinates",
        "unexpected_shape",
    ]


async def test_push_accepts_one_form_encoded_request_as_open311_clients_post_it(
    client: httpx.AsyncClient, source_name: str
) -> None:
    form = {k: str(v) for k, v in open311("f1", status_notes="from a form").items()}
    response = await client.post("/api/v1/requests", data=form, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "index": 0,
            "status": "accepted",
            "service_request_id": f"{source_name}:f1",
            "event_type": "request.opened",
        }
    ]


async def test_push_requires_a_known_bearer_token(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/v1/requests", json=open311("x"))
    wrong = await client.post(
        "/api/v1/requests", json=open311("x"), headers={"Authorization": "Bearer nope"}
    )
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"


async def test_push_refuses_oversized_and_invalid_bodies(
    client: httpx.AsyncClient, source_name: str, topic_reader: Reader
) -> None:
    huge = [open311(f"r{i}", description="x" * 500) for i in range(60)]
    too_big = await client.post("/api/v1/requests", content=json.dumps(huge), headers=AUTH)
    assert too_big.status_code == 413
    broken = await client.post(
        "/api/v1/requests", content=b'{"service_request_id": 0', headers=AUTH
    )
    assert broken.status_code == 400 and broken.json()["reason"] == "invalid_json"
    rejects = [
        RecordRejected.model_validate_json(r.value)
        for r in await topic_reader(REQUEST_REJECTS.name, source_name)
    ]
    assert [r.reason.value for r in rejects if r.source == source_name] == ["invalid_json"]


async def test_push_without_tokens_is_disabled_with_a_clear_message(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"push_tokens": SecretStr("")})
    app = create_app(runtime.ingestor, settings, runtime.health)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://i") as http:
        response = await http.post("/api/v1/requests", json=open311("x"), headers=AUTH)
    assert response.status_code == 503
    assert response.json()["detail"] == PUSH_DISABLED
    assert "INGESTOR_PUSH_TOKENS" in PUSH_DISABLED


async def test_healthz_and_metrics(client: httpx.AsyncClient, source_name: str) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    await client.post("/api/v1/requests", json=[open311("m1"), open311("m2", lat=95)], headers=AUTH)
    text = (await client.get("/metrics")).text
    assert f'ingestor_records_in_total{{source="{source_name}"}} 2.0' in text
    line = f'reason="invalid_coordinates",source="{source_name}"}} 1.0'
    assert "ingestor_records_rejected_total{" + line in text
    assert 'ingestor_events_published_total{event_type="request.opened"}' in text


async def test_healthz_reports_an_unreachable_database(runtime: Runtime) -> None:
    runtime.store.engine.dispose()
    broken = runtime.store.engine
    runtime.store.engine = create_engine("sqlite:////nonexistent-dir/x/y.db")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=runtime.http_app()), base_url="http://i"
        ) as http:
            response = await http.get("/healthz")
    finally:
        runtime.store.engine = broken
    assert response.status_code == 503
    assert response.json()["database"].startswith("error")
    assert response.json()["broker"] == "ok"
