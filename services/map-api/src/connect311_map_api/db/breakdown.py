"""Counts per type and per UTC hour of the stored requests a filter selects (core/breakdown)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.db.queries import conditions
from connect311_map_api.db.tables import requests

__all__ = ["breakdown_rows"]

r = requests.c


def _hour(conn: Connection) -> Any:
    """The start of the UTC hour of each request's time (stored naive UTC)."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", r.requested_datetime)
    return func.strftime("%Y-%m-%d %H:00:00", r.requested_datetime)


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def breakdown_rows(
    conn: Connection, f: RequestFilters
) -> tuple[list[tuple[str | None, int]], list[tuple[datetime, int]]]:
    """(type, count) and (UTC hour start, count) rows; SQL does the counting."""
    where = conditions(f)
    kind = func.coalesce(r.service_name, r.service_code)
    types = conn.execute(select(kind, func.count()).where(*where).group_by(kind)).all()
    hour = _hour(conn)
    hours = conn.execute(select(hour, func.count()).where(*where).group_by(hour)).all()
    return (
        [(t, int(n)) for t, n in types],
        [(_as_datetime(h), int(n)) for h, n in hours if h is not None],
    )
