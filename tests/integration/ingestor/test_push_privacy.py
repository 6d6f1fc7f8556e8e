"""Reporter personal data pushed to the ingestor is never stored, published or logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import select

from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS
from connect311_ingestor.app import Runtime
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.store_tables import request_state

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
AUTH = {"Authorization": "Bearer tok-1"}
SECRETS = ("annabel.reporter", "Annabel", "Quixote", "555-0199", "device-8c1f", "acct-77")


@pytest.fixture
def ingestor_settings(ingestor_settings: IngestorSettings, source_name: str) -> IngestorSettings:
    return ingestor_settings.model_copy(update={"push_source": source_name})


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=runtime.http_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as http:
        yield http


def reported(rid: str, **changes: Any) -> dict[str, Any]:
    record = {
        "service_request_id": rid,
        "status": "open",
        "service_code": "POTHOLE",
        "requested_datetime": "2024-05-01T10:00:00-04:00",
        "lat": 27.7676,
        "long": -82.6403,
        "email": "annabel.reporter@example.org",
        "first_name": "Annabel",
        "last_name": "Quixote",
        "phone": "555-0199",
        "device_id": "device-8c1f",
        "account_id": "acct-77",
    }
    record.update(changes)
    return record


async def test_reporter_fields_are_dropped_from_events_rejects_state_and_logs(
    client: httpx.AsyncClient,
    runtime: Runtime,
    source_name: str,
    topic_reader: Reader,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="connect311_ingestor")
    caplog.set_level(logging.INFO)
    body = [
        reported("p1"),
        reported("p2", lat=None),  # rejected: the raw record goes to the rejects topic
        reported("p3", long=500, description="call annabel.reporter@example.org back"),
    ]
    body.append("call annabel.reporter@example.org")  # not an object: rejected as it is
    response = await client.post("/api/v1/requests", json=body, headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 3)
    broken = b'{"email": "annabel.reporter@example.org", "first_name": "Annabel", '
    invalid = await client.post("/api/v1/requests", content=broken, headers=AUTH)
    assert invalid.status_code == 400

    events = await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    rejects = await topic_reader(REQUEST_REJECTS.name, source_name)
    assert len(events) == 1 and len(rejects) == 4
    with runtime.store.engine.connect() as conn:
        stored = [row.snapshot for row in conn.execute(select(request_state.c.snapshot))]
    assert len(stored) == 1
    texts = {
        "events": [r.value.decode() for r in events],
        "rejects": [r.value.decode() for r in rejects],
        "state": stored,
        "response": [response.text],
        "logs": [record.getMessage() for record in caplog.records],
    }
    assert any("2024-05-01" in t for t in texts["rejects"]), "the rejects keep the rest"
    for where, values in texts.items():
        for secret in SECRETS:
            assert not any(secret in v for v in values), (where, secret)
