"""A resident sees why a request was closed: on the map popup and on the track page, in a real
browser, worded for people ("Closed — duplicate of another request") with the city's own
status word where it adds something ("Referred to Law"), not just "Closed"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestClosed, RequestOpened
from connect311_contracts.request import ClosedReason, RequestStatus
from tests.e2e.web.conftest import PageProblems, WebServer
from tests.e2e.web.seed import SEEDED, Seeded, snapshot

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"
DUPLICATE = Seeded("dup-1", "Transportation", "pothole", "Pothole", RequestStatus.CLOSED, (), "")
REFERRED = Seeded("law-1", "Codes", "overgrowth", "Overgrown lot", RequestStatus.CLOSED, (), "")
DUPLICATE_WORDS = "Closed — duplicate of another request"
REFERRED_WORDS = "Closed — referred to another agency (city status: Referred to Law)"


def _seed_closed(server: WebServer) -> None:
    now = datetime.now(UTC)
    events = []
    for offset, (seed, reason, raw) in enumerate(
        (
            (DUPLICATE, ClosedReason.DUPLICATE, "Closed"),
            (REFERRED, ClosedReason.REFERRED, "Referred to Law"),
        )
    ):
        index = offset - 4  # a row below the seeded grid: the popup opens upwards into view
        opened_at = now - timedelta(days=3)
        opened = snapshot(seed, index, RequestStatus.OPEN, opened_at, None, opened_at)
        closed = snapshot(seed, index, RequestStatus.CLOSED, now, None, opened_at)
        closed = closed.model_copy(update={"closed_reason": reason, "raw_status": raw})
        events += [
            RequestOpened(request=opened, occurred_at=opened_at),
            RequestClosed(request=closed, occurred_at=now, previous_status=RequestStatus.OPEN),
        ]
    server.apply(events)


def test_popup_and_track_page_say_why_a_request_was_closed(
    own_web_server: WebServer, page: Page, problems: PageProblems
) -> None:
    _seed_closed(own_web_server)
    page.set_viewport_size({"width": 1100, "height": 800})
    page.goto(own_web_server.url + "/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED) + 2)

    page.locator(f'{MARKERS}[data-request-id="{DUPLICATE.service_request_id}"]').click()
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-request-id", DUPLICATE.service_request_id)
    expect(popup.locator(".popup-status .badge")).to_have_text("Closed")
    expect(popup.locator(".popup-status")).to_have_text(DUPLICATE_WORDS)
    expect(popup.locator(".timeline-entry")).to_have_count(2)
    page.screenshot(path="/tmp/h_popup.png", animations="disabled")

    page.goto(own_web_server.url + f"/requests/{REFERRED.service_request_id}")
    expect(page.locator("#track-title")).to_have_text(REFERRED.service_name)
    expect(page.locator("#track-status")).to_have_text(REFERRED_WORDS)
    page.screenshot(path="/tmp/h_track.png", full_page=True, animations="disabled")

    page.goto(own_web_server.url + f"/requests/{DUPLICATE.service_request_id}")
    expect(page.locator("#track-status")).to_have_text(DUPLICATE_WORDS)
    # A request with nothing beyond its status keeps the plain badge.
    page.goto(own_web_server.url + f"/requests/{SEEDED[0].service_request_id}")
    expect(page.locator("#track-title")).to_have_text(SEEDED[0].service_name)
    expect(page.locator("#track-status")).to_have_text("Open")
    expect(page.locator("#track-status .status-text")).to_have_count(0)
    assert problems.errors == []
