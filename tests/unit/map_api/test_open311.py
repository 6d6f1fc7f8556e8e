"""Open311 GeoReport v2 output, validated against the published JSON schemas."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from sqlalchemy import Engine

from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import T0, event, lifecycle, snapshot


@pytest.fixture(scope="module")
def schemas(shared_data: Path) -> dict[str, Draft4Validator]:
    """Validators for the GeoReport v2 schemas; `$ref`s resolve by file name."""
    folder = shared_data / "open311" / "schema"
    registry: Registry = Registry()
    loaded = {}
    for path in folder.glob("*.json"):
        loaded[path.name] = json.loads(path.read_text())
        resource = Resource.from_contents(loaded[path.name], default_specification=DRAFT4)
        registry = registry.with_resource(path.name, resource)
    return {
        name: Draft4Validator(loaded[name], registry=registry)
        for name in ("requests.json", "services.json")
    }


@pytest.fixture
def seeded(client: TestClient, engine: Engine) -> TestClient:
    events = lifecycle("o1")
    for i in range(12):
        req = snapshot(
            f"o{i + 2}",
            opened=T0 + timedelta(hours=i),
            description=None,
            code="LEAK" if i % 2 else "POT",
        )
        events.append(event("opened", req))
    events.append(event("opened", snapshot("nocode", code=None, name=None)))  # type: ignore[arg-type]
    with engine.begin() as conn:
        apply_events(conn, events)
    return client


def _valid(validator: Draft4Validator, body: object) -> None:
    errors = [e.message for e in validator.iter_errors(body)]
    assert errors == []


def test_requests_json_is_valid_and_pages(
    seeded: TestClient, schemas: dict[str, Draft4Validator]
) -> None:
    response = seeded.get("/open311/v2/requests.json", params={"page_size": 5})
    assert response.headers["content-type"].startswith("application/json")
    first = response.json()
    _valid(schemas["requests.json"], first)
    assert len(first) == 5
    second = seeded.get("/open311/v2/requests.json", params={"page_size": 5, "page": 2}).json()
    everything = seeded.get("/open311/v2/requests.json", params={"page_size": 100}).json()
    assert [r["service_request_id"] for r in first + second] == [
        r["service_request_id"] for r in everything[:10]
    ]
    assert len(everything) == 14
    _valid(schemas["requests.json"], everything)
    dates = [r["requested_datetime"] for r in everything]
    assert dates == sorted(dates, reverse=True)


def test_request_filters(seeded: TestClient) -> None:
    closed = seeded.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert [r["service_request_id"] for r in closed] == ["test:o1"]
    assert closed[0]["status"] == "closed" and closed[0]["status_notes"] == "Filled"
    leaks = seeded.get("/open311/v2/requests.json", params={"service_code": "LEAK"}).json()
    assert len(leaks) == 6
    window = seeded.get(
        "/open311/v2/requests.json",
        params={
            "start_date": (T0 + timedelta(hours=3)).isoformat(),
            "end_date": (T0 + timedelta(hours=5)).isoformat(),
        },
    ).json()
    assert {r["service_request_id"] for r in window} == {"test:o5", "test:o6"}
    some = seeded.get(
        "/open311/v2/requests.json", params={"service_request_id": "test:o2,test:o3"}
    ).json()
    assert {r["service_request_id"] for r in some} == {"test:o2", "test:o3"}
    assert seeded.get("/open311/v2/requests.json", params={"status": "x"}).status_code == 400


def test_single_request_json_and_xml(
    seeded: TestClient, schemas: dict[str, Draft4Validator]
) -> None:
    body = seeded.get("/open311/v2/requests/test:o1.json").json()
    _valid(schemas["requests.json"], body)
    assert len(body) == 1 and body[0]["service_code"] == "POT"
    xml = seeded.get("/open311/v2/requests/test:o1.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(xml.content)
    assert root.tag == "service_requests"
    assert root.find("request/service_request_id").text == "test:o1"  # type: ignore[union-attr]
    assert seeded.get("/open311/v2/requests/test:none.json").status_code == 404


def test_services_and_discovery(seeded: TestClient, schemas: dict[str, Draft4Validator]) -> None:
    services = seeded.get("/open311/v2/services.json").json()
    _valid(schemas["services.json"], services)
    assert {s["service_code"] for s in services} == {"POT", "LEAK"}
    root = ET.fromstring(seeded.get("/open311/v2/services.xml").content)
    assert {e.text for e in root.iter("service_code")} == {"POT", "LEAK"}
    discovery = seeded.get("/open311/v2/discovery.json").json()
    assert discovery["endpoints"][0]["url"] == "http://testserver/open311/v2"
    assert "application/json" in discovery["endpoints"][0]["formats"]
    disc_xml = ET.fromstring(seeded.get("/open311/v2/discovery.xml").content)
    assert disc_xml.find("endpoints/endpoint/specification") is not None


def test_requests_xml_escapes_text(seeded: TestClient, engine: Engine) -> None:
    hostile = snapshot("x1", description="<b>&</b>", opened=T0 + timedelta(days=30))
    with engine.begin() as conn:
        apply_events(conn, [event("opened", hostile)])
    root = ET.fromstring(seeded.get("/open311/v2/requests.xml", params={"page_size": 1}).content)
    assert root.find("request/description").text == "<b>&</b>"  # type: ignore[union-attr]
