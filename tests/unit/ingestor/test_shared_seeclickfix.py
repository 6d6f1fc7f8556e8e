"""The SeeClickFix pages in ../shared/data: a real issues page and the v2 docs' examples."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from connect311_contracts.request import RequestStatus
from connect311_ingestor.parsers.seeclickfix import parse_issues_page
from connect311_ingestor.records import Accepted, Rejected


def test_every_seeclickfix_file_is_covered(shared_data: Path) -> None:
    names = {p.name for p in (shared_data / "seeclickfix").iterdir()}
    assert names == {"koop_dc_issues_list_page1.json", "devdocs_v2_examples.json"}


def test_real_issues_page(shared_data: Path) -> None:
    body = (shared_data / "seeclickfix/koop_dc_issues_list_page1.json").read_bytes()
    page = parse_issues_page(body, source="scf-dc", location="page 1")
    # 20 issues, all with coordinates and dates: 16 Open, 3 Acknowledged, 1 Closed
    assert len(page.results) == 20 and all(isinstance(r, Accepted) for r in page.results)
    requests = [r.request for r in page.results if isinstance(r, Accepted)]
    assert Counter(r.status for r in requests) == {
        RequestStatus.OPEN: 16,
        RequestStatus.ACKNOWLEDGED: 3,
        RequestStatus.CLOSED: 1,
    }
    assert page.next_page_url == (
        "https://test.seeclickfix.com/api/v2/issues?page=2&place_url=district-of-columbia"
    )
    assert (page.page, page.pages) == (1, 470)
    closed = next(r for r in requests if r.status is RequestStatus.CLOSED)
    assert closed.service_request_id == "scf-dc:1313927"
    assert closed.closed_datetime == datetime(2014, 12, 8, 14, 16, 19, tzinfo=UTC)
    assert (closed.service_code, closed.service_name) == ("530", "Sanitation Enforcement")
    untyped = next(r for r in requests if r.source_request_id == "1315244")  # request_type {}
    assert untyped.service_code is None and untyped.service_name == "New tree at xyz."
    dumped = json.dumps([r.model_dump(mode="json") for r in requests])
    assert '"Tim"' not in dumped and "civic_points" not in dumped  # no reporter data


def docs_page(examples: dict, envelope_key: str = "result") -> bytes:
    issues = [examples[k] for k in ("ISSUE", "ISSUE_DETAILS", "ISSUE_NO_MEDIA", "ISSUE_COMMON")]
    return json.dumps(
        {"metadata": examples["PAGINATION_METADATA"], envelope_key: issues, "errors": {}}
    ).encode()


def test_docs_envelope_and_details_comments(shared_data: Path) -> None:
    examples = json.loads((shared_data / "seeclickfix/devdocs_v2_examples.json").read_bytes())
    page = parse_issues_page(docs_page(examples), source="scf")
    # the four issue examples of the docs, all usable
    assert [type(r) for r in page.results] == [Accepted] * 4
    assert (page.page, page.pages) == (1, 40457)
    assert page.next_page_url is not None and page.next_page_url.endswith("?page=2")
    issue, details, no_media, common = (r.request for r in page.results if isinstance(r, Accepted))
    assert details.status_notes == "Me too"  # latest comment, commenter name dropped
    assert "Jeffb" not in details.model_dump_json()
    assert issue.media_url is not None and issue.media_url.endswith(".jpeg")
    assert no_media.media_url is None and common.media_url is None
    assert issue.requested_datetime == datetime(2011, 4, 22, 13, 33, 48, tzinfo=UTC)
    same_in_real_envelope = parse_issues_page(docs_page(examples, "issues"), source="scf")
    assert [r.request for r in same_in_real_envelope.results if isinstance(r, Accepted)] == [
        issue,
        details,
        no_media,
        common,
    ]


def test_docs_comment_examples_give_the_latest_note_and_status(shared_data: Path) -> None:
    examples = json.loads((shared_data / "seeclickfix/devdocs_v2_examples.json").read_bytes())
    issue = dict(examples["ISSUE"])
    issue["comments"] = [
        examples["ISSUE_CLOSED"],
        examples["ISSUE_OPENED"],
        examples["ISSUE_ACKNOWLEDGED"],
    ]
    issue["status"] = "Archived"
    issue["closed_at"] = "2015-02-12T10:26:59-05:00"
    issue["request_type"] = {"id": 121, **examples["REQUEST_TYPE_121"]}
    page = parse_issues_page(json.dumps({"issues": [issue]}).encode(), source="scf")
    (result,) = page.results
    assert isinstance(result, Accepted)
    request = result.request
    assert request.status is RequestStatus.CLOSED and request.raw_status == "Archived"
    assert request.status_notes == "a closing comment"  # created 10:26:59, the latest
    assert request.agency_responsible == "City of SeeClickFix"
    assert (request.service_code, request.service_name) == ("121", "Abandoned Auto")
    assert page.next_page_url is None and page.page is None


def test_unusable_pages_are_one_rejection() -> None:
    truncated = parse_issues_page(b'{"issues": [{"id": 1, "lat": 4', source="scf", location="p1")
    assert [(r.reason.value, r.location) for r in truncated.results if isinstance(r, Rejected)] == [
        ("invalid_json", "p1")
    ]
    errors = parse_issues_page(b'{"errors": {"place_url": ["is invalid"]}}', source="scf")
    (only,) = errors.results
    assert isinstance(only, Rejected) and only.reason.value == "unexpected_shape"
    assert "is invalid" in only.detail
