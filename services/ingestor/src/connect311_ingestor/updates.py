"""Applying an Open311 request update to the stored snapshot (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from connect311_contracts.rejects import RejectReason, clip
from connect311_contracts.request import ClosedReason, RequestStatus, ServiceRequest
from connect311_ingestor.records import Accepted, ParseResult, Rejected


class UpdateLike(Protocol):
    """The fields of an Open311 `servicerequestupdates` entry that change a request."""

    @property
    def update_id(self) -> str: ...
    @property
    def service_request_id(self) -> str: ...
    @property
    def status(self) -> RequestStatus: ...
    @property
    def raw_status(self) -> str: ...
    @property
    def closed_reason(self) -> ClosedReason | None: ...
    @property
    def updated_datetime(self) -> datetime: ...
    @property
    def description(self) -> str | None: ...
    @property
    def media_url(self) -> str | None: ...


def apply_update(
    snapshot: ServiceRequest, update: UpdateLike, location: str | None = None
) -> ParseResult:
    """The snapshot as the update describes it, or a reasoned rejection if inconsistent."""
    closed = update.status is RequestStatus.CLOSED
    data = snapshot.model_dump()
    data.update(
        status=update.status,
        raw_status=update.raw_status,
        closed_reason=update.closed_reason if closed else None,
        updated_datetime=update.updated_datetime,
    )
    if update.description:
        data["status_notes"] = update.description
    if update.media_url:
        data["media_url"] = update.media_url
    if not closed:
        data["closed_datetime"] = None
    elif snapshot.status is not RequestStatus.CLOSED or snapshot.closed_datetime is None:
        data["closed_datetime"] = update.updated_datetime
        if update.updated_datetime < snapshot.requested_datetime:
            # Same rule as for records (normalize.finish): keep it, closed when opened.
            data["closed_datetime"] = snapshot.requested_datetime
            data["anomalies"] = tuple(
                dict.fromkeys((*snapshot.anomalies, "closed_datetime:before_requested"))
            )
    try:
        return Accepted(ServiceRequest.model_validate(data), location)
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = (
            RejectReason.CLOSED_BEFORE_OPENED
            if "before requested" in str(first.get("msg"))
            else RejectReason.INVALID_FIELD
        )
        return Rejected(
            reason,
            f"update {update.update_id}: {first.get('msg')}",
            clip(repr(update)),
            location,
        )
