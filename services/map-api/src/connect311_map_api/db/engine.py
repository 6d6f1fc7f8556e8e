"""Engine creation (the shared factory, see `connect311_bus.engine`) and schema set-up."""

from __future__ import annotations

from sqlalchemy import Engine

from connect311_bus.engine import make_engine as shared_engine
from connect311_map_api.db.tables import metadata


def make_engine(url: str, busy_timeout_ms: int = 5_000) -> Engine:
    """The map API's engine: the shared factory, with a pool for PostgreSQL's readers."""
    return shared_engine(url, busy_timeout_ms, pool_size=10, max_overflow=10)


def create_schema(engine: Engine) -> None:
    """Create missing tables and indexes (idempotent)."""
    metadata.create_all(engine)
