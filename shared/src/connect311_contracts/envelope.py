"""The envelope every event and command on Kafka carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connect311_contracts.request import UtcDatetime

__all__ = ["SCHEMA_VERSION", "Envelope", "new_event_id", "utc_now"]

SCHEMA_VERSION: Literal[1] = 1
"""The only message schema version this code reads and writes."""


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_event_id() -> str:
    """A fresh random event id."""
    return str(uuid.uuid4())


class Envelope(BaseModel):
    """Fields shared by every message: identity, type, schema version, time, trace."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=100)
    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="A future version is dead-lettered, not guessed at"
    )
    occurred_at: UtcDatetime = Field(default_factory=utc_now)
    trace_id: str | None = Field(
        default=None, max_length=100, description="Carried from ingest to email for tracing"
    )
