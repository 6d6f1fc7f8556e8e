"""Datasets as map layers in a real browser (issue 17): 311 requests, code violations and crime
on one map, each layer switched off and on (and kept in the URL), dataset-specific popups and
list items, a crime-only embed and crime statistics, and a sign-up for crime-only alerts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestEvent, RequestOpened
from connect311_contracts.request import RequestStatus, ServiceRequest
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, SEEDED
from tests.e2e.web.test_accessibility_axe import AXE, WCAG_AA

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"
CRIMES = (
    ("BURGLARY - RESIDENTIAL", 0.005, -0.01),
    ("VANDALISM", -0.005, 0.0),
    ("ROBBERY", 0.005, 0.01),
)


def record(
    source_id: str, dataset: str, name: str, dlat: float, dlong: float, status: RequestStatus
) -> ServiceRequest:
    """A record between the seeded 311 requests (they sit on a 0.01-degree grid)."""
    at = datetime.now(UTC) - timedelta(days=2)
    return ServiceRequest(
        service_request_id=f"webtest:{source_id}",
        source="webtest",
        source_request_id=source_id,
        dataset=dataset,
        service_code=name[:8],
        service_name=name,
        agency_responsible="Police" if dataset == "crime" else "Code Enforcement",
        status=status,
        raw_status="" if dataset == "crime" else status.value,
        description=None if dataset == "crime" else "Overgrowth; Peeling paint",
        address=f"{2900 + len(name)} block of Central Ave",
        lat=CENTER_LAT + dlat,
        long=CENTER_LONG + dlong,
        requested_datetime=at,
        closed_datetime=at if status is RequestStatus.CLOSED else None,
    )


def second_datasets() -> list[RequestEvent]:
    """Three crime incidents (closed at the incident time, as ingested) and one open case."""
    events: list[RequestEvent] = [
        RequestOpened(request=record(f"crime-{i}", "crime", n, dlat, dlong, RequestStatus.CLOSED))
        for i, (n, dlat, dlong) in enumerate(CRIMES)
    ]
    case = record(
        "case-1", "code_violations", "Property maintenance", -0.005, 0.01, RequestStatus.OPEN
    )
    return [*events, RequestOpened(request=case)]


def layers_in_url(page: Page) -> list[str] | None:
    """The `datasets` the page's URL keeps (None: not narrowed)."""
    query = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
    return query["datasets"][0].split(",") if "datasets" in query else None


def test_layers_toggle_in_the_url_and_a_crime_only_alert_signs_up(
    own_web_server: WebServer, page: Page, problems: PageProblems
) -> None:
    own_web_server.apply(second_datasets())
    everything = len(SEEDED) + len(CRIMES) + 1
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(own_web_server.url + "/")
    expect(page.locator(MARKERS)).to_have_count(everything)
    layers = page.get_by_role("group", name="Layers")
    crime = layers.get_by_role("checkbox", name=re.compile(r"^Crime"))
    expect(crime).to_be_checked()
    expect(layers.get_by_role("checkbox")).to_have_count(3)
    # Each dataset is its own shape: crime incidents are triangles with no status colour.
    expect(page.locator(f"{MARKERS}.no-status svg.sym-triangle")).to_have_count(len(CRIMES))
    expect(page.locator(f"{MARKERS}.status-open svg.sym-house")).to_have_count(1)
    expect(page.locator(".legend-datasets")).to_contain_text("Crime incident (no status)")
    # The status line names each layer's records, never counts incidents as requests.
    status_line = page.locator("#map-status")
    expect(status_line).to_have_text(
        f"{len(SEEDED)} requests, 1 code violation case, 3 crime incidents shown"
    )
    # Offence types are not 311 categories: the dropdown groups the categories by dataset.
    groups = page.locator("#f-category optgroup")
    expect(groups).to_have_count(3)
    assert groups.evaluate_all("gs => gs.map(g => g.label)") == [
        "311 requests",
        "Code violations",
        "Crime",
    ]
    expect(page.locator('#f-category optgroup[label="Crime"] option')).to_have_count(len(CRIMES))
    page.wait_for_load_state("networkidle")
    screenshot(page, "web-map-dataset-layers", full_page=False)

    # Crime alone: no status to show in the legend or to filter by.
    statuses = page.locator("[data-status-part]")
    expect(statuses).to_have_count(5)  # four legend entries and the filter's fieldset
    for other in ("311 requests", "Code violations"):
        layers.get_by_role("checkbox", name=re.compile(f"^{other}")).uncheck()
    expect(page.locator(MARKERS)).to_have_count(len(CRIMES))
    expect(status_line).to_have_text("3 crime incidents shown")
    assert all(statuses.evaluate_all("els => els.map(e => e.hidden)"))
    expect(page.get_by_role("group", name="Status")).to_be_hidden()
    for other in ("311 requests", "Code violations"):
        layers.get_by_role("checkbox", name=re.compile(f"^{other}")).check()
    expect(page.get_by_role("group", name="Status")).to_be_visible()

    crime.uncheck()
    expect(page.locator(MARKERS)).to_have_count(everything - len(CRIMES))
    assert layers_in_url(page) == ["311", "code_violations"]
    page.reload()  # the URL keeps the layers
    expect(page.locator(MARKERS)).to_have_count(everything - len(CRIMES))
    expect(crime).not_to_be_checked()
    crime.check()
    expect(page.locator(MARKERS)).to_have_count(everything)
    assert layers_in_url(page) is None  # every layer on: not narrowed

    # A crime incident's popup: offence, time, near which block; no status, no timeline.
    page.locator(f"{MARKERS}.no-status").first.click()
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-dataset", "crime")
    expect(popup.locator(".popup-kind")).to_have_text("Crime incident")
    expect(popup.locator(".details")).to_contain_text("Offence")
    expect(popup.locator(".details")).to_contain_text("block of Central Ave")
    expect(popup.locator(".badge")).to_have_count(0)
    expect(popup).not_to_contain_text("Timeline")
    expect(popup).not_to_contain_text("Closed")
    crime_items = page.locator('#request-list li[data-dataset="crime"]')
    expect(crime_items).to_have_count(len(CRIMES))
    expect(crime_items.locator("a")).to_have_count(0)  # nothing to track
    expect(crime_items.locator(".badge")).to_have_count(0)
    screenshot(page, "web-map-crime-popup", full_page=False)
    page.keyboard.press("Escape")

    # "Crime within 500 m of my school": only the crime layer in the alert's datasets.
    page.get_by_role("button", name="Alert me about a place").click()
    page.get_by_role("button", name="use the centre of the map").click()
    hear = page.get_by_role("group", name="What to hear about")
    hear.get_by_role("checkbox", name="311 requests").uncheck()
    hear.get_by_role("checkbox", name="Code violations").uncheck()
    expect(hear.get_by_role("checkbox", name="Crime")).to_be_checked()
    # The layers, their symbols, the legend and the choices pass axe like every page.
    axe = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    assert axe.violations_count == 0, axe.generate_report()
    expect(page.locator("#alert-preview")).to_contain_text("per week")
    page.get_by_label("Your email").fill("parent@example.org")
    page.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")
    [command] = own_web_server.publisher.confirmations
    assert command.subscription.filters.datasets == ("crime",)
    screenshot(page, "web-map-crime-alert", full_page=False)

    # Zoomed out, a group counts crime incidents as such, never as closed requests.
    start = int(page.locator("#map").get_attribute("data-zoom") or "0")
    for step in range(1, 4):  # one at a time: Leaflet ignores a click while it animates
        page.get_by_role("button", name="Zoom out").click()
        expect(page.locator("#map")).to_have_attribute("data-zoom", str(start - step))
    cells = page.locator(".leaflet-marker-icon.grid-cell")
    expect(cells.first).to_be_visible()
    expect(status_line).to_have_text(
        f"{len(SEEDED)} requests, 1 code violation case, 3 crime incidents in view"
        " (grouped \u2013 zoom in for details)"
    )
    titles = " ".join(cells.evaluate_all("els => els.map(e => e.getAttribute('title'))"))
    closed = sum(1 for s in SEEDED if s.final_status is RequestStatus.CLOSED)
    assert sum(int(n) for n in re.findall(r"(\d+) closed", titles)) == closed, titles
    assert sum(int(n) for n in re.findall(r"(\d+) crime incidents?", titles)) == len(CRIMES)
    expect(page.locator("#request-list button").first).to_contain_text("crime incident")
    status_line.scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    screenshot(page, "web-map-crime-cells", full_page=False)

    # A crime incident tracked by its id: an incident, no status, no timeline, nothing to follow.
    page.goto(own_web_server.url + "/track?id=webtest:crime-0")
    expect(page.locator("#track-title")).to_have_text("BURGLARY - RESIDENTIAL")
    expect(page.locator("#track-status")).to_have_text("Crime incident")
    expect(page.locator("#track-details")).to_contain_text("Offence")
    expect(page.locator("#track-details")).to_contain_text("Incident id")
    expect(page.locator("#track-result .badge")).to_have_count(0)
    expect(page.locator("#track-result")).not_to_contain_text("Closed")
    expect(page.locator("#track-result")).not_to_contain_text("Request id")
    expect(page.locator("#follow-form")).to_be_hidden()
    expect(page.get_by_role("heading", name="Timeline")).to_be_hidden()
    expect(page.locator("#track-map .no-status svg.sym-triangle")).to_have_count(1)
    screenshot(page, "web-track-crime", full_page=False)

    # An embed restricted to crime: its legend has its triangle and no statuses; then crime
    # statistics by type and time.
    page.goto(own_web_server.url + "/embed?dataset=crime")
    expect(page.locator(MARKERS)).to_have_count(len(CRIMES))
    expect(page.locator("#embed-title")).to_have_text("Crime")
    expect(status_line).to_have_text("3 crime incidents shown")
    page.locator(".embed-legend summary").click()
    expect(page.locator(".legend-datasets")).to_have_text("Crime incident (no status)")
    expect(page.locator(".legend [data-status-part]")).to_have_count(4)
    for part in page.locator(".legend [data-status-part]").all():
        expect(part).to_be_hidden()
    page.wait_for_load_state("networkidle")
    screenshot(page, "web-embed-crime", full_page=False)
    page.goto(own_web_server.url + "/stats?dataset=crime")
    expect(page.locator("#chart-type")).to_contain_text("VANDALISM")
    expect(page.locator("#breakdown-note")).to_contain_text("3 of them")
    expect(page.locator("#chart-close")).to_be_hidden()
    screenshot(page, "web-stats-crime")
    assert problems.errors == []
