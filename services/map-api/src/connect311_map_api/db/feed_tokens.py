"""Private feed URL versions per subscription: raising one revokes every older URL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from connect311_map_api.core.state import naive_utc
from connect311_map_api.db.tables import feed_tokens

f = feed_tokens.c


def version(conn: Connection, subscription_id: str) -> tuple[int, datetime | None]:
    """The current feed version of a subscription (0 until first rotated) and when it was set."""
    row = conn.execute(
        select(f.version, f.rotated_at).where(f.subscription_id == subscription_id)
    ).first()
    return (int(row.version), row.rotated_at) if row else (0, None)


def versions(conn: Connection, subscription_ids: Iterable[str]) -> dict[str, int]:
    """Current feed versions of several subscriptions (missing ones are 0)."""
    ids = list(subscription_ids)
    rows = conn.execute(select(f.subscription_id, f.version).where(f.subscription_id.in_(ids)))
    found = {sid: int(v) for sid, v in rows}
    return {sid: found.get(sid, 0) for sid in ids}


def rotate(conn: Connection, subscription_id: str) -> int:
    """Raise a subscription's feed version (call inside a transaction); the new version."""
    now = naive_utc(datetime.now(UTC))
    current, rotated = version(conn, subscription_id)
    if rotated is None:
        conn.execute(
            insert(feed_tokens).values(subscription_id=subscription_id, version=1, rotated_at=now)
        )
        return 1
    conn.execute(
        update(feed_tokens)
        .where(f.subscription_id == subscription_id, f.version == current)
        .values(version=current + 1, rotated_at=now)
    )
    return current + 1
