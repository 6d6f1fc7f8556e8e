"""Sign-up limit counts in the database: one row per hashed key, limit window and window start."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from connect311_map_api.db.tables import signup_limits

c = signup_limits.c


def hit(conn: Connection, key: str, window_s: int, start: int) -> int:
    """Count one attempt in a window; the window's count including it.

    One atomic upsert: concurrent instances queue on the row (PostgreSQL) or the database
    write lock (SQLite), so no two of them read the same count.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(signup_limits)
        .values(
            key=key, window_s=window_s, window_start=start, hits=1, expires_at=start + 2 * window_s
        )
        .on_conflict_do_update(
            index_elements=[c.key, c.window_s, c.window_start], set_={"hits": c.hits + 1}
        )
        .returning(c.hits)
    )
    return int(conn.execute(statement).scalar_one())


def count(conn: Connection, key: str, window_s: int, start: int) -> int:
    """Attempts counted in one window (0 if none)."""
    query = select(c.hits).where(c.key == key, c.window_s == window_s, c.window_start == start)
    return int(conn.execute(query).scalar() or 0)


def prune(conn: Connection, now: int) -> int:
    """Delete windows too old to count as anyone's previous window; how many went."""
    return int(conn.execute(delete(signup_limits).where(c.expires_at <= now)).rowcount)
