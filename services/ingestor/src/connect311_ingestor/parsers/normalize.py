"""The last step of every parser: a normalized draft becomes the contract request.

Each value is normalized by its own module, each failure raising `RecordError` (`errors`)
with a reason and a sentence for the operator: `dates`, `statuses`, `coordinates`, `text`;
`redact` keeps reporter personal data out of rejects. `finish` then checks the whole request
against the contract. A closure before the opening (date-only closure fields, stamped at
midnight, are common) is moved to the opening time and noted as
'closed_datetime:before_requested'. Each anomaly kind is counted (`ingestor_data_anomalies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import (
    ClosedReason,
    RequestStatus,
    ServiceRequest,
    scoped_request_id,
)
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.parsers.text import TEXT_LIMITS, clean_text
from connect311_ingestor.records import Rejected
from connect311_ingestor.scrub import AllowList, scrubbed_json

__all__ = ["Draft", "finish", "record_location", "rejected"]


@dataclass
class Draft:
    """A request's values after per-field normalization, before the contract checks."""

    source: str
    source_request_id: str
    dataset: str
    raw_status: str
    status: RequestStatus
    lat: float
    long: float
    requested_datetime: datetime
    closed_reason: ClosedReason | None = None
    updated_datetime: datetime | None = None
    closed_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    texts: dict[str, Any] = field(default_factory=dict)
    media_url: str | None = None
    anomalies: list[str] = field(default_factory=list)


def finish(draft: Draft) -> ServiceRequest:
    """The contract request for a draft; RecordError for inconsistent or invalid values."""
    is_closed = draft.status is RequestStatus.CLOSED
    closed = draft.closed_datetime if is_closed else None
    anomalies = list(draft.anomalies)
    if closed is not None and closed < draft.requested_datetime:
        # Usually a date-only closure (midnight) on the day it was opened: the request is
        # real, so keep it, closed no earlier than it was opened, and say so.
        closed = draft.requested_datetime
        anomalies.append("closed_datetime:before_requested")
    texts = {name: clean_text(draft.texts.get(name), TEXT_LIMITS[name]) for name in TEXT_LIMITS}
    texts.pop("raw_status")
    try:
        return ServiceRequest(
            service_request_id=scoped_request_id(draft.source, draft.source_request_id),
            source=draft.source,
            source_request_id=draft.source_request_id,
            dataset=draft.dataset,
            status=draft.status,
            raw_status=clean_text(draft.raw_status, TEXT_LIMITS["raw_status"]) or "",
            closed_reason=draft.closed_reason if is_closed else None,
            lat=draft.lat,
            long=draft.long,
            requested_datetime=draft.requested_datetime,
            updated_datetime=draft.updated_datetime,
            closed_datetime=closed,
            expected_datetime=draft.expected_datetime,
            media_url=draft.media_url,
            anomalies=tuple(dict.fromkeys(anomalies)),
            **texts,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors()[:3]
        )
        raise RecordError(RejectReason.INVALID_FIELD, f"invalid value: {problems}.") from None


def rejected(
    error: RecordError, raw: Any, location: str | None, allow: AllowList | None = None
) -> Rejected:
    """The Rejected result for a RecordError on a raw record.

    With `allow` (the source type's allow-list) the parsed record itself is carried and only
    its allow-listed fields reach the rejects topic (see `scrub`); without, its text is masked.
    """
    if allow is not None:
        text = scrubbed_json(raw, allow)
        return Rejected(error.reason, error.detail, text, location, record=raw, allow=allow)
    return Rejected(error.reason, error.detail, raw_text(raw), location)


def record_location(location: str | None, index: int, unit: str = "record") -> str:
    """Where a record sits in a document: 'file.xml, record 3' (1-based)."""
    where = f"{unit} {index + 1}"
    return f"{location}, {where}" if location else where
