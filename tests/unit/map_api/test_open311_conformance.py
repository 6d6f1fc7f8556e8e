"""Open311 output that strict GeoReport v2 clients accept: errors, service definitions, media
types, discovery and close reasons, checked against the spec's own examples and JSON Schemas
in ../shared/data/open311. The client-side parsing here is written from the spec (element
paths, field names), not from our code, and uses a strict, safe XML parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree as SafeET
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from sqlalchemy import Engine

from connect311_contracts.events import RequestClosed, RequestOpened
from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.parsers.open311 import parse_requests
from connect311_ingestor.records import Accepted
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import event, snapshot

Element = Any  # xml.etree Element, as returned by defusedxml


@pytest.fixture(scope="module")
def open311_data(shared_data: Path) -> Path:
    return shared_data / "open311"


@pytest.fixture(scope="module")
def schemas(open311_data: Path) -> dict[str, Draft4Validator]:
    """Validators for the GeoReport v2 schemas; `$ref`s resolve by file name."""
    registry: Registry = Registry()
    loaded = {}
    for path in (open311_data / "schema").glob("*.json"):
        loaded[path.name] = json.loads(path.read_text())
        resource = Resource.from_contents(loaded[path.name], default_specification=DRAFT4)
        registry = registry.with_resource(path.name, resource)
    return {name: Draft4Validator(schema, registry=registry) for name, schema in loaded.items()}


def _closed(source_id: str, reason: ClosedReason | None, raw: str, notes: str | None = None) -> Any:
    req = snapshot(source_id, status=RequestStatus.CLOSED, notes=notes)
    return req.model_copy(update={"closed_reason": reason, "raw_status": raw})


@pytest.fixture
def seeded(client: TestClient, engine: Engine) -> TestClient:
    requests = [
        _closed("dup", ClosedReason.DUPLICATE, "Closed"),
        _closed("law", ClosedReason.REFERRED, "Referred to Law"),
        _closed("cxl", ClosedReason.CANCELLED, "Canceled"),
        _closed("fix", ClosedReason.FIXED, "Completed", notes="Pothole filled"),
        _closed("plain", None, "CLOSED"),
        snapshot("open1"),
        snapshot("wip", status=RequestStatus.IN_PROGRESS),
    ]
    with engine.begin() as conn:
        apply_events(conn, [event("opened", r) for r in requests])
    return client


def _valid(validator: Draft4Validator, body: object) -> None:
    assert [e.message for e in validator.iter_errors(body)] == []


def _paths(element: Element, prefix: str = "") -> set[str]:
    """Every element path of a tree ('errors', 'errors/error', 'errors/error/code', ...)."""
    here = f"{prefix}/{element.tag}" if prefix else element.tag
    found = {here}
    for child in element:
        found |= _paths(child, here)
    return found


def _spec_xml(path: Path) -> Element:
    """A spec example; the error examples start with an HTTP status line."""
    text = path.read_text()
    return SafeET.fromstring(text[text.index("<?xml") :].encode())


# --- errors ----------------------------------------------------------------------------------

BAD = [
    ("/open311/v2/requests.{fmt}?page_size=0", 400),
    ("/open311/v2/requests.{fmt}?page=abc", 400),
    ("/open311/v2/requests.{fmt}?status=pending", 400),
    ("/open311/v2/requests.{fmt}?start_date=2024-01-01T00:00:00", 400),
    ("/open311/v2/requests.{fmt}?end_date=yesterday", 400),
    ("/open311/v2/requests.{fmt}?extensions=maybe", 400),
    ("/open311/v2/requests/test:missing.{fmt}", 404),
    ("/open311/v2/request/test:missing.{fmt}", 404),
    ("/open311/v2/services/NOPE.{fmt}", 404),
    ("/open311/v2/tokens/abc.{fmt}", 404),
    ("/open311/v2/no-such-thing.{fmt}", 404),
]


@pytest.mark.parametrize(("template", "code"), BAD)
def test_errors_are_in_the_spec_shape_in_json(
    seeded: TestClient, open311_data: Path, template: str, code: int
) -> None:
    response = seeded.get(template.format(fmt="json"))
    assert response.status_code == code
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    example = json.loads(
        (open311_data / "spec-examples" / "error_403.http.json").read_text().split("\n", 2)[2]
    )
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == set(example[0]) == {"code", "description"}
    assert body[0]["code"] == code and isinstance(body[0]["description"], str)
    assert body[0]["description"] and "\n" not in body[0]["description"]


@pytest.mark.parametrize(("template", "code"), BAD)
def test_errors_are_in_the_spec_shape_in_xml(
    seeded: TestClient, open311_data: Path, template: str, code: int
) -> None:
    response = seeded.get(template.format(fmt="xml"))
    assert response.status_code == code
    assert response.headers["content-type"] == "text/xml"
    root = SafeET.fromstring(response.content)
    spec = _spec_xml(open311_data / "spec-examples" / "error_403.http.xml")
    assert _paths(root) == _paths(spec)
    assert root.findtext("error/code") == str(code)
    assert root.findtext("error/description")


def test_unknown_paths_and_writes_answer_in_the_errors_shape(seeded: TestClient) -> None:
    for path in ("/open311/v2", "/open311/v2/", "/open311/v2/requests"):
        response = seeded.get(path)
        assert response.status_code == 404 and response.json()[0]["code"] == 404
    post = seeded.post("/open311/v2/requests.xml", content=b"service_code=POT")
    assert post.status_code == 405 and post.headers["allow"] == "GET"
    assert SafeET.fromstring(post.content).findtext("error/code") == "405"


# --- service definitions ---------------------------------------------------------------------


def test_service_definition_json_validates_and_has_no_attributes(
    seeded: TestClient, schemas: dict[str, Draft4Validator]
) -> None:
    services = seeded.get("/open311/v2/services.json").json()
    assert services and all(s["metadata"] is False for s in services)
    for service in services:
        body = seeded.get(f"/open311/v2/services/{service['service_code']}.json").json()
        _valid(schemas["service-definition.json"], body)
        assert body == {"service_code": service["service_code"], "attributes": []}


def test_service_definition_xml_has_the_spec_shape(seeded: TestClient, open311_data: Path) -> None:
    response = seeded.get("/open311/v2/services/POT.xml")
    assert response.status_code == 200 and response.headers["content-type"] == "text/xml"
    root = SafeET.fromstring(response.content)
    spec = _spec_xml(open311_data / "spec-examples" / "service_definition.xml")
    assert _paths(root) <= _paths(spec)
    assert root.findtext("service_code") == "POT"
    assert root.find("attributes") is not None and root.findall("attributes/attribute") == []


# --- media types and discovery ---------------------------------------------------------------


def test_every_answer_uses_exactly_a_media_type_discovery_declares(seeded: TestClient) -> None:
    declared = seeded.get("/open311/v2/discovery.json").json()["endpoints"][0]["formats"]
    for name in ("discovery", "services", "requests", "requests/test:dup", "services/POT"):
        for ext, media in (("json", "application/json"), ("xml", "text/xml")):
            response = seeded.get(f"/open311/v2/{name}.{ext}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == media and media in declared
            if ext == "xml":  # the encoding comes from the XML declaration, and it is UTF-8
                assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")


def test_discovery_xml_gives_a_client_lists_of_endpoints_and_formats(seeded: TestClient) -> None:
    root = SafeET.fromstring(seeded.get("/open311/v2/discovery.xml").content)
    # The spec's discovery XML: <discovery><changeset/><contact/><key_service/>
    # <endpoints><endpoint><specification/><url/><changeset/><type/><formats><format/>...
    assert [child.tag for child in root] == ["changeset", "contact", "key_service", "endpoints"]
    endpoints = root.findall("endpoints/endpoint")
    assert len(endpoints) == len(root.find("endpoints"))  # only <endpoint> items in the list
    as_json = seeded.get("/open311/v2/discovery.json").json()["endpoints"]
    assert len(endpoints) == len(as_json) >= 1
    for element, expected in zip(endpoints, as_json, strict=True):
        assert [c.tag for c in element] == [
            "specification",
            "url",
            "changeset",
            "type",
            "formats",
        ]
        assert element.findtext("url") == expected["url"]
        assert [f.text for f in element.findall("formats/format")] == expected["formats"]
        assert {"text/xml", "application/json"} <= set(expected["formats"])


# --- requests: close reason, raw status, and XML == JSON -------------------------------------


def _client_parse_requests(xml: bytes) -> list[dict[str, str | None]]:
    """How a GeoReport v2 client reads a request list: flat children of each <request>."""
    root = SafeET.fromstring(xml)
    assert root.tag == "service_requests"
    return [
        {child.tag: child.text for child in request if len(child) == 0}
        for request in root.findall("request")
    ]


def _as_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def test_requests_xml_matches_json_and_the_spec_field_set(
    seeded: TestClient, open311_data: Path, schemas: dict[str, Draft4Validator]
) -> None:
    as_json = seeded.get("/open311/v2/requests.json").json()
    _valid(schemas["requests.json"], as_json)
    parsed = _client_parse_requests(seeded.get("/open311/v2/requests.xml").content)
    spec = SafeET.fromstring((open311_data / "spec-examples" / "requests.xml").read_bytes())
    spec_fields = {child.tag for child in spec.find("request")}
    assert len(parsed) == len(as_json) == 7
    for from_xml, from_json in zip(parsed, as_json, strict=True):
        assert set(from_xml) == set(from_json) == spec_fields
        assert {k: _as_text(v) for k, v in from_xml.items()} == {
            k: _as_text(v) for k, v in from_json.items()
        }


def test_close_reason_and_city_status_reach_status_notes(seeded: TestClient) -> None:
    by_id = {r["service_request_id"]: r for r in seeded.get("/open311/v2/requests.json").json()}
    notes = {key.split(":")[1]: value["status_notes"] for key, value in by_id.items()}
    assert notes == {
        "dup": "Closed — duplicate of another request",
        "law": "Closed — referred to another agency (city status: Referred to Law)",
        "cxl": "Closed — cancelled",
        "fix": "Pothole filled",  # the source's own notes win
        "plain": None,  # "closed" says it all
        "open1": None,
        "wip": "In progress",  # more than the spec's "open" says
    }
    assert {r["status"] for r in by_id.values()} == {"open", "closed"}


def test_extensions_carry_reason_and_raw_status_in_json_and_xml(
    seeded: TestClient, schemas: dict[str, Draft4Validator]
) -> None:
    body = seeded.get("/open311/v2/requests.json", params={"extensions": "true"}).json()
    _valid(schemas["requests.json"], body)
    extended = {r["service_request_id"]: r["extended_attributes"] for r in body}
    assert extended["test:law"] == {
        "status": "closed",
        "closed_reason": "referred",
        "raw_status": "Referred to Law",
    }
    assert extended["test:wip"]["status"] == "in_progress"
    assert extended["test:wip"]["closed_reason"] is None
    plain = seeded.get("/open311/v2/requests.json").json()
    assert all("extended_attributes" not in r for r in plain)
    root = SafeET.fromstring(
        seeded.get("/open311/v2/requests/test:dup.xml", params={"extensions": "1"}).content
    )
    assert root.findtext("request/extended_attributes/closed_reason") == "duplicate"
    assert root.findtext("request/extended_attributes/raw_status") == "Closed"


# --- the spec's own example, in and out again --------------------------------------------------


def test_the_spec_example_round_trips_with_its_close_reason(
    client: TestClient, engine: Engine, open311_data: Path
) -> None:
    """The spec's requests.xml, read by our ingestor, comes out of our endpoint as the spec
    wrote it: status, notes ("Duplicate request."), codes with leading zeros, places."""
    body = (open311_data / "spec-examples" / "requests.xml").read_bytes()
    results = parse_requests(body, source="sf", fmt="xml")
    accepted = [r.request for r in results if isinstance(r, Accepted)]
    assert len(accepted) == len(results) == 2
    with engine.begin() as conn:
        apply_events(
            conn,
            [
                RequestClosed(request=r)
                if r.status is RequestStatus.CLOSED
                else RequestOpened(request=r)
                for r in accepted
            ],
        )
    ours = _client_parse_requests(client.get("/open311/v2/requests.xml").content)
    spec = SafeET.fromstring(body)
    theirs = {e.findtext("service_request_id"): e for e in spec.findall("request")}
    assert len(ours) == len(theirs)
    for mine in ours:
        source_id = str(mine["service_request_id"]).removeprefix("sf:")
        original = theirs[source_id]
        for field in ("status", "service_code", "service_name", "address", "zipcode"):
            assert mine[field] == original.findtext(field), field
        assert _as_text(mine["status_notes"]) == _as_text(original.findtext("status_notes"))
        assert float(str(mine["lat"])) == pytest.approx(float(original.findtext("lat") or 0))
    extended = client.get("/open311/v2/requests/sf:638344.json?extensions=true").json()[0]
    assert extended["extended_attributes"]["closed_reason"] == "duplicate"


# --- errors past the routes: rate limit, database outage, a bug ------------------------------


def _one_error(response: Any, code: int, xml: bool) -> str:
    """The description of a GeoReport error answer, checking its shape and media type."""
    assert response.status_code == code
    if xml:
        assert response.headers["content-type"] == "text/xml"
        root = SafeET.fromstring(response.content)
        assert _paths(root) == {
            "errors",
            "errors/error",
            "errors/error/code",
            "errors/error/description",
        }
        assert root.findtext("error/code") == str(code)
        return str(root.findtext("error/description"))
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()
    assert set(error) == {"code", "description"} and error["code"] == code
    return str(error["description"])


def test_the_read_limit_answers_open311_in_the_errors_shape(
    sqlite_url: str, publisher: Any, signing: Any
) -> None:
    from tests.unit.map_api.conftest import make_client

    with make_client(sqlite_url, publisher, signing, read_limit="2/minute") as limited:
        for path in ("/open311/v2/services.json", "/open311/v2/services.xml"):
            assert limited.get(path).status_code == 200
        for ext in ("json", "xml"):
            response = limited.get(f"/open311/v2/requests.{ext}")
            assert "try again in" in _one_error(response, 429, xml=ext == "xml")
            assert int(response.headers["retry-after"]) > 0
        assert "detail" in limited.get("/api/stats").json()  # other APIs keep their shape


@pytest.mark.parametrize("ext", ["json", "xml"])
def test_a_database_outage_and_a_bug_answer_in_the_errors_shape(
    sqlite_url: str, publisher: Any, signing: Any, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    from sqlalchemy.exc import OperationalError

    from connect311_map_api.api import open311_routes
    from tests.unit.map_api.conftest import make_client

    def database_gone(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    def bug(*_args: object) -> None:
        raise RuntimeError("a bug")

    with make_client(sqlite_url, publisher, signing) as app_client:
        monkeypatch.setattr(open311_routes, "_services", database_gone)
        response = app_client.get(f"/open311/v2/services.{ext}")
        assert "database unavailable" in _one_error(response, 503, xml=ext == "xml")
        assert response.headers["retry-after"] == "5"
        monkeypatch.setattr(open311_routes, "_services", bug)
        response = app_client.get(f"/open311/v2/services.{ext}")
        assert "a bug" not in _one_error(response, 500, xml=ext == "xml")
