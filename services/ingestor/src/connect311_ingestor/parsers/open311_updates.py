"""Open311 GeoReport v2 request updates (`servicerequestupdates`, JSON and XML).

Both roots seen in the wild, `service_requests_updates` (GET) and `service_request_updates`
(POST responses, open311-adapter), are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ClosedReason, RequestStatus, scoped_request_id
from connect311_ingestor.parsers.dates import parse_datetime
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.normalize import record_location, rejected
from connect311_ingestor.parsers.open311_document import (
    FeedError,
    Format,
    document_records,
    document_reject,
    first_url,
)
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.parsers.statuses import closed_reason_for, map_status
from connect311_ingestor.parsers.text import as_id, clean_text, clean_url, present
from connect311_ingestor.records import Rejected
from connect311_ingestor.scrub import OPEN311_UPDATE

__all__ = ["RequestUpdate", "parse_updates"]

_UPDATE_FIELDS = ("service_request_id", "status", "updated_datetime", "description")


@dataclass(frozen=True)
class RequestUpdate:
    """One GeoReport `servicerequestupdates` entry (a status change of a known request)."""

    update_id: str
    service_request_id: str
    status: RequestStatus
    raw_status: str
    closed_reason: ClosedReason | None
    updated_datetime: datetime
    description: str | None
    media_url: str | None
    external_status_code: str | None


def _build_update(record: Mapping[str, Any], source: str) -> RequestUpdate:
    if not any(present(record.get(f)) for f in _UPDATE_FIELDS):
        keys = ", ".join(sorted(str(k) for k in record)) or "nothing"
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE,
            f"the entry carries no update fields (only {keys}): a POST response, not an update.",
        )
    update_id = as_id(record.get("update_id"), "update_id")
    request_id = as_id(record.get("service_request_id"), "service_request_id")
    if not present(record.get("status")):
        raise RecordError(RejectReason.MISSING_FIELD, "no status in the update.")
    updated = parse_datetime(record.get("updated_datetime"), field_name="updated_datetime")
    if updated is None:
        raise RecordError(RejectReason.MISSING_FIELD, "no updated_datetime: when did it change?")
    mapping = map_status(record.get("status"))
    description = clean_text(record.get("description"))
    return RequestUpdate(
        update_id=update_id,
        service_request_id=scoped_request_id(source, request_id),
        status=mapping.status,
        raw_status=clean_text(record.get("status"), 200) or "",
        closed_reason=closed_reason_for(mapping, description),
        updated_datetime=updated,
        description=description,
        media_url=clean_url(first_url(record.get("media_url"))),
        external_status_code=clean_text(record.get("external_status_code"), 200),
    )


def parse_updates(
    body: bytes, *, source: str, fmt: Format, location: str | None = None
) -> list[RequestUpdate | Rejected]:
    """Every entry of a servicerequestupdates response (either root name seen in the wild)."""
    roots = ("service_requests_updates", "service_request_updates")
    try:
        records = document_records(body, fmt, roots, "request_update")
    except FeedError as error:
        return [document_reject(error, body, location)]
    results: list[RequestUpdate | Rejected] = []
    for i, record in enumerate(records):
        where = record_location(location, i, "update")
        if not isinstance(record, Mapping):
            results.append(
                Rejected(
                    RejectReason.UNEXPECTED_SHAPE,
                    "an update must be an object.",
                    raw_text(record),
                    where,
                )
            )
            continue
        try:
            results.append(_build_update(record, source))
        except RecordError as error:
            results.append(rejected(error, record, where, OPEN311_UPDATE))
    return results
