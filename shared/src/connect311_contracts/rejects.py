"""Records and messages that could not be used, kept where an operator can see them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from connect311_contracts.envelope import Envelope

__all__ = ["MAX_RAW", "MessageDeadLettered", "RecordRejected", "RejectReason", "clip"]

MAX_RAW = 20_000
"""Longest raw payload kept in a reject or dead letter; the rest is cut."""


class RejectReason(StrEnum):
    """Why a feed record was not turned into a request event (counted per reason)."""

    MISSING_COORDINATES = "missing_coordinates"
    INVALID_COORDINATES = "invalid_coordinates"
    OUTSIDE_BOUNDS = "outside_bounds"
    """A real point, but outside the deployment's area (a profile's `bounds`)."""
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_DATE = "invalid_date"
    CLOSED_BEFORE_OPENED = "closed_before_opened"
    INVALID_JSON = "invalid_json"
    INVALID_XML = "invalid_xml"
    UNSAFE_XML = "unsafe_xml"
    INVALID_CSV = "invalid_csv"
    ENCODING_ERROR = "encoding_error"
    TOO_LARGE = "too_large"
    UNEXPECTED_SHAPE = "unexpected_shape"


class RecordRejected(Envelope):
    """A feed record the ingestor could not use, with the reason and what of the input may
    be kept: `raw` is the allow-listed fields of the parsed record as JSON (free text only as
    its length), or an unparseable document with every unknown word masked. Never personal
    data; the ingestor publishes one per (source, record, content)."""

    event_type: Literal["record.rejected"] = "record.rejected"
    source: str
    reason: RejectReason
    detail: str = Field(max_length=2000)
    location: str | None = Field(default=None, description="File and row, or URL and page")
    raw: str = Field(max_length=MAX_RAW + 20)


class MessageDeadLettered(Envelope):
    """A Kafka message a service could not process; the partition moved on without it."""

    event_type: Literal["message.dead_lettered"] = "message.dead_lettered"
    service: str
    topic: str
    partition: int
    offset: int
    key: str | None = None
    reason: str = Field(max_length=2000)
    raw: str = Field(max_length=MAX_RAW + 20, description="Value as text (invalid UTF-8 replaced)")


def clip(text: str, limit: int = MAX_RAW) -> str:
    """Cut untrusted text to a bounded size, saying so."""
    return text if len(text) <= limit else text[:limit] + "…[truncated]"
