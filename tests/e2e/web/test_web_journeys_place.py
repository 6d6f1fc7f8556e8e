"""Journeys 1, 2 (map side) and 4 of issue 13, read off the screen in real Chromium.

1. A newcomer opens the map of a deployment with no configured centre, whose requests are far
   from any default: requests are on screen without touching the map; with tiles blocked the
   map says so. 2. A shop owner types part of an address on "Alert me", picks it from the
   list with the keyboard, and the alert point and the map move there. 4. A department builds
   an embed filtered to its agency, pastes the snippet into a page served from another origin,
   and its requests show there.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import FloatRect, Page, expect

from connect311_contracts.events import RequestEvent
from connect311_contracts.settings import SigningSettings
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from tests.e2e.web.app_under_test import SECRET, RecordingPublisher, web_settings
from tests.e2e.web.conftest import (
    POPUP_INSIDE_MAP,
    PageProblems,
    WebServer,
    screenshot,
    uvicorn_thread,
)
from tests.e2e.web.seed import (
    CENTER_LAT,
    CENTER_LONG,
    SEEDED,
    TIMELINE_ID,
    WATER,
    in_agency,
    position,
    seed_events,
)
from tests.e2e.web.tiles import TILE_PATH, add_tile_route

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"
# Chicago: ~1,600 km from the old built-in default centre (St. Petersburg, FL).
FAR_LAT, FAR_LONG = 41.8781, -87.6298
CITY_ZONE = ZoneInfo("America/New_York")  # the map API's default MAP_API_DISPLAY_TIMEZONE


def shot(page: Page, name: str) -> None:
    """Keep what a person saw in test-artifacts/ (journey screenshots are looked at too)."""
    screenshot(page, f"m_{name}")


def far_away_events() -> list[RequestEvent]:
    """The seeded requests, moved to another city."""
    d_lat, d_long = FAR_LAT - CENTER_LAT, FAR_LONG - CENTER_LONG
    moved: list[RequestEvent] = []
    for event in seed_events():
        req = event.request
        where = {"lat": req.lat + d_lat, "long": req.long + d_long}
        moved.append(event.model_copy(update={"request": req.model_copy(update=where)}))
    return moved


@contextmanager
def serving_uncentred(folder: Path) -> Iterator[WebServer]:
    """The app with no map centre configured (the new default), its requests in Chicago."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{folder / 'far.db'}"
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        apply_events(conn, far_away_events())
    engine.dispose()
    settings = web_settings(
        database_url, url + TILE_PATH, map_center_lat=None, map_center_long=None
    )
    publisher = RecordingPublisher()
    signing = SigningSettings(secret_key=SECRET, public_base_url=url)
    app = create_app(settings, signing=signing, publisher=publisher)
    add_tile_route(app)
    with uvicorn_thread(app, port) as loop:
        yield WebServer(url=url, app=app, publisher=publisher, loop=loop)


@pytest.fixture(scope="module")
def far_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A deployment that never set a centre; its data is nowhere near St. Petersburg."""
    with serving_uncentred(tmp_path_factory.mktemp("far")) as server:
        yield server


def shown_count(page: Page) -> int:
    """The number the status line says is on screen (markers or grouped counts)."""
    text = page.locator("#map-status").text_content() or ""
    found = re.match(r"(\d+) requests (shown|in view)", text)
    assert found, f"no count in the status line: {text!r}"
    return int(found.group(1))


def centre_of(page: Page, selector: str = "#map") -> tuple[float, float]:
    """The map's centre as the page reports it."""
    value = page.locator(selector).get_attribute("data-center") or ""
    lat, long = value.split(",")
    return float(lat), float(long)


TIME_TERMS = ("Reported", "Last updated", "Closed")


def _city_time(text: str) -> datetime:
    """A page time ("Dec 4, 2026, 8:24 PM EST") read back; it must name the city's zone."""
    plain = text.replace("\u202f", " ").replace("\xa0", " ").strip()
    when, zone = plain.rsplit(" ", 1)
    moment = datetime.strptime(when, "%b %d, %Y, %I:%M %p").replace(tzinfo=CITY_ZONE)
    assert zone == moment.strftime("%Z"), f"{text!r} does not name the city's zone"
    return moment


def expect_centre(page: Page, lat: float, long: float) -> None:
    """Wait until the map has moved to (lat, long) (it may still be animating)."""
    expect(page.locator("#map")).to_have_attribute("data-center", f"{lat:.5f},{long:.5f}")


def test_newcomer_sees_requests_without_touching_the_map(
    page: Page, far_server: WebServer, problems: PageProblems
) -> None:
    page.goto(far_server.url + "/")
    expect(page.locator("#map")).to_have_attribute("data-state", "ready")
    expect(page.locator("#map-status")).to_contain_text(re.compile(r"^[1-9]\d* requests"))
    assert shown_count(page) == len(SEEDED)
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    lat, long = centre_of(page)
    assert abs(lat - FAR_LAT) < 0.05 and abs(long - FAR_LONG) < 0.05
    expect(page.locator(".map-notice")).to_be_hidden()  # tiles load: no false alarm
    page.wait_for_load_state("networkidle")
    shot(page, "newcomer_map")
    # A popup's times read in the order things happened, each in the city's zone, named.
    page.locator(f'{MARKERS}[data-request-id="{TIMELINE_ID}"]').click()
    popup = page.locator(".leaflet-popup .popup")
    expect(popup.locator(".timeline-entry")).to_have_count(3)  # opened, updated, closed
    terms = popup.locator("dl.details dt").all_inner_texts()
    values = popup.locator("dl.details dd").all_inner_texts()
    shown = {t: v for t, v in zip(terms, values, strict=True) if t in TIME_TERMS}
    assert list(shown) == ["Reported", "Closed"], terms  # "Last updated" is the close here
    moments = [_city_time(v) for v in shown.values()]
    moments += [_city_time(t) for t in popup.locator(".timeline-entry time").all_inner_texts()]
    assert moments[0] < moments[1], shown
    timeline = moments[2:]
    assert timeline == sorted(timeline) and timeline[0] == moments[0], timeline
    assert timeline[-1] == moments[1], timeline  # the close, as the row above says
    page.wait_for_function(POPUP_INSIDE_MAP)
    shot(page, "newcomer_popup")
    # An embed with no view in its snippet fits to its own requests too.
    page.goto(far_server.url + "/embed?agency=Water%20Resources")
    expect(page.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
    shot(page, "newcomer_embed")
    assert problems.errors == []


def test_blocked_tiles_show_a_notice_and_the_requests(page: Page, far_server: WebServer) -> None:
    page.route("**/test-tiles/**", lambda route: route.abort())
    page.goto(far_server.url + "/")
    notice = page.locator(".map-notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_text("The base map could not load; requests are still shown.")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    assert shown_count(page) == len(SEEDED)
    shot(page, "tiles_blocked")


def test_a_view_without_requests_says_where_they_are(page: Page, far_server: WebServer) -> None:
    """An empty view is never just "0": it says how many are elsewhere, or that none match."""
    page.goto(far_server.url + "/?agency=Nobody")
    expect(page.locator("#map-status")).to_contain_text(
        re.compile(r"^0 requests .* \u2013 none anywhere match these filters$")
    )
    page.goto(far_server.url + "/embed?lat=0&long=0&zoom=10")  # a snippet aimed at the sea
    status = page.locator("#map-status")
    expect(status).to_contain_text(f"{len(SEEDED)} elsewhere")
    page.get_by_role("button", name="Show all requests").click()
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    expect(status).to_have_text(f"{len(SEEDED)} requests shown")


def test_shop_owner_finds_their_address_by_typing_it(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    index = 5
    address = f"{100 + index} Central Ave N"  # the seeded requests carry these addresses
    page.goto(web_server.url + "/#alert")
    expect(page.locator("#alert-form")).to_be_visible()
    box = page.get_by_role("combobox", name="Address")
    box.fill("105 Cent")
    options = page.locator("#alert-place-list [role=option]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text(address)
    box.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    expect(page.locator("#alert-chosen")).to_have_text(f"Alert around {address}.")
    expect(page.locator("path.alert-circle")).to_have_count(1)
    expect(page.get_by_label("Name this alert (optional)")).to_have_value(address)
    expect(page.locator("#alert-preview")).to_contain_text("per week")
    expect_centre(page, *position(index))
    shot(page, "shop_owner_address")
    # Several matches: the list is operated with the arrow keys; Escape closes it.
    box.fill("Central Ave")
    expect(options).to_have_count(8)
    box.press("ArrowDown")
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("Escape")
    expect(page.locator("#alert-place-list")).to_be_hidden()
    assert problems.errors == []


def test_use_my_location_and_map_search(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    here = {"latitude": CENTER_LAT + 0.004, "longitude": CENTER_LONG - 0.003, "accuracy": 20}
    page.context.grant_permissions(["geolocation"], origin=web_server.url)
    page.context.set_geolocation(here)
    page.goto(web_server.url + "/#alert")
    page.locator("#alert-search").get_by_role("button", name="Use my location").click()
    expect(page.locator("#alert-chosen")).to_have_text("Alert around Your location.")
    expect_centre(page, here["latitude"], here["longitude"])
    # The map's own "Find a place" moves the map and marks the place.
    search = page.get_by_role("combobox", name="Find a place")
    search.fill("102 Central")
    expect(page.locator("#map-place-list [role=option]")).to_have_count(1)
    search.press("Enter")
    expect(page.locator(".place-label")).to_have_text("102 Central Ave N")
    expect_centre(page, *position(2))
    shot(page, "map_search")
    assert problems.errors == []


def _overlap(a: FloatRect, b: FloatRect) -> bool:
    """Whether two boxes on the screen share any area."""
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test output."""


@contextmanager
def other_origin(folder: Path) -> Iterator[str]:
    """A plain static web server for `folder` on another port: a department's own site."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), partial(_Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, name="other-origin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_department_pastes_its_embed_on_another_site(
    page: Page, web_server: WebServer, tmp_path: Path, problems: PageProblems
) -> None:
    page.goto(web_server.url + "/embed/builder")
    page.get_by_label("Department").select_option(WATER)
    preview = page.frame_locator("#b-preview")
    expect(preview.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
    # The preview fitted to the department's requests; its view goes into the snippet.
    expect(preview.locator("#map")).to_have_attribute("data-state", "ready")
    zoom = int(preview.locator("#map").get_attribute("data-zoom") or "0")
    page.get_by_role("button", name="Use the preview's current view").click()
    snippet = page.get_by_label("Snippet to paste").input_value()
    assert "agency=Water%20Resources" in snippet and f"zoom={zoom}" in snippet
    assert "lat=" in snippet and "long=" in snippet
    expect(page.locator("#b-view-text")).to_contain_text(f"(zoom {zoom})")
    shot(page, "department_builder")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>Water Resources</title></head>"
        f"<body><h1>Our open requests</h1>{snippet}</body></html>",
        encoding="utf-8",
    )
    with other_origin(site) as origin:
        assert origin != web_server.url
        page.goto(origin + "/index.html")
        framed = page.frame_locator("iframe")
        expect(framed.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
        ids = framed.locator(MARKERS).evaluate_all(
            "els => els.map(e => e.getAttribute('data-request-id'))"
        )
        assert set(ids) == in_agency(WATER)
        expect(framed.locator("#map")).to_have_attribute("data-zoom", str(zoom))
        # The map's credit line stays readable beside the folded legend and list.
        credit = framed.locator(".leaflet-control-attribution").bounding_box()
        for corner in (".embed-legend", ".embed-list"):
            box = framed.locator(corner).bounding_box()
            assert credit and box and not _overlap(credit, box), (corner, credit, box)
        page.wait_for_load_state("networkidle")
        shot(page, "department_other_site")
    assert problems.errors == []
