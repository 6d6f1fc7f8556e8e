"""The one SQLAlchemy engine factory: SQLite for a single instance, PostgreSQL for many.

SQLite gets what every service needs of it: its folder created, WAL (readers run beside the
one writer; with NORMAL sync a killed process loses nothing, only a power cut could), and a
busy timeout so a writer waits for the lock instead of failing at once. The connection is
shared across threads (`check_same_thread=False`) because services write from worker threads.
PostgreSQL gets pre-ping (a connection dropped by a restart is replaced, not handed out) and
the pool size the service asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["make_engine"]


def make_engine(
    url: str,
    busy_timeout_ms: int = 30_000,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> Engine:
    """An engine for a SQLAlchemy URL; the pool settings apply to PostgreSQL only."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        pool: dict[str, Any] = {}
        if pool_size is not None:
            pool["pool_size"] = pool_size
        if max_overflow is not None:
            pool["max_overflow"] = max_overflow
        return create_engine(url, pool_pre_ping=True, **pool)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
    )

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    return engine
