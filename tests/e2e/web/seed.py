"""Seed data for the browser tests: contract request events around St. Petersburg, FL.

Requests sit on a grid ~1 km apart so none cluster at the test zoom (14); each has a short,
recognisable history. One request carries hostile text that must render as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connect311_contracts.events import (
    RequestClosed,
    RequestEvent,
    RequestOpened,
    RequestUpdated,
)
from connect311_contracts.request import RequestStatus, ServiceRequest

CENTER_LAT = 27.7676
CENTER_LONG = -82.6403
SOURCE = "webtest"
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_NAME = '<b>Graffiti</b><img src=y onerror="window.__pwned=3">'
WATER = "Water Resources"


@dataclass(frozen=True)
class Seeded:
    """One seeded request as the tests know it."""

    source_request_id: str
    agency: str
    service_code: str
    service_name: str
    final_status: RequestStatus
    notes: tuple[str, ...]
    description: str

    @property
    def service_request_id(self) -> str:
        """The system-wide id."""
        return f"{SOURCE}:{self.source_request_id}"


_S = RequestStatus
SEEDED: tuple[Seeded, ...] = (
    Seeded("1001", WATER, "water-main", "Water main break", _S.OPEN, (), "Water in the street"),
    Seeded(
        "1002",
        WATER,
        "water-pressure",
        "Low water pressure",
        _S.IN_PROGRESS,
        ("Crew dispatched to check the valve",),
        "Pressure low since Monday",
    ),
    Seeded(
        "1003",
        WATER,
        "water-main",
        "Water main break",
        _S.CLOSED,
        ("Crew dispatched", "Main repaired and street reopened"),
        "Geyser at the corner",
    ),
    Seeded(
        "1004",
        WATER,
        "water-pressure",
        "Low water pressure",
        _S.ACKNOWLEDGED,
        ("Queued for inspection",),
        "Weak shower",
    ),
    Seeded("2001", "Transportation", "pothole", "Pothole", _S.OPEN, (), "Deep pothole"),
    Seeded(
        "2002",
        "Transportation",
        "pothole",
        "Pothole",
        _S.CLOSED,
        ("Filled with cold patch",),
        "Pothole by the school",
    ),
    Seeded(
        "2003",
        "Transportation",
        "streetlight",
        "Street light out",
        _S.IN_PROGRESS,
        ("Part ordered",),
        "Dark corner",
    ),
    Seeded("2004", "Transportation", "streetlight", "Street light out", _S.OPEN, (), "Flickering"),
    Seeded(
        "3001",
        "Sanitation",
        "missed-pickup",
        "Missed pickup",
        _S.CLOSED,
        ("Picked up next morning",),
        "Bins not emptied",
    ),
    Seeded("3002", "Sanitation", "missed-pickup", "Missed pickup", _S.OPEN, (), "Recycling left"),
    Seeded("3003", "Sanitation", "graffiti", HOSTILE_NAME, _S.ACKNOWLEDGED, (HOSTILE,), HOSTILE),
    Seeded(
        "3004",
        "Sanitation",
        "graffiti",
        "Graffiti",
        _S.ACKNOWLEDGED,
        ("Scheduled for removal",),
        "Tag on the wall",
    ),
)
HOSTILE_ID = f"{SOURCE}:3003"
TIMELINE_ID = f"{SOURCE}:1003"


def seeded_address(index: int) -> str:
    """The street address of the index-th seeded request."""
    return f"{100 + index} Central Ave N"


def position(index: int) -> tuple[float, float]:
    """(lat, long) of the n-th seeded request: a 4 x 3 grid, 0.01 degree apart."""
    row, col = divmod(index, 4)
    return CENTER_LAT + (row - 1) * 0.01, CENTER_LONG + (col - 1.5) * 0.01


def snapshot(
    seed: Seeded,
    index: int,
    status: RequestStatus,
    at: datetime,
    notes: str | None,
    requested: datetime,
) -> ServiceRequest:
    """The request as the city described it at `at`."""
    lat, long = position(index)
    return ServiceRequest(
        service_request_id=seed.service_request_id,
        source=SOURCE,
        source_request_id=seed.source_request_id,
        service_code=seed.service_code,
        service_name=seed.service_name,
        agency_responsible=seed.agency,
        status=status,
        raw_status=status.value,
        status_notes=notes,
        description=seed.description,
        address=seeded_address(index),
        lat=lat,
        long=long,
        requested_datetime=requested,
        updated_datetime=at,
        closed_datetime=at if status is RequestStatus.CLOSED else None,
    )


def seed_events(now: datetime | None = None) -> list[RequestEvent]:
    """Every seeded request's events, oldest first (opened, updates with notes, close)."""
    now = now or datetime.now(UTC)
    events: list[RequestEvent] = []
    for index, seed in enumerate(SEEDED):
        opened_at = now - timedelta(days=20 - index)
        first = snapshot(seed, index, RequestStatus.OPEN, opened_at, None, opened_at)
        events.append(RequestOpened(request=first, occurred_at=opened_at))
        previous = RequestStatus.OPEN
        for step, note in enumerate(seed.notes, start=1):
            last = step == len(seed.notes)
            status = seed.final_status if last else RequestStatus.IN_PROGRESS
            at = opened_at + timedelta(days=step)
            req = snapshot(seed, index, status, at, note, opened_at)
            kind = RequestClosed if status is RequestStatus.CLOSED else RequestUpdated
            events.append(kind(request=req, occurred_at=at, previous_status=previous))
            previous = status
    return events


def in_agency(agency: str) -> set[str]:
    """Ids of the seeded requests of one agency."""
    return {s.service_request_id for s in SEEDED if s.agency == agency}
