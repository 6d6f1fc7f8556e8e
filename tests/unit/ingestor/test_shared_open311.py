"""Every Open311 GeoReport request/update list in ../shared/data, read by the Open311 adapter.

Expected counts were worked out by reading each file (see the notes beside each case), not
copied from the parser's output.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.parsers.open311 import parse_requests
from connect311_ingestor.parsers.open311_document import FeedError, parse_error
from connect311_ingestor.parsers.open311_services import parse_services
from connect311_ingestor.parsers.open311_updates import RequestUpdate, parse_updates
from connect311_ingestor.records import Accepted, Rejected


def tally(results: list) -> dict[str, int]:
    """Accepted count under 'ok', rejected counts under their reason's value."""
    counts: Counter[str] = Counter()
    for result in results:
        counts["ok" if isinstance(result, (Accepted, RequestUpdate)) else result.reason.value] += 1
    return dict(counts)


def body_of(path: Path) -> bytes:
    """The response body; the spec's `*.http.*` examples start with an HTTP status line."""
    data = path.read_bytes()
    if data.startswith(b"HTTP/"):
        data = data.split(b"\n\n", 1)[1]
    return data


REQUEST_FILES = {
    # spec examples: the JSON ones are invalid JSON ("service_code":006)
    "spec-examples/requests.xml": {"ok": 2},
    "spec-examples/request_single.xml": {"ok": 1},
    "spec-examples/requests.json": {"invalid_json": 1},
    "spec-examples/request_single.json": {"invalid_json": 1},
    "spec-examples/post_request_response.xml": {"unexpected_shape": 1},  # id + notice only
    "spec-examples/post_request_response.json": {"unexpected_shape": 1},
    "spec-examples/token.xml": {"unexpected_shape": 1},  # id + token only
    "spec-examples/token.json": {"unexpected_shape": 1},
    "spec-examples/error_403.http.xml": {"unexpected_shape": 1},  # <errors> document
    "spec-examples/error_403.http.json": {"unexpected_shape": 1},  # [{code, description}]
    # Code for America's fixtures (SF311)
    "cfa-open311-ruby/service_requests.xml": {"ok": 2},
    "cfa-open311-ruby/get_service_request.xml": {"ok": 1},
    "cfa-open311-ruby/service_requests_empty.xml": {},
    "cfa-open311-ruby/post_service_request.xml": {"unexpected_shape": 1},
    "cfa-open311-ruby/request_id_from_token.xml": {"unexpected_shape": 1},
    "cfa-open311-ruby/get_service_request_not_found.xml": {"unexpected_shape": 1},  # <errors>
    "cfa-open311-ruby/403.xml": {"unexpected_shape": 1},  # bare <error>
    # FixMyStreet: one of the two Gloucestershire requests is non_public
    "fixmystreet/requests_3.xml": {"ok": 3},
    "fixmystreet/requests_getupdates.xml": {"ok": 2},
    "fixmystreet/requests_glos_non_public.xml": {"ok": 1, "invalid_field": 1},
    "fixmystreet/post_requests_response.xml": {"unexpected_shape": 1},
    "fixmystreet/error_400.xml": {"unexpected_shape": 1},
    # open311-adapter (Confirm): its test fixtures use lat/long 100/100, impossible in WGS84
    "open311-adapter/get_requests.xml": {"invalid_coordinates": 1},
    "open311-adapter/get_requests_wrapped_extras.xml": {"invalid_coordinates": 1},
    # Boston: one bare request object whose media_url is an array
    "boston/request_single.json": {"ok": 1},
}

UPDATE_FILES = {
    "fixmystreet/servicerequestupdates_basic.xml": {"ok": 1},
    "fixmystreet/servicerequestupdates_extended_id_ext.xml": {"ok": 1},
    "fixmystreet/servicerequestupdates_external_status_code.xml": {"ok": 2},
    # third entry has an empty service_request_id
    "fixmystreet/servicerequestupdates_fixmystreet_id.xml": {"ok": 2, "missing_field": 1},
    "fixmystreet/servicerequestupdates_no_description.xml": {"ok": 1},
    "fixmystreet/post_servicerequestupdates_response.xml": {"unexpected_shape": 1},
    "open311-adapter/get_servicerequestupdates.xml": {"ok": 3},
    "open311-adapter/post_servicerequestupdates_response.xml": {"unexpected_shape": 1},
}

SERVICE_FILES = {
    "spec-examples/services.xml": 3,
    "cfa-open311-ruby/services.xml": 36,  # SF311, declares XML namespaces
    "fixmystreet/services_3.xml": 3,
    "fixmystreet/services_groups.xml": 2,
    "open311-adapter/services.xml": 3,
    "boston/services.json": 118,
}

NOT_LISTS = {  # service definitions, a server directory, a form POST: no requests in them
    "spec-examples/service_definition.json",
    "spec-examples/service_definition.xml",
    "spec-examples/servers.yml",
    "spec-examples/post_request_example_http.txt",
    "spec-examples/services.json",  # invalid JSON services list, tested below
    "cfa-open311-ruby/service_definition.xml",
    "fixmystreet/service_definition_100.xml",
    "fixmystreet/service_definition_b.xml",
    "fixmystreet/service_definition_singlevaluelist.xml",
    "open311-adapter/service_definition_ABC_DEF.xml",
    "boston/service_definitions.json",
}


def fmt_of(name: str) -> str:
    return "json" if name.endswith(".json") else "xml"


def test_every_open311_file_is_covered(shared_data: Path) -> None:
    root = shared_data / "open311"
    present = {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not str(p.relative_to(root)).startswith("schema/")
    }
    covered = set(REQUEST_FILES) | set(UPDATE_FILES) | set(SERVICE_FILES) | NOT_LISTS
    assert present == covered


@pytest.mark.parametrize(("name", "expected"), sorted(REQUEST_FILES.items()))
def test_request_lists(shared_data: Path, name: str, expected: dict[str, int]) -> None:
    path = shared_data / "open311" / name
    results = parse_requests(body_of(path), source="t", fmt=fmt_of(name), location=name)
    assert tally(results) == expected
    for result in results:
        assert result.location is not None and result.location.startswith(name)
        if isinstance(result, Rejected):
            assert result.detail.endswith(".") and len(result.detail) > 20
            assert result.raw


@pytest.mark.parametrize(("name", "expected"), sorted(UPDATE_FILES.items()))
def test_update_lists(shared_data: Path, name: str, expected: dict[str, int]) -> None:
    path = shared_data / "open311" / name
    assert tally(parse_updates(path.read_bytes(), source="t", fmt="xml")) == expected


@pytest.mark.parametrize(("name", "count"), sorted(SERVICE_FILES.items()))
def test_services_lists(shared_data: Path, name: str, count: int) -> None:
    services = parse_services((shared_data / "open311" / name).read_bytes(), fmt=fmt_of(name))
    assert len(services) == count
    assert len({s.service_code for s in services}) == count


def test_spec_request_fields(shared_data: Path) -> None:
    body = (shared_data / "open311/spec-examples/requests.xml").read_bytes()
    first, second = (r.request for r in parse_requests(body, source="sf", fmt="xml"))
    assert first.service_request_id == "sf:638344"
    assert first.service_code == "006"  # leading zeros survive in XML
    assert first.status is RequestStatus.CLOSED
    assert first.closed_reason is ClosedReason.DUPLICATE  # status_notes "Duplicate request."
    assert first.requested_datetime == datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)
    assert first.media_url == "http://city.gov.s3.amazonaws.com/requests/media/638344.jpg"
    assert (first.lat, first.long, first.zipcode) == (37.762221815, -122.4651145, "94122")
    assert first.description is None and first.agency_responsible is None
    assert second.status is RequestStatus.OPEN and second.closed_reason is None


def test_spec_json_is_rejected_with_a_clear_reason(shared_data: Path) -> None:
    body = (shared_data / "open311/spec-examples/requests.json").read_bytes()
    (result,) = parse_requests(body, source="sf", fmt="json", location="spec")
    assert isinstance(result, Rejected)
    assert "leading zeros" in result.detail and "line 7" in result.detail
    with pytest.raises(FeedError) as caught:
        parse_services(
            (shared_data / "open311/spec-examples/services.json").read_bytes(), fmt="json"
        )
    assert caught.value.reason.value == "invalid_json"


def test_fixmystreet_statuses(shared_data: Path) -> None:
    body = (shared_data / "open311/fixmystreet/requests_3.xml").read_bytes()
    statuses = [
        (r.request.raw_status, r.request.status)
        for r in parse_requests(body, source="f", fmt="xml")
    ]
    assert statuses == [
        ("open", RequestStatus.OPEN),
        ("investigating", RequestStatus.IN_PROGRESS),
        ("open", RequestStatus.OPEN),
    ]


def test_boston_media_url_array_keeps_the_first_url(shared_data: Path) -> None:
    body = (shared_data / "open311/boston/request_single.json").read_bytes()
    (result,) = parse_requests(body, source="boston", fmt="json")
    request = result.request
    assert request.media_url is not None and request.media_url.endswith("ummgik6x8d6as2gh7mtg.png")
    assert request.zipcode == "02111" and request.address == "185 Kneeland St, Boston"
    dumped = request.model_dump_json()
    assert "strongbad" not in dumped and "Strong" not in dumped  # no reporter contact kept


def test_updates_fields(shared_data: Path) -> None:
    body = (shared_data / "open311/open311-adapter/get_servicerequestupdates.xml").read_bytes()
    updates = parse_updates(body, source="confirm", fmt="xml")
    assert [
        (u.update_id, u.service_request_id, u.status, u.closed_reason, u.external_status_code)
        for u in updates
    ] == [
        ("2001_3", "confirm:2001", RequestStatus.IN_PROGRESS, None, "INP"),
        ("2002_1", "confirm:2002", RequestStatus.IN_PROGRESS, None, "INP"),
        ("2002_2", "confirm:2002", RequestStatus.CLOSED, ClosedReason.DUPLICATE, "DUP"),
    ]
    assert updates[2].updated_datetime == datetime(2018, 3, 1, 13, 30, tzinfo=UTC)
    assert all(u.description is None and u.media_url is None for u in updates)
    basic = parse_updates(
        (shared_data / "open311/fixmystreet/servicerequestupdates_basic.xml").read_bytes(),
        source="fms",
        fmt="xml",
    )
    assert basic[0].description == "This is a note"
    assert basic[0].updated_datetime == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def test_namespaced_sf311_services(shared_data: Path) -> None:
    services = parse_services(
        (shared_data / "open311/cfa-open311-ruby/services.xml").read_bytes(), fmt="xml"
    )
    first = services[0]
    assert (first.service_code, first.service_name, first.group) == (
        "001",
        "Cans_Left_Out_24x7",
        "Litter Receptacles",
    )
    assert first.metadata is False and first.type == "realtime" and first.keywords == ()
    groups = parse_services(
        (shared_data / "open311/fixmystreet/services_groups.xml").read_bytes(), fmt="xml"
    )
    assert groups[0].groups == ("sanitation", "street") and groups[1].group == "street"
    spec = parse_services(
        (shared_data / "open311/spec-examples/services.xml").read_bytes(), fmt="xml"
    )
    assert spec[0].keywords == ("lorem", "ipsum", "dolor") and spec[0].metadata is True


def test_error_documents(shared_data: Path) -> None:
    spec = shared_data / "open311/spec-examples"
    expected = "403: Invalid api_key received -- can't proceed with create_request"
    assert parse_error(body_of(spec / "error_403.http.xml"), "xml") == expected
    assert parse_error(body_of(spec / "error_403.http.json"), "json") == expected
    assert parse_error((spec / "requests.xml").read_bytes(), "xml") is None


@pytest.mark.parametrize(
    "name",
    [
        "boston/services.json",
        "boston/service_definitions.json",
        "spec-examples/service_definition.json",
    ],
)
def test_json_services_read_as_requests_are_each_rejected_as_a_service(
    shared_data: Path, name: str
) -> None:
    """A services list or definition given where requests were expected: every record is
    counted, and the reason says what it is (not a vague missing id)."""
    import json

    path = shared_data / "open311" / name
    data = json.loads(path.read_bytes())
    records = data if isinstance(data, list) else [data]
    results = parse_requests(path.read_bytes(), source="t", fmt="json", location=name)
    assert tally(results) == {"unexpected_shape": len(records)}
    assert all("is a service" in r.detail for r in results if isinstance(r, Rejected))
