"""Journey 5: a department head opens the stats page and every number on it is true.

In real Chromium: no negative or rounded-away numbers, a request closed 25 minutes after it
was reported shows "25 min", a request dated ahead of the clock is counted apart (not as a
negative age), the ages' moment is stated in the city's zone, and every cell of the table
equals a recount done here in plain Python from the seeded requests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestClosed, RequestEvent, RequestOpened
from connect311_contracts.request import RequestStatus, ServiceRequest
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import Seeded, seed_events, snapshot

pytestmark = pytest.mark.browser

CITY_ZONE = ZoneInfo("America/New_York")  # the map API's default MAP_API_DISPLAY_TIMEZONE
FORESTRY = "Forestry"  # one request, closed 25 minutes after it was reported
PARKS = "Parks"
CLOSES = {  # (agency, request) -> time from report to close
    (FORESTRY, "f-1"): timedelta(minutes=25),
    (PARKS, "p-1"): timedelta(minutes=40, seconds=30),
    (PARKS, "p-2"): timedelta(hours=5, minutes=12),
    (PARKS, "p-3"): timedelta(days=3, hours=7, minutes=45),
}
OPEN_AGO = {  # Parks requests still open -> how long before now they were reported
    "p-4": timedelta(hours=6, minutes=30),
    "p-5": timedelta(hours=30),
    "p-6": -timedelta(hours=3),  # dated 3 hours ahead: a feed whose clock runs fast
}


def _journey_events(now: datetime) -> list[RequestEvent]:
    events: list[RequestEvent] = []
    for index, ((agency, rid), gap) in enumerate(CLOSES.items()):
        seed = Seeded(rid, agency, "tree", "Tree down", RequestStatus.CLOSED, (), "Branch")
        opened_at = now - timedelta(days=2) - gap
        opened = snapshot(seed, -4 - index, RequestStatus.OPEN, opened_at, None, opened_at)
        closed = snapshot(seed, -4 - index, RequestStatus.CLOSED, opened_at + gap, None, opened_at)
        events += [
            RequestOpened(request=opened, occurred_at=opened_at),
            RequestClosed(request=closed, occurred_at=now, previous_status=RequestStatus.OPEN),
        ]
    for index, (rid, ago) in enumerate(OPEN_AGO.items()):
        seed = Seeded(rid, PARKS, "bench", "Broken bench", RequestStatus.OPEN, (), "Bench")
        at = now - ago
        events.append(
            RequestOpened(
                request=snapshot(seed, -9 - index, RequestStatus.OPEN, at, None, at),
                occurred_at=now,
            )
        )
    return events


def _latest(events: list[RequestEvent]) -> dict[str, ServiceRequest]:
    final: dict[str, ServiceRequest] = {}
    for e in events:  # oldest first
        final[e.request.service_request_id] = e.request
    return final


def _nearest_rank(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] if ordered else None


def _shown(seconds: float | None) -> str:
    """How a duration reads on the page: minutes under an hour, hours under 2 days, days."""
    if seconds is None:
        return "\u2013"  # an en dash: no value
    if seconds <= 0:
        return "0 min"
    if seconds < 60:
        return "under 1 min"
    hours = seconds / 3600
    if hours < 1:
        return f"{int(seconds // 60)} min"
    amount, unit = (hours, "hour") if hours < 48 else (hours / 24, "day")
    value = math.floor(amount * 10 + 0.5) / 10  # JavaScript's Math.round to tenths
    return f"{value:g} {unit}{'' if value == 1 else 's'}"


def _recount(requests: dict[str, ServiceRequest], as_of: datetime) -> dict[str, list[str]]:
    """Each department's row of the table, recounted from the seeded requests."""
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for req in requests.values():
        row = rows[req.agency_responsible or "(unknown)"]
        row["opened"].append(1)
        if req.status is RequestStatus.CLOSED and req.closed_datetime is not None:
            row["resolved"].append(1)
            seconds = (req.closed_datetime - req.requested_datetime).total_seconds()
            # The API counts closes to the minute under 2 days and to the hour beyond.
            unit = 60 if seconds < 2 * 86_400 else 3600
            row["close"].append(seconds // unit * unit)
        else:
            row["open"].append(1)
            age = (as_of - req.requested_datetime).total_seconds()
            if age >= 0:  # a request dated in the future has no age yet
                row["age"].append(age)
    return {
        agency: [
            str(len(r["opened"])),
            str(len(r["resolved"])),
            str(len(r["open"])),
            _shown(_nearest_rank(r["age"], 0.5)),
            _shown(_nearest_rank(r["close"], 0.5)),
            _shown(_nearest_rank(r["close"], 0.9)),
        ]
        for agency, r in rows.items()
    }


def test_department_head_reads_true_numbers_with_units_and_zone(
    own_web_server: WebServer, page: Page, problems: PageProblems
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    journey = _journey_events(now)
    own_web_server.apply(journey)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(own_web_server.url + "/stats")
    table = page.locator("#stats-table tbody tr")
    expect(table.filter(has=page.get_by_role("rowheader", name=PARKS))).to_have_count(1)
    as_of_text = page.locator("#stats-as-of")
    expect(as_of_text).to_contain_text("Backlog ages as of")

    # The moment the page measured ages from (the API states it), and the seeded data as of
    # then: the standard seed is stored relative to the server's start, seconds before.
    as_of = datetime.fromisoformat(
        page.evaluate("() => fetch('/api/stats?interval=week').then(r => r.json())")["as_of"]
    )
    seeded = _latest(seed_events(as_of) + journey)
    expected = _recount(seeded, as_of)

    shown: dict[str, list[str]] = {}
    for i in range(table.count()):
        row = table.nth(i)
        agency = row.locator("th").inner_text()
        shown[agency] = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert shown == expected

    # The sub-hour close reads 25 minutes, not "0 min" or "0 hours".
    assert shown[FORESTRY][4:] == ["25 min", "25 min"]
    assert shown[PARKS][3] == "6.5 hours"  # the median age: the future-dated one has none
    every_cell = [cell for cells in shown.values() for cell in cells]
    assert not any(cell.startswith("-") for cell in every_cell), every_cell
    assert "0 min" not in every_cell and "0 days" not in every_cell

    # Times are in the city's zone, named; the request dated ahead is said, not hidden.
    zone = as_of.astimezone(CITY_ZONE).strftime("%Z")  # EST or EDT
    expect(as_of_text).to_contain_text(zone)
    expect(as_of_text).to_contain_text("1 open request is dated later than that")

    page.locator("#stats-table").scroll_into_view_if_needed()
    screenshot(page, "journey5-stats")
    assert problems.errors == []
