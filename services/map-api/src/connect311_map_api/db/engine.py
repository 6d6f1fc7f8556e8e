"""Engine creation: SQLite (WAL, busy timeout) or PostgreSQL, and schema set-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from connect311_map_api.db.tables import metadata


def make_engine(url: str, busy_timeout_ms: int = 5_000) -> Engine:
    """An engine for the URL; SQLite files get WAL mode and their folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
    )

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the API read while the consumer writes; NORMAL sync is safe with WAL.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    return engine


def create_schema(engine: Engine) -> None:
    """Create missing tables and indexes (idempotent)."""
    metadata.create_all(engine)
