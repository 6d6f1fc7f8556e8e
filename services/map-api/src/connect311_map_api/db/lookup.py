"""Find requests by the number a resident has: the city's own number or the prefixed id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, or_, select

from connect311_map_api.db.tables import requests

__all__ = ["MAX_MATCHES", "by_number"]

MAX_MATCHES = 20
"""More sources than this sharing one number is not a choice a person can make."""

r = requests.c


def by_number(conn: Connection, number: str) -> Sequence[Any]:
    """Requests whose prefixed id or city number is `number`, oldest source first.

    Both columns are indexed (unique id; `ix_requests_source_request_id`), so this is two
    index look-ups whatever the table's size.
    """
    query = (
        select(
            r.service_request_id,
            r.source,
            r.dataset,
            r.service_name,
            r.agency_responsible,
            r.address,
            r.status,
            r.requested_datetime,
        )
        .where(or_(r.service_request_id == number, r.source_request_id == number))
        .order_by(r.source, r.service_request_id)
        .limit(MAX_MATCHES)
    )
    return conn.execute(query).all()
