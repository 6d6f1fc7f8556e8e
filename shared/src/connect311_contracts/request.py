"""The canonical service request: one shape for every city feed (Open311 field names)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_ANOMALIES",
    "MAX_TEXT",
    "Anomaly",
    "ClosedReason",
    "Latitude",
    "Longitude",
    "RequestStatus",
    "ServiceRequest",
    "UtcDatetime",
    "scoped_request_id",
]


class RequestStatus(StrEnum):
    """Normalized lifecycle status; the source's own word is kept in `raw_status`."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class ClosedReason(StrEnum):
    """Why a closed request was closed, when the source says."""

    FIXED = "fixed"
    DUPLICATE = "duplicate"
    CANCELLED = "cancelled"
    REFERRED = "referred"


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]
"""A timezone-aware datetime, normalized to UTC."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("coordinate must be a finite number")
    return value


Latitude = Annotated[float, AfterValidator(_finite), Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, AfterValidator(_finite), Field(ge=-180.0, le=180.0)]

MAX_TEXT = 10_000
"""Longest free text kept from a feed; longer text is cut (feeds are untrusted)."""

MAX_ANOMALIES = 20
"""Most data-quality notes one snapshot carries (one per field and kind is plenty)."""

Anomaly = Annotated[str, Field(min_length=1, max_length=80)]
"""A data-quality note, '<field>:<kind>' (e.g. 'closed_datetime:before_requested')."""


class ServiceRequest(BaseModel):
    """A snapshot of one service request, as the city last described it.

    `service_request_id` is source-scoped ("<source>:<id in the source>") so two feeds never
    collide. No reporter personal data (name, email, phone) is ever carried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    service_request_id: str = Field(min_length=3, max_length=300)
    source: str = Field(min_length=1, max_length=100, description="Feed that reported it")
    source_request_id: str = Field(min_length=1, max_length=200)
    dataset: str = Field(default="311", min_length=1, max_length=60)
    service_code: str | None = Field(default=None, max_length=200)
    service_name: str | None = Field(default=None, max_length=300)
    agency_responsible: str | None = Field(default=None, max_length=300)
    status: RequestStatus
    raw_status: str = Field(max_length=200)
    closed_reason: ClosedReason | None = None
    status_notes: str | None = Field(default=None, max_length=MAX_TEXT)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    address: str | None = Field(default=None, max_length=500)
    zipcode: str | None = Field(default=None, max_length=20)
    lat: Latitude
    long: Longitude
    requested_datetime: UtcDatetime
    updated_datetime: UtcDatetime | None = None
    closed_datetime: UtcDatetime | None = None
    expected_datetime: UtcDatetime | None = None
    media_url: str | None = Field(default=None, max_length=2000)
    # Optional with a default: events written before it existed still read, and a clean
    # record carries (). The ingestor's docs/feeds.md lists the kinds.
    anomalies: tuple[Anomaly, ...] = Field(
        default=(),
        max_length=MAX_ANOMALIES,
        description="Data-quality problems the source had that the ingestor corrected or "
        "dropped instead of rejecting the request",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServiceRequest:
        if self.service_request_id != scoped_request_id(self.source, self.source_request_id):
            raise ValueError("service_request_id must be '<source>:<source_request_id>'")
        if self.closed_datetime is not None and self.closed_datetime < self.requested_datetime:
            raise ValueError("closed_datetime is before requested_datetime")
        if self.status is not RequestStatus.CLOSED and self.closed_reason is not None:
            raise ValueError("closed_reason is only meaningful for a closed request")
        return self


def scoped_request_id(source: str, source_request_id: str) -> str:
    """The system-wide id of a request: its source and the source's own id."""
    return f"{source}:{source_request_id}"
