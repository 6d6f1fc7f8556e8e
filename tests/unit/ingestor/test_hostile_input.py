"""Hostile and broken input: each is a counted, reasoned rejection, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connect311_contracts.rejects import MAX_RAW, RejectReason
from connect311_contracts.request import MAX_TEXT
from connect311_ingestor.parsers.open311 import parse_record, parse_requests
from connect311_ingestor.parsers.open311_document import FeedError
from connect311_ingestor.parsers.open311_services import parse_services
from connect311_ingestor.parsers.open311_updates import parse_updates
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.parsers.tabular import parse_row
from connect311_ingestor.records import Accepted, Rejected
from connect311_ingestor.sources.files import read_records

GOOD = {
    "service_request_id": "42",
    "status": "open",
    "service_code": "POT",
    "requested_datetime": "2024-05-01T10:00:00-04:00",
    "lat": "40.7",
    "long": "-74.0",
}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<service_requests><request><description>&lol4;</description></request></service_requests>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<service_requests><request><service_request_id>&xxe;</service_request_id></request></service_requests>"""

DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE service_requests SYSTEM "http://127.0.0.1:9/evil.dtd">
<service_requests></service_requests>"""


def one_reason(results: list) -> str:
    (only,) = results
    assert isinstance(only, Rejected)
    assert only.detail and only.raw is not None
    return only.reason.value


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY])
def test_unsafe_xml_is_rejected_without_expansion(body: bytes) -> None:
    results = parse_requests(body, source="t", fmt="xml")
    assert one_reason(results) == "unsafe_xml"
    assert "root:" not in results[0].detail and "lollol" not in results[0].detail
    assert one_reason(parse_updates(body, source="t", fmt="xml")) == "unsafe_xml"
    with pytest.raises(FeedError) as caught:
        parse_services(body, fmt="xml")
    assert caught.value.reason is RejectReason.UNSAFE_XML


def test_truncated_documents() -> None:
    xml = b"<service_requests><request><service_request_id>1</service_request_id><lat>4"
    assert one_reason(parse_requests(xml, source="t", fmt="xml")) == "invalid_xml"
    document = json.dumps([GOOD, GOOD]).encode()
    truncated = parse_requests(document[:-20], source="t", fmt="json")
    assert one_reason(truncated) == "invalid_json" and "leading zeros" not in truncated[0].detail
    assert one_reason(parse_requests(b"", source="t", fmt="json")) == "invalid_json"
    assert one_reason(parse_requests(b"\xff\xfe\x00garbage", source="t", fmt="json")) in {
        "encoding_error",
        "invalid_json",
    }
    assert (
        one_reason(parse_requests(b'"just a string"', source="t", fmt="json")) == "unexpected_shape"
    )
    assert one_reason(parse_requests(b"<other/>", source="t", fmt="xml")) == "unexpected_shape"


def test_non_objects_in_a_list_are_rejected_one_by_one() -> None:
    results = parse_requests(json.dumps([GOOD, 7, None, "x"]).encode(), source="t", fmt="json")
    assert [type(r) for r in results] == [Accepted, Rejected, Rejected, Rejected]
    assert {r.reason.value for r in results if isinstance(r, Rejected)} == {"unexpected_shape"}


@pytest.mark.parametrize(
    ("lat", "long", "reason"),
    [
        (None, "-74.0", "missing_coordinates"),
        ("", "", "missing_coordinates"),
        ("NaN", "-74.0", "invalid_coordinates"),
        ("40.7", "inf", "invalid_coordinates"),
        ("-Infinity", "-74.0", "invalid_coordinates"),
        ("91", "-74.0", "invalid_coordinates"),
        ("40.7", "-180.5", "invalid_coordinates"),
        ("0", "0", "invalid_coordinates"),
        ("forty", "-74.0", "invalid_coordinates"),
        ("1e400", "-74.0", "invalid_coordinates"),
    ],
)
def test_bad_coordinates(lat: object, long: object, reason: str) -> None:
    result = parse_record({**GOOD, "lat": lat, "long": long}, source="t")
    assert isinstance(result, Rejected) and result.reason.value == reason


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("requested_datetime", "9999-12-31T23:59:59", "invalid_date"),
        ("requested_datetime", "1900-01-01T00:00:00Z", "invalid_date"),
        ("requested_datetime", "yesterday", "invalid_date"),
        ("requested_datetime", "", "missing_field"),
        ("service_request_id", "", "missing_field"),
        ("service_request_id", "x" * 201, "invalid_field"),
        ("status", None, "missing_field"),
    ],
)
def test_bad_fields(field: str, value: object, reason: str) -> None:
    result = parse_record({**GOOD, "status": "closed", field: value}, source="t")
    assert isinstance(result, Rejected), result
    assert result.reason.value == reason
    assert field.split("_")[0] in result.detail or "id" in result.detail


@pytest.mark.parametrize(
    ("field", "value", "anomaly"),
    [
        ("updated_datetime", "9999-12-31T00:00:00Z", "updated_datetime:placeholder"),
        ("expected_datetime", "31/12/2024 10:00", "expected_datetime:unparseable"),
        ("closed_datetime", "1900-01-01T00:00:00Z", "closed_datetime:placeholder"),
        ("closed_datetime", "2024-04-01T00:00:00Z", "closed_datetime:before_requested"),
    ],
)
def test_bad_optional_dates_keep_the_request_with_an_anomaly(
    field: str, value: object, anomaly: str
) -> None:
    result = parse_record({**GOOD, "status": "closed", field: value}, source="t")
    assert isinstance(result, Accepted), result
    request = result.request
    assert request.anomalies == (anomaly,)
    assert request.requested_datetime == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    if anomaly.endswith("before_requested"):
        assert request.closed_datetime == request.requested_datetime, "closed when opened"
    else:
        assert getattr(request, field) is None, "the unusable date is dropped"


def test_huge_text_is_cut_and_huge_raw_is_bounded() -> None:
    huge = "pothole " * 200_000
    result = parse_record({**GOOD, "description": huge, "status_notes": huge}, source="t")
    assert isinstance(result, Accepted)
    assert result.request.description is not None
    assert len(result.request.description) <= MAX_TEXT
    assert result.request.description.endswith("[truncated]")
    rejected = parse_record({**GOOD, "lat": None, "description": huge}, source="t")
    assert isinstance(rejected, Rejected) and len(rejected.raw) <= MAX_RAW + 20
    long_url = parse_record({**GOOD, "media_url": "http://x/" + "a" * 5000}, source="t")
    assert isinstance(long_url, Accepted) and long_url.request.media_url is None


def test_push_record_without_personal_data() -> None:
    record = {
        **GOOD,
        "email": "a@b.c",
        "first_name": "Ann",
        "phone": "555",
        "address_string": "1 Main St",
    }
    result = parse_record(record, source="push")
    assert isinstance(result, Accepted)
    assert result.request.address == "1 Main St"
    assert (
        "Ann" not in result.request.model_dump_json()
        and "a@b.c" not in result.request.model_dump_json()
    )


def test_broken_files(tmp_path: Path) -> None:
    jsonl = tmp_path / "feed.jsonl"
    row = {
        "case_enquiry_id": 1,
        "open_dt": "2022-01-01 10:00:00",
        "latitude": 42.35,
        "longitude": -71.06,
    }
    jsonl.write_bytes(
        json.dumps(row).encode() + b"\n{broken\n\n[1, 2]\n" + b'{"case_enquiry_id": "\xff"}\n'
    )
    results = list(read_records(jsonl))
    assert [
        (where, r.reason.value if isinstance(r, Rejected) else "row") for where, r in results
    ] == [
        ("feed.jsonl:line 1", "row"),
        ("feed.jsonl:line 2", "invalid_json"),
        ("feed.jsonl:line 4", "unexpected_shape"),
        ("feed.jsonl:line 5", "encoding_error"),
    ]
    csv_file = tmp_path / "feed.csv"
    csv_file.write_text(
        "case_enquiry_id,open_dt,latitude,longitude\n"
        "1,2022-01-01 10:00:00,42.35,-71.06\n"
        "2,2022-01-01 10:00:00,42.35\n"
        '3,2022-01-01 10:00:00,42.35,-71.06,"extra"\n'
        "4,2022-01-01 10:00:00,42.35,-71.06\n"
        f'5,"{"x" * 200_000}",42.35,-71.06\n'
        "6,2022-01-01 10:00:00,42.3",
        encoding="utf-8",
    )
    reasons = [
        (where, r.reason.value if isinstance(r, Rejected) else "row")
        for where, r in read_records(csv_file)
    ]
    assert reasons == [
        ("feed.csv:row 1", "row"),
        ("feed.csv:row 2", "invalid_csv"),
        ("feed.csv:row 3", "invalid_csv"),
        ("feed.csv:row 4", "row"),
        ("feed.csv:row 5", "invalid_csv"),
        ("feed.csv:row 6", "invalid_csv"),
    ]
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        b"case_enquiry_id,open_dt,latitude,longitude\n"
        b"1,2022-01-01 10:00:00,42.35,-71.06\n"
        b"2 caf\xe9,2022-01-01 10:00:00,42.35,-71.06\n"
    )
    latin1_rows = [r for _, r in read_records(latin1)]
    assert isinstance(latin1_rows[0], dict) and isinstance(latin1_rows[1], Rejected)
    assert latin1_rows[1].reason.value == "encoding_error" and "caf" in latin1_rows[1].raw
    not_utf8_json = tmp_path / "latin1.json"
    not_utf8_json.write_bytes(b'[{"a": "caf\xe9"}]')
    assert [r.reason.value for _, r in read_records(not_utf8_json) if isinstance(r, Rejected)] == [
        "encoding_error"
    ]
    broken_json = tmp_path / "feed.json"
    broken_json.write_text('[{"a": 1}, {"a": ', encoding="utf-8")
    assert [r.reason.value for _, r in read_records(broken_json) if isinstance(r, Rejected)] == [
        "invalid_json"
    ]


def test_profile_row_problems() -> None:
    boston = get_profile("boston")
    base = {
        "case_enquiry_id": "9",
        "open_dt": "2022-01-01 10:00:00",
        "latitude": "42.35",
        "longitude": "-71.06",
    }
    assert isinstance(parse_row(base, boston), Accepted)
    cases = {
        "missing_coordinates": {**base, "latitude": " "},
        "invalid_coordinates": {**base, "latitude": "420"},
        "invalid_date": {**base, "open_dt": "9999-12-31 00:00:00"},
        "missing_field": {**base, "open_dt": ""},
    }
    for reason, row in cases.items():
        result = parse_row(row, boston, "x.csv:row 3")
        assert isinstance(result, Rejected) and result.reason.value == reason
        assert result.location == "x.csv:row 3"
    closed_early = parse_row(
        {**base, "closed_dt": "2021-12-31 10:00:00", "case_status": "Closed"}, boston
    )
    assert isinstance(closed_early, Accepted), "a closure before the opening keeps the request"
    assert closed_early.request.anomalies == ("closed_datetime:before_requested",)
    unknown_id = parse_row({**base, "case_enquiry_id": None}, boston)
    assert isinstance(unknown_id, Rejected) and "case_enquiry_id" in unknown_id.detail


def test_namespaced_elements_read_like_plain_ones() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<m:service_requests xmlns:m="http://org/sfgov/sf311v2/services">
  <m:request>
    <m:service_request_id>7</m:service_request_id><m:status>open</m:status>
    <m:requested_datetime>2024-05-01T10:00:00Z</m:requested_datetime>
    <m:lat>37.76</m:lat><m:long>-122.42</m:long>
  </m:request>
</m:service_requests>"""
    (result,) = parse_requests(body, source="sf", fmt="xml")
    assert isinstance(result, Accepted) and result.request.service_request_id == "sf:7"
    services = parse_services(
        b'<s:services xmlns:s="urn:x"><s:service><s:service_code>9</s:service_code>'
        b"<s:service_name>Graffiti</s:service_name></s:service></s:services>",
        fmt="xml",
    )
    assert [(s.service_code, s.service_name) for s in services] == [("9", "Graffiti")]
