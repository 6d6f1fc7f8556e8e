"""The map page in a real browser: markers, filters, popups with timelines, live updates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestClosed, RequestOpened
from connect311_contracts.request import RequestStatus
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import (
    HOSTILE,
    HOSTILE_ID,
    SEEDED,
    TIMELINE_ID,
    WATER,
    Seeded,
    in_agency,
    snapshot,
)

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"


def marker_titles(page: Page) -> list[str]:
    """The title of every request marker on the map."""
    return page.locator(MARKERS).evaluate_all("els => els.map(e => e.getAttribute('title'))")


def open_popup(page: Page, service_request_id: str) -> None:
    """Open the popup of one request by clicking its marker."""
    page.locator(f'{MARKERS}[data-request-id="{service_request_id}"]').click()
    expect(page.locator(".leaflet-popup")).to_have_count(1)  # a previous one fades out first
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-request-id", service_request_id)


def test_map_shows_every_request_coloured_by_status(page: Page, problems: PageProblems) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    expect(page.locator("#map-status")).to_contain_text(f"{len(SEEDED)} requests shown")
    for status in ("open", "acknowledged", "in_progress", "closed"):
        expected = sum(1 for s in SEEDED if s.final_status.value == status)
        expect(page.locator(f"{MARKERS}.status-{status}")).to_have_count(expected)
    expect(page.locator(".legend")).to_contain_text("In progress")
    page.wait_for_load_state("networkidle")
    screenshot(page, "web-map")
    assert problems.errors == []


def test_filter_hides_the_other_requests(page: Page, problems: PageProblems) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    page.get_by_label("Department", exact=True).select_option(WATER)
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
    water_names = {s.service_name for s in SEEDED if s.agency == WATER}
    for title in marker_titles(page):
        assert title.rsplit(" (", 1)[0] in water_names
    assert "agency=Water+Resources" in page.url or "agency=Water%20Resources" in page.url
    page.get_by_label("Closed", exact=True).uncheck()
    page.get_by_role("button", name="Apply filters").click()
    open_water = sum(1 for s in SEEDED if s.agency == WATER and s.final_status.value != "closed")
    expect(page.locator(MARKERS)).to_have_count(open_water)
    screenshot(page, "web-map-filtered")
    assert problems.errors == []


def test_popup_shows_the_timeline(page: Page, problems: PageProblems) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    open_popup(page, TIMELINE_ID)
    popup = page.locator(".leaflet-popup .popup")
    seed = next(s for s in SEEDED if s.service_request_id == TIMELINE_ID)
    entries = popup.locator(".timeline-entry")
    expect(entries).to_have_count(len(seed.notes) + 1)
    for note in seed.notes:
        expect(popup.locator(".timeline")).to_contain_text(note)
    expect(popup.locator(".badge").first).to_have_text("Closed")
    screenshot(page, "web-map-popup")
    assert problems.errors == []


def test_hostile_text_renders_as_text_and_runs_nothing(page: Page, problems: PageProblems) -> None:
    seed = next(s for s in SEEDED if s.service_request_id == HOSTILE_ID)
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    open_popup(page, HOSTILE_ID)
    popup = page.locator(".leaflet-popup .popup")
    expect(popup.locator(".description")).to_have_text(HOSTILE)
    expect(popup.locator(".popup-title")).to_have_text(seed.service_name)
    expect(popup.locator(".timeline .notes")).to_have_text(HOSTILE)
    assert popup.locator("img, script, b").count() == 0
    # The hostile category name also reaches the filter lists, as plain option text.
    expect(page.locator("#f-category option", has_text="<b>Graffiti</b>")).to_have_count(1)
    assert page.evaluate("window.__pwned") is None
    page.goto(f"/requests/{HOSTILE_ID}")
    expect(page.locator("#track-description")).to_have_text(HOSTILE)
    expect(page.locator("#track-title")).to_have_text(seed.service_name)
    expect(page.locator("#track-timeline .notes")).to_have_text(HOSTILE)
    # (The small map's own tiles and marker are Leaflet's images, not feed text.)
    assert page.locator("main img:not(.leaflet-tile), main b").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.goto("/stats")
    expect(page.locator("#s-category option", has_text="<b>Graffiti</b>")).to_have_count(1)
    assert page.evaluate("window.__pwned") is None
    screenshot(page, "web-hostile-stats")
    assert problems.errors == []


def test_live_update_adds_and_recolours_markers_without_reload(
    own_web_server: WebServer, page: Page, problems: PageProblems
) -> None:
    page.goto(own_web_server.url + "/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    expect(page.locator("#map")).to_have_attribute("data-live", "connected")
    page.evaluate("window.__sameDocument = true")
    first = SEEDED[0]
    open_popup(page, first.service_request_id)
    now = datetime.now(UTC)
    assert first.final_status is RequestStatus.OPEN
    fixed = snapshot(first, 0, RequestStatus.CLOSED, now, "Fixed", now - timedelta(days=20))
    live = Seeded("live-1", "Transportation", "pothole", "Live pothole", RequestStatus.OPEN, (), "")
    opened = snapshot(live, len(SEEDED), RequestStatus.OPEN, now, None, now)
    own_web_server.apply(
        [
            RequestClosed(request=fixed, previous_status=RequestStatus.OPEN),
            RequestOpened(request=opened),
        ]
    )
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED) + 1)
    expect(page.locator(f'{MARKERS}[title="Live pothole (Open)"]')).to_have_count(1)
    closed_before = sum(1 for s in SEEDED if s.final_status is RequestStatus.CLOSED)
    expect(page.locator(f"{MARKERS}.status-closed")).to_have_count(closed_before + 1)
    expect(page.locator("#map-status")).to_contain_text("2 live updates")
    # The open popup followed its request: new status, and the change in its timeline.
    expect(page.locator(".leaflet-popup")).to_have_count(1)  # the old one fades out
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-request-id", first.service_request_id)
    expect(popup.locator(".badge").first).to_have_text("Closed")
    expect(popup.locator(".timeline")).to_contain_text("Fixed")
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "web-map-live")
    assert problems.errors == []


def test_zoomed_out_map_shows_server_side_groups(page: Page, problems: PageProblems) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    start = int(page.locator("#map").get_attribute("data-zoom") or "0")
    for step in range(1, 4):  # one at a time: Leaflet ignores a click while it animates
        page.get_by_role("button", name="Zoom out").click()
        expect(page.locator("#map")).to_have_attribute("data-zoom", str(start - step))
    cells = page.locator(".leaflet-marker-icon.grid-cell")
    expect(cells.first).to_be_visible()
    expect(page.locator(MARKERS)).to_have_count(0)
    expect(page.locator("#map-status")).to_contain_text(f"{len(SEEDED)} requests in view")
    counts = cells.evaluate_all("els => els.map(e => Number(e.textContent))")
    assert sum(counts) == len(SEEDED)
    titles = cells.evaluate_all("els => els.map(e => e.getAttribute('title'))")
    assert all(re.fullmatch(r"\d+ requests here \(.*\)\. Zoom in to see them\.", t) for t in titles)
    screenshot(page, "web-map-grouped")
    cells.first.click()
    expect(page.locator(MARKERS).first).to_be_visible()
    assert problems.errors == []


def test_text_and_date_filters(page: Page, problems: PageProblems) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    page.get_by_label("Text contains").fill("pothole")
    page.get_by_role("button", name="Apply filters").click()
    potholes = [s for s in SEEDED if "pothole" in (s.description + s.service_name).lower()]
    expect(page.locator(MARKERS)).to_have_count(len(potholes))
    page.get_by_role("button", name="Clear").click()
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    # Seeded request n was opened 20 - n days ago: from 10 days ago leaves n = 10 and 11.
    since = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    page.get_by_label("Reported from").fill(since)
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED) - 10)
    assert f"since={since}" in page.url
    page.reload()
    expect(page.get_by_label("Reported from")).to_have_value(since)
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED) - 10)
    assert problems.errors == []


def test_a_still_view_reads_its_zoom_ins_tiles_ahead_and_the_zoom_uses_them(
    page: Page, problems: PageProblems
) -> None:
    # Issue 15: once a view is drawn and still, the map reads the data tiles a zoom in from it
    # needs (a handful, at the map's zoom + 1 minus the data tiles' offset of 2), not a zoom
    # out's; the zoom in that follows asks none of them again.
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/tiles/" in r.url else None)
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    the_map = page.locator("#map")
    zoom = int(the_map.get_attribute("data-zoom") or "0")
    page.wait_for_function("() => performance.getEntriesByName('c311:ahead').length > 0")
    zoom_in = f"/api/tiles/{zoom - 1}/"
    ahead = [url for url in asked if zoom_in in url]
    assert 1 <= len(ahead) <= 8 and len(set(ahead)) == len(ahead), ahead
    assert [url for url in asked if f"/api/tiles/{zoom - 3}/" in url] == []  # zoom out's
    loads = the_map.get_attribute("data-loads")
    before = len(asked)
    page.get_by_role("button", name="Zoom in").click()
    expect(the_map).to_have_attribute("data-zoom", str(zoom + 1))
    expect(the_map).not_to_have_attribute("data-loads", loads or "")
    expect(the_map).to_have_attribute("data-state", "ready")
    assert [url for url in asked[before:] if zoom_in in url] == []
    expect(page.locator(MARKERS).first).to_be_visible()
    assert problems.errors == []
