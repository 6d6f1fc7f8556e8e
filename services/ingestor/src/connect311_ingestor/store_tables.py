"""The ingestor's tables (SQLAlchemy Core): request fingerprints, source cursors and health,
reject counts and the rejects already counted, updates seen, recently published events, and
the overdue events published. `store.IngestorStore` reads and writes them."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

metadata = MetaData()


request_state = Table(
    "ingestor_request_state",
    metadata,
    Column("service_request_id", String(300), primary_key=True),
    Column("source", String(100), nullable=False, index=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)


source_cursor = Table(
    "ingestor_source_cursor",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)


source_health = Table(
    "ingestor_source_health",
    metadata,
    # What `connect311-ingestor sources` shows: when a feed was last polled and how it went.
    Column("source", String(100), primary_key=True),
    Column("last_poll_at", DateTime(timezone=True), nullable=False),
    Column("last_ok_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", DateTime(timezone=True), nullable=True),
)


reject_count = Table(
    "ingestor_reject_count",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("reason", String(60), primary_key=True),
    Column("count", Integer, nullable=False),
)


reject_seen = Table(
    "ingestor_reject_seen",
    metadata,
    # uuid5 of (source, record, reason, content digest): see pipeline.to_reject
    Column("event_id", String(64), primary_key=True),
    Column("source", String(100), nullable=False, index=True),
    Column("reason", String(60), nullable=False),
    Column("record", String(400), nullable=False),  # "id <its id>" or "at <file:row / url>"
    Column("content_hash", String(64), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
)


update_seen = Table(
    "ingestor_update_seen",
    metadata,
    # Open311 updates already taken into account (update_notes.update_key), so a re-polled
    # window neither files a past note twice nor re-applies an update.
    Column("update_key", String(64), primary_key=True),
    Column("source", String(100), nullable=False, index=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
)


recent_event = Table(
    "ingestor_recent_event",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("published_at", DateTime(timezone=True), nullable=False, index=True),
    Column("body", Text, nullable=False),
)


overdue_published = Table(
    "ingestor_overdue_published",
    metadata,
    # One RequestOverdue per request per due time (naive UTC), recorded once acknowledged; a
    # moved due date is a new row. See docs/architecture.md, "Where the clock lives".
    Column("request_id", String(300), primary_key=True),
    Column("due_datetime", DateTime(timezone=False), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)
