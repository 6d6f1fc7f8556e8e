"""Rows the department view counts: every open request, and those made or closed lately."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Connection, or_, select

from connect311_contracts.due import DueInput
from connect311_map_api.core.department_digest import OpenRequest
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.stored_due import due_input
from connect311_map_api.db.queries import conditions
from connect311_map_api.db.tables import requests

r = requests.c
COLUMNS = (
    r.requested_datetime,
    r.expected_datetime,
    r.service_code,
    r.service_name,
    r.agency_responsible,
    r.status,
    r.closed_datetime,
)


def department_rows(conn: Connection, f: RequestFilters, since: datetime) -> Iterator[DueInput]:
    """Open requests, and requests made or closed at or after `since` (naive UTC).

    Everything else (closed before `since`, made before it) counts in no number of the view.
    """
    query = select(*COLUMNS).where(
        *conditions(f),
        or_(
            r.status != "closed",
            r.requested_datetime >= since,
            r.closed_datetime >= since,
        ),
    )
    for row in conn.execute(query.execution_options(yield_per=2_000)):
        yield due_input(row)


def open_requests(conn: Connection, agency: str) -> Iterator[OpenRequest]:
    """Every open request of one department, as the digest reads it."""
    query = select(*COLUMNS, r.service_request_id, r.address).where(
        r.agency_responsible == agency, r.status != "closed"
    )
    for row in conn.execute(query.execution_options(yield_per=2_000)):
        yield OpenRequest(row.service_request_id, row.service_name, row.address, due_input(row))


def agency_known(conn: Connection, agency: str) -> bool:
    """Whether any stored request names this department (exactly)."""
    query = select(r.pk).where(r.agency_responsible == agency).limit(1)
    return conn.execute(query).first() is not None
