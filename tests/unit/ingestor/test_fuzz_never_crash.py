"""Whatever a feed sends, the parsers answer with results, never an exception."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_ingestor.parsers.open311 import parse_record, parse_requests
from connect311_ingestor.parsers.open311_updates import parse_updates
from connect311_ingestor.parsers.profiles import BUILTIN_PROFILES
from connect311_ingestor.parsers.seeclickfix import parse_issues_page
from connect311_ingestor.parsers.tabular import parse_row
from connect311_ingestor.records import Accepted, Rejected

relaxed = settings(deadline=None, max_examples=150)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["open", "closed", "2024-05-01T10:00:00Z", "40.7", "-74.0", "0", "9999-01-01"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
OPEN311_KEYS = ["service_request_id", "status", "requested_datetime", "updated_datetime",
                "closed_datetime", "lat", "long", "media_url", "status_notes", "non_public",
                "service_code", "description", "zipcode"]  # fmt: skip
open311_records = st.dictionaries(st.sampled_from(OPEN311_KEYS) | st.text(max_size=6), json_values)


@relaxed
@given(record=open311_records)
def test_any_open311_record_gets_an_answer(record: dict) -> None:
    result = parse_record(record, source="fuzz")
    assert isinstance(result, (Accepted, Rejected))
    if isinstance(result, Rejected):
        assert result.detail


@relaxed
@given(records=st.lists(open311_records, max_size=4))
def test_any_open311_document_gets_an_answer(records: list) -> None:
    body = json.dumps(records, default=str).encode()
    results = parse_requests(body, source="fuzz", fmt="json")
    # one result per record, or one rejection for the whole document (an error document)
    assert len(results) == len(records) or (len(results) == 1 and isinstance(results[0], Rejected))
    assert all(isinstance(r, (Accepted, Rejected)) for r in results)


@relaxed
@given(body=st.binary(max_size=200))
def test_any_bytes_get_an_answer(body: bytes) -> None:
    for fmt in ("json", "xml"):
        assert isinstance(parse_requests(body, source="fuzz", fmt=fmt), list)  # type: ignore[arg-type]
        assert isinstance(parse_updates(body, source="fuzz", fmt=fmt), list)  # type: ignore[arg-type]
    assert isinstance(parse_issues_page(body, source="fuzz").results, list)


@relaxed
@given(
    profile=st.sampled_from(sorted(BUILTIN_PROFILES)),
    values=st.lists(
        st.one_of(st.none(), st.text(max_size=25), st.integers()), min_size=40, max_size=40
    ),
)
def test_any_export_row_gets_an_answer(profile: str, values: list) -> None:
    chosen = BUILTIN_PROFILES[profile]
    columns = [c for spec in chosen.columns.model_dump().values() if spec
               for c in ([spec] if isinstance(spec, str) else spec)]  # fmt: skip
    row = dict(zip(columns, values, strict=False))
    assert isinstance(parse_row(row, chosen, "fuzz.csv:row 1"), (Accepted, Rejected))
