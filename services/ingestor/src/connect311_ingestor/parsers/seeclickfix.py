"""SeeClickFix API v2 issues pages (`GET /api/v2/issues`, optionally `details=true`).

Accepted envelopes: the real one `{"metadata": {"pagination": {...}}, "issues": [...]}` and
the documentation's `{"metadata", "result", "errors"}` (`result` a list or one issue).

Mapping to the canonical request:
- status Open -> open, Acknowledged -> acknowledged, Closed and Archived -> closed.
- request_type.id -> service_code, request_type.title -> service_name (else the summary),
  request_type.organization -> agency_responsible.
- description (else summary), address, lat/lng, created_at/updated_at/closed_at.
- media.image_full -> media_url (the docs' literal string "null" counts as absent).
- comments (details=true) -> status_notes: the text of the latest comment, and every
  comment as a Note (text and created_at) so each becomes its own timeline entry
  (`connect311_ingestor.notes`). Commenter and reporter names, avatars and ids are never
  read (no reporter personal data).
- updated_at/closed_at that are not usable dates are dropped and noted in `anomalies`.
- closed reason: from the latest comment when it says duplicate, cancelled or referred.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.coordinates import coordinates
from connect311_ingestor.parsers.dates import optional_datetime, parse_datetime
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.normalize import Draft, finish, record_location, rejected
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.parsers.statuses import closed_reason_for, map_status
from connect311_ingestor.parsers.text import as_id, clean_text, clean_url, present
from connect311_ingestor.records import Accepted, Note, ParseResult, Rejected
from connect311_ingestor.scrub import SEECLICKFIX_ISSUE


@dataclass(frozen=True)
class IssuesPage:
    """One page of issues and where the next page is (None on the last page)."""

    results: list[ParseResult]
    next_page_url: str | None
    page: int | None
    pages: int | None


def _value(value: Any) -> Any:
    """The docs write JSON null as the string "null"; treat it as absent."""
    return None if isinstance(value, str) and value.strip().lower() in {"", "null"} else value


def _int(value: Any) -> int | None:
    value = _value(value)
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _latest_comment(issue: Mapping[str, Any]) -> str | None:
    comments = issue.get("comments")
    if not isinstance(comments, list):
        return None
    texts = [
        (str(c.get("created_at") or ""), i, c.get("comment"))
        for i, c in enumerate(comments)
        if isinstance(c, Mapping) and present(c.get("comment"))
    ]
    return clean_text(max(texts)[2]) if texts else None  # latest created_at, then list order


def _notes(issue: Mapping[str, Any], fallback: datetime) -> tuple[Note, ...]:
    """Every comment with text, with its time (`fallback` when it has no usable one)."""
    comments = issue.get("comments")
    if not isinstance(comments, list):
        return ()
    notes: list[Note] = []
    for comment in comments:
        if not isinstance(comment, Mapping):
            continue
        text = clean_text(comment.get("comment"))
        if text is None:
            continue
        try:
            at = parse_datetime(comment.get("created_at"), field_name="comment created_at")
        except RecordError:
            at = None
        notes.append(Note(at or fallback, text))
    return tuple(notes)


def _build_issue(issue: Mapping[str, Any], source: str, dataset: str) -> Draft:
    issue_id = as_id(issue.get("id"), "issue id")
    lat, long = coordinates(issue.get("lat"), issue.get("lng"), names=("lat", "lng"))
    created = parse_datetime(issue.get("created_at"), field_name="created_at")
    if created is None:
        raise RecordError(RejectReason.MISSING_FIELD, "no created_at: when was it reported?")
    if not present(issue.get("status")):
        raise RecordError(
            RejectReason.MISSING_FIELD, "no status (Open/Acknowledged/Closed/Archived)."
        )
    anomalies: list[str] = []

    def optional(name: str, canonical: str) -> datetime | None:
        value = _value(issue.get(name))
        return optional_datetime(value, field_name=name, canonical=canonical, anomalies=anomalies)

    closed_at = optional("closed_at", "closed_datetime")
    mapping = map_status(issue.get("status"), has_closed_date=closed_at is not None)
    notes = _latest_comment(issue)
    request_type = issue.get("request_type")
    kind = request_type if isinstance(request_type, Mapping) else {}
    media = issue.get("media")
    return Draft(
        source=source,
        source_request_id=issue_id,
        dataset=dataset,
        raw_status=str(issue.get("status")),
        status=mapping.status,
        closed_reason=closed_reason_for(mapping, notes),
        lat=lat,
        long=long,
        requested_datetime=created,
        updated_datetime=optional("updated_at", "updated_datetime"),
        closed_datetime=closed_at,
        anomalies=anomalies,
        media_url=clean_url(
            _value(media.get("image_full")) if isinstance(media, Mapping) else None
        ),
        texts={
            "service_code": _value(kind.get("id")),
            "service_name": _value(kind.get("title")) or issue.get("summary"),
            "agency_responsible": _value(kind.get("organization")),
            "status_notes": notes,
            "description": issue.get("description") or issue.get("summary"),
            "address": issue.get("address"),
        },
    )


def parse_issue(
    issue: Any, *, source: str, dataset: str = "311", location: str | None = None
) -> ParseResult:
    """One SeeClickFix issue object as an Accepted request or a reasoned Rejected."""
    if not isinstance(issue, Mapping):
        return Rejected(
            RejectReason.UNEXPECTED_SHAPE,
            f"an issue must be an object, not a {type(issue).__name__}.",
            raw_text(issue),
            location,
        )
    try:
        request = finish(_build_issue(issue, source, dataset))
        when = request.updated_datetime or request.requested_datetime
        return Accepted(request, location, _notes(issue, when))
    except RecordError as error:
        return rejected(error, issue, location, SEECLICKFIX_ISSUE)


def _issues(data: Any) -> list[Any]:
    if not isinstance(data, Mapping):
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE,
            f"the page is a JSON {type(data).__name__}, not an object with issues.",
        )
    for key in ("issues", "result"):
        found = data.get(key)
        if isinstance(found, list):
            return found
        if isinstance(found, Mapping):
            return [found]
    errors = data.get("errors")
    if errors:
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE, f"SeeClickFix answered with errors: {errors}."
        )
    raise RecordError(
        RejectReason.UNEXPECTED_SHAPE,
        "the page has neither 'issues' nor 'result': not a SeeClickFix issues page.",
    )


def parse_issues_page(
    body: bytes, *, source: str, dataset: str = "311", location: str | None = None
) -> IssuesPage:
    """Every issue of one page plus the pagination; one Rejected if the page is unusable."""
    try:
        data = json.loads(body)
        issues = _issues(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = f"the page is not valid JSON ({exc})."
        reason = RejectReason.INVALID_JSON
        if isinstance(exc, UnicodeDecodeError):
            reason, detail = (
                RejectReason.ENCODING_ERROR,
                f"the page is not UTF-8 text ({exc.reason}).",
            )
        return IssuesPage([Rejected(reason, detail, raw_text(body), location)], None, None, None)
    except RecordError as error:
        return IssuesPage([rejected(error, body, location)], None, None, None)
    metadata = data.get("metadata")
    pagination = metadata.get("pagination") if isinstance(metadata, Mapping) else None
    pagination = pagination if isinstance(pagination, Mapping) else {}
    next_url = _value(pagination.get("next_page_url"))
    return IssuesPage(
        results=[
            parse_issue(
                issue,
                source=source,
                dataset=dataset,
                location=record_location(location, i, "issue"),
            )
            for i, issue in enumerate(issues)
        ],
        next_page_url=str(next_url) if next_url else None,
        page=_int(pagination.get("page")),
        pages=_int(pagination.get("pages")),
    )
