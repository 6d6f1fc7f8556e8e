"""The one engine factory: SQLite gets its folder, WAL, NORMAL sync and the busy timeout asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from connect311_bus.engine import make_engine


@pytest.mark.parametrize("busy_timeout_ms", [5_000, 30_000])
def test_sqlite_gets_its_folder_wal_and_busy_timeout(tmp_path: Path, busy_timeout_ms: int) -> None:
    path = tmp_path / "nested" / "folder" / "state.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms)
    try:
        with engine.connect() as conn:
            mode = conn.execute(text("PRAGMA journal_mode")).scalar()
            sync = conn.execute(text("PRAGMA synchronous")).scalar()
            timeout = conn.execute(text("PRAGMA busy_timeout")).scalar()
    finally:
        engine.dispose()
    assert path.parent.is_dir()
    assert (mode, sync, timeout) == ("wal", 1, busy_timeout_ms)  # 1 = NORMAL


def test_postgresql_gets_pre_ping_and_the_pool_asked() -> None:
    engine = make_engine("postgresql+psycopg://u:p@localhost/db", pool_size=10, max_overflow=3)
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
    assert engine.pool.size() == 10  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 3  # type: ignore[attr-defined]
