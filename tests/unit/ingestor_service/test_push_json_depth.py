"""Deeply nested JSON on the push endpoint: a counted 400, never a 500 (issue 12)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.json_depth import MAX_JSON_DEPTH, json_depth
from connect311_ingestor.records import ParseResult, Rejected
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.web import create_app

AUTH = {"Authorization": "Bearer push-token", "Content-Type": "application/json"}


class RecordingIngestor:
    """Stands in for the pipeline: records what the endpoint hands it."""

    def __init__(self) -> None:
        self.batches: list[list[ParseResult]] = []

    async def ingest(
        self, results: Sequence[ParseResult], *, source: str
    ) -> tuple[None, list[Any]]:
        self.batches.append(list(results))
        return None, []


async def _health() -> dict[str, str]:
    return {"broker": "ok"}


async def _push(body: bytes) -> tuple[httpx.Response, RecordingIngestor]:
    ingestor = RecordingIngestor()
    settings = IngestorSettings(push_tokens="push-token")  # type: ignore[arg-type]
    app = create_app(ingestor, settings, _health)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)  # raises what the app raises: a 500 fails here
    async with httpx.AsyncClient(transport=transport, base_url="http://ingestor") as http:
        return await http.post("/api/v1/requests", content=body, headers=AUTH), ingestor


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
async def test_deeply_nested_push_is_a_counted_400(opening: bytes) -> None:
    closing = b"]" if opening == b"[" else b"}"
    response, ingestor = await _push(opening * 100_000 + b"1" + closing * 100_000)
    assert response.status_code == 400  # was 500 (RecursionError in the JSON parser)
    assert response.json()["reason"] == "invalid_json"
    assert f"at most {MAX_JSON_DEPTH}" in response.json()["detail"]
    ((reject,),) = ingestor.batches  # counted as a reject, like any other bad body
    assert isinstance(reject, Rejected) and reject.reason is RejectReason.INVALID_JSON


async def test_nesting_up_to_the_limit_is_parsed() -> None:
    record = {"service_request_id": "1", "attributes": {"x": [[[1]]]}}
    response, ingestor = await _push(json.dumps([record]).encode())
    assert response.status_code == 200
    assert len(ingestor.batches[0]) == 1


def test_brackets_inside_strings_do_not_count() -> None:
    text = {"a": "[[[[{{{{", "b": ["\\", {"c": '"]]]'}], "d": '\\\\"[['}
    assert json_depth(json.dumps(text).encode()) == 3
    assert json_depth(b'"[[[["') == 0 and json_depth(b"1") == 0


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k[": value, "s": '"{'}
    return value


@given(
    depth=st.integers(min_value=0, max_value=200),
    leaf=st.text() | st.integers() | st.none(),
    siblings=st.lists(st.text(), max_size=3),
)
@settings(max_examples=200, deadline=None)
def test_depth_matches_the_structure(depth: int, leaf: Any, siblings: list[str]) -> None:
    document = [_nested(depth, leaf), *siblings]
    assert json_depth(json.dumps(document).encode()) == depth + 1
    assert json_depth(json.dumps(document, ensure_ascii=False).encode()) == depth + 1
