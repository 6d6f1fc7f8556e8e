"""Keyboard alone, a list beside the map, shapes beside colours, reflow and reduced motion
(issue 16), in real Chromium.

The journeys never touch the mouse: Tab moves the focus (each stop must show it), Enter and
the arrow keys act, text is typed. Following an email's link is a page load, as it is for a
person who opens their inbox.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestOpened
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, SEEDED, seeded_address

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"
TAB_LIMIT = 120  # more Tab presses than this to reach a control is itself a failure


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the focused element matches `selector`; its focus must be visible."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if page.evaluate(
            "s => !!document.activeElement && document.activeElement.matches(s)", selector
        ):
            outline = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }"
            )
            visible = (outline[0] != "none" and outline[1] != "0px") or outline[2] != "none"
            assert visible, f"{selector} has focus but shows no focus indicator: {outline}"
            return
    raise AssertionError(f"{selector} not reached with {TAB_LIMIT} presses of Tab")


def _ready(page: Page, url: str) -> None:
    page.goto(url)
    # Generous: the shared app's per-client read limit may make the map wait and retry.
    expect(page.locator("#map")).to_have_attribute("data-state", "ready", timeout=20_000)


def test_sign_up_confirm_and_unsubscribe_with_the_keyboard_alone(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    publisher = web_server.publisher
    before = len(publisher.confirmations)
    _ready(page, web_server.url + "/")

    tab_to(page, "#alert-start")
    page.keyboard.press("Enter")
    expect(page.locator("#alert-form")).to_be_visible()

    tab_to(page, "#alert-place")
    page.keyboard.type("105 Cent")
    expect(page.locator("#alert-place-list [role=option]")).to_have_count(1)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#alert-chosen")).to_have_text("Alert around 105 Central Ave N.")

    tab_to(page, "#alert-radius")
    for _ in range(12):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#alert-radius-out")).not_to_have_text("500 m")

    tab_to(page, "#alert-email")
    page.keyboard.type("keyboard@example.org")
    tab_to(page, "#alert-submit")
    page.keyboard.press("Enter")
    # The result is announced (a polite live region), not only shown.
    message = page.locator("#alert-message")
    expect(message).to_contain_text("Check your inbox")
    assert message.get_attribute("role") == "status"
    command = publisher.confirmations[before]
    assert command.subscription.email == "keyboard@example.org"
    assert command.subscription.target.kind == "circle"
    assert command.subscription.target.radius_m > 500

    # The email's confirmation link, then its unsubscribe link: one key press each.
    page.goto(command.confirm_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")
    sid = command.subscription.subscription_id
    assert [c.status.value for c in publisher.changed if c.subscription_id == sid][-1] == "active"
    leave = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
    page.goto(f"{web_server.url}/api/subscriptions/unsubscribe?token={leave}")
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    assert [c.status.value for c in publisher.changed if c.subscription_id == sid][-1] == (
        "unsubscribed"
    )
    assert problems.errors == []


def test_move_the_map_and_open_a_request_with_the_keyboard(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    _ready(page, web_server.url + "/")
    the_map = page.locator("#map")
    loads = int(the_map.get_attribute("data-loads") or "0")
    centre = the_map.get_attribute("data-center")

    tab_to(page, "#map")
    page.keyboard.press("ArrowLeft")
    expect(the_map).not_to_have_attribute("data-center", centre or "")
    expect(the_map).not_to_have_attribute("data-loads", str(loads))
    expect(the_map).to_have_attribute("data-state", "ready")

    # The markers follow the map in the Tab order; each is a named button.
    tab_to(page, MARKERS)
    name = page.evaluate("() => document.activeElement.getAttribute('title')")
    assert name and "(" in name, name  # "Graffiti (Acknowledged)": kind and status in words
    assert page.evaluate("() => document.activeElement.getAttribute('role')") == "button"
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".popup-title")).to_have_text(name.split(" (")[0])
    page.keyboard.press("Escape")
    expect(popup).to_have_count(0)
    assert problems.errors == []


def test_the_list_view_follows_the_map_and_opens_a_request(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    _ready(page, web_server.url + "/")
    items = page.locator("#request-list > li")
    expect(items).to_have_count(len(SEEDED))
    # Every item says its status in words and its address, and links to the tracking page.
    addresses = {r.service_request_id: seeded_address(i) for i, r in enumerate(SEEDED)}
    for i in range(len(SEEDED)):
        item = items.nth(i)
        assert (item.locator(".badge").text_content() or "").strip()
        sid = item.get_attribute("data-request-id") or ""
        assert addresses[sid] and addresses[sid] in (item.text_content() or "")
        href = item.get_by_role("link").get_attribute("href") or ""
        assert href == "/requests/" + (item.get_attribute("data-request-id") or "").replace(
            ":", "%3A"
        )

    # "Skip the map" passes every marker and lands on the list.
    tab_to(page, "a.skip-map")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "request-list-section"
    tab_to(page, "#request-list button")
    wanted = page.evaluate("() => document.activeElement.closest('li').dataset.requestId")
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-request-id", wanted)
    # The focus moved into the opened request, so a screen reader reads it next.
    expect(popup.locator(".popup-title")).to_be_focused()

    # Filters narrow the list exactly as they narrow the map.
    _ready(page, web_server.url + "/?status=closed")
    markers = page.locator(MARKERS)
    expect(items).to_have_count(markers.count())
    assert markers.count() < len(SEEDED)
    for i in range(items.count()):
        expect(items.nth(i).locator(".badge")).to_have_text("Closed")
    assert problems.errors == []


def test_groups_of_markers_have_names(own_web_server: WebServer, page: Page) -> None:
    at = datetime.now(UTC) - timedelta(days=1)
    own_web_server.apply(
        [
            RequestOpened(
                request=ServiceRequest(
                    service_request_id=f"kbd:{n}",
                    source="kbd",
                    source_request_id=str(n),
                    service_code="pothole",
                    service_name="Pothole",
                    status=RequestStatus.OPEN,
                    raw_status="Open",
                    lat=CENTER_LAT + 0.02,
                    long=CENTER_LONG + 0.02,
                    requested_datetime=at,
                    updated_datetime=at,
                ),
                occurred_at=at,
            )
            for n in range(3)
        ]
    )
    _ready(page, f"{own_web_server.url}/?request=kbd:0")
    group = page.locator(".marker-cluster").first
    expect(group).to_have_attribute("aria-label", "3 requests here. Press Enter to show them.")
    assert group.get_attribute("role") == "button"


def test_status_has_a_shape_as_well_as_a_colour(page: Page, web_server: WebServer) -> None:
    _ready(page, web_server.url + "/")
    shapes = page.evaluate(
        """() => ['open', 'acknowledged', 'in_progress', 'closed'].map(s => {
             const e = document.querySelector('.legend .swatch.status-' + s);
             const c = getComputedStyle(e);
             return [c.borderRadius, c.borderStyle, c.backgroundImage].join('|');
           })"""
    )
    assert len(set(shapes)) == 4, shapes


@pytest.mark.parametrize("reduce", [True, False])
def test_reduced_motion_stops_the_map_animations(
    page: Page, web_server: WebServer, reduce: bool
) -> None:
    page.emulate_media(reduced_motion="reduce" if reduce else "no-preference")
    _ready(page, web_server.url + "/")
    animated = page.locator("#map").evaluate(
        "m => ['leaflet-fade-anim', 'leaflet-zoom-anim'].some(c => m.classList.contains(c))"
    )
    assert animated is not reduce


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/#alert",
        "/track",
        "/track?id=webtest:1003",
        "/stats",
        "/embed/builder",
        "/accessibility",
        "/subscriptions/confirmed",
        "/no-such-page",
    ],
)
def test_pages_reflow_at_320_px(page: Page, web_server: WebServer, path: str) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(web_server.url + path)
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        screenshot(page, "reflow-320-" + path.strip("/").replace("/", "-").replace("?", "-"))
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 320 px wide"


@pytest.mark.parametrize("path", ["/", "/#alert", "/track?id=webtest:1003", "/stats", "/?lang=es"])
def test_pages_stay_usable_at_200_percent_zoom(
    page: Page, web_server: WebServer, path: str
) -> None:
    # 200% zoom of a 1280 x 720 window leaves 640 x 360 CSS pixels (WCAG 1.4.4 and 1.4.10).
    page.set_viewport_size({"width": 640, "height": 360})
    page.goto(web_server.url + path)
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 200% zoom"
    # Still usable: Tab moves to something on screen and inside the width; the menu and
    # the language switch are there to reach.
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_be_visible()
    box = focused.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 640
    for link in (
        page.get_by_role("navigation").get_by_role("link").first,
        page.locator(".lang-switch"),
    ):
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 640
    if path in ("/", "/?lang=es"):
        alert_me = re.compile("Alert me about a place|Avisarme sobre un lugar")
        expect(page.get_by_role("button", name=alert_me)).to_be_visible()
