"""Journeys 2 and 3, the screen side, in real Chromium (issue 13).

3. A resident types the city's bare request number on Track, sees the request with its photo
   and a small map, opens it on the full map (the email's "See it on the map" link), follows
   it; a number two feeds share asks which one.
2. A subscriber manages an alert: edits the radius, pauses, sees Resume, resumes, and
   unsubscribes in one click, landing on a styled page that names what stopped.
Screenshots go to test-artifacts/l_*.png.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.events import RequestOpened
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import POPUP_INSIDE_MAP, PageProblems, WebServer, screenshot
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG

pytestmark = pytest.mark.browser

NUMBER = "56922334"
SHARED = "4411"


def _request(source: str, number: str, name: str, photo: str | None, dlat: float) -> RequestOpened:
    at = datetime.now(UTC) - timedelta(days=2)
    return RequestOpened(
        request=ServiceRequest(
            service_request_id=f"{source}:{number}",
            source=source,
            source_request_id=number,
            service_code="pothole",
            service_name=name,
            agency_responsible="Transportation",
            status=RequestStatus.OPEN,
            raw_status="Open",
            description="Deep hole by the bus stop",
            address="1200 4th St N",
            lat=CENTER_LAT + dlat,
            long=CENTER_LONG + 0.005,
            requested_datetime=at,
            updated_datetime=at,
            media_url=photo,
        ),
        occurred_at=at,
    )


def _keep(page: Page, name: str, *, full_page: bool = True) -> None:
    screenshot(page, name, full_page=full_page)


def test_a_resident_tracks_by_the_city_number_sees_photo_and_map_and_follows(
    page: Page, own_web_server: WebServer, problems: PageProblems
) -> None:
    base = own_web_server.url
    photo = base + "/test-tiles/1/0/0.png"  # a same-site image: no outside host in tests
    own_web_server.apply(
        [
            _request("stpete", NUMBER, "Pothole", photo, 0.004),
            _request("stpete", SHARED, "Pothole", None, 0.006),
            _request("seeclickfix", SHARED, "Road hazard", None, 0.008),
        ]
    )
    page.goto(base + "/track")
    page.get_by_label("Request number").fill(NUMBER)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#track-title")).to_have_text("Pothole")
    expect(page.locator("#track-details")).to_contain_text(f"stpete:{NUMBER}")
    image = page.get_by_role("img", name="Photo of the reported problem")
    expect(image).to_be_visible()
    assert image.get_attribute("loading") == "lazy"
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("i => i.naturalWidth") > 0, "the photo loaded"
    expect(page.locator("#track-map .leaflet-tile-loaded").first).to_be_visible()
    expect(page.locator("#track-map .req-marker")).to_have_count(1)
    _keep(page, "l_track_number")

    # Follow it: the sign-up names the prefixed id the number resolved to.
    before = len(own_web_server.publisher.confirmations)
    page.get_by_label("Your email").fill("resident@example.org")
    page.get_by_role("button", name="Follow this request").click()
    expect(page.locator("#follow-message")).to_contain_text("Check your inbox")
    followed = own_web_server.publisher.confirmations[before].subscription.target
    assert followed.kind == "follow" and followed.service_request_id == f"stpete:{NUMBER}"

    # "See it on the map" (the email's link and the track page's): centred, popup open.
    page.get_by_role("link", name="Open on the full map").click()
    assert page.url == base + "/?request=" + quote(f"stpete:{NUMBER}", safe="")
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-request-id", f"stpete:{NUMBER}")
    expect(popup.get_by_role("img", name="Photo of the reported problem")).to_be_visible()
    # Opening the popup pans the map, which reloads the markers: the popup stays open.
    expect(page.locator("#map")).to_have_attribute("data-state", "ready")
    expect(popup.get_by_role("img", name="Photo of the reported problem")).to_be_visible()
    # The whole popup is on the map (its title was once cut off above it, under the header).
    page.wait_for_function(POPUP_INSIDE_MAP)
    _keep(page, "l_map_focus", full_page=False)  # a full-page capture resizes the map

    # A number two feeds share: the page asks which one.
    page.goto(base + "/track?id=" + SHARED)
    choices = page.locator("#track-choices button")
    expect(choices).to_have_count(2)
    expect(page.locator("#track-message")).to_contain_text("which one is yours")
    _keep(page, "l_track_choice")
    choices.filter(has_text="Road hazard").click()
    expect(page.locator("#track-title")).to_have_text("Road hazard")
    expect(page.locator("#track-details")).to_contain_text(f"seeclickfix:{SHARED}")
    assert problems.errors == []


def test_a_subscriber_edits_pauses_resumes_and_unsubscribes_in_one_click(
    page: Page, own_web_server: WebServer, problems: PageProblems
) -> None:
    base = own_web_server.url
    publisher = own_web_server.publisher
    target = {"kind": "circle", "lat": CENTER_LAT, "long": CENTER_LONG, "radius_m": 250}
    answer = page.request.post(
        base + "/api/subscriptions",
        data={"email": "shop@example.org", "target": target, "label": "Shop"},
    )
    assert answer.status == 202, answer.text()
    sub = publisher.confirmations[-1].subscription
    sid = sub.subscription_id
    page.goto(publisher.confirmations[-1].confirm_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")

    manage = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    page.goto(f"{base}/subscriptions/manage?token={manage}")
    card = page.locator(f'.sub-item[data-subscription-id="{sid}"]')
    expect(card).to_contain_text("Within 250 m of a point on the map")
    expect(card).to_contain_text("Status: active")

    card.get_by_label("Radius").select_option("500")
    card.get_by_role("button", name="Update this alert").click()
    expect(page.locator("#manage-message")).to_contain_text("Saved")
    expect(card).to_contain_text("Within 500 m of a point on the map")
    assert publisher.changed[-1].target.radius_m == 500  # type: ignore[union-attr]

    card.get_by_role("button", name="Pause these emails").click()
    expect(card).to_contain_text("Status: paused")
    expect(card.get_by_role("button", name="Resume these emails")).to_be_visible()
    expect(card.get_by_role("button", name="Pause these emails")).to_have_count(0)
    assert publisher.changed[-1].status is SubscriptionStatus.UNSUBSCRIBED
    _keep(page, "l_manage_paused")

    card.get_by_role("button", name="Resume these emails").click()
    expect(card).to_contain_text("Status: active")
    assert publisher.changed[-1].status.value == "active"  # (mypy narrows the enum above)

    leave = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
    page.goto(f"{base}/api/subscriptions/unsubscribe?token={leave}")
    expect(page.locator("#alert-name")).to_contain_text("“Shop”: Requests within 500 m of a point")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.locator("#alert-name")).to_contain_text("“Shop”: Requests within 500 m")
    # Styled like the site (its stylesheet applied), with ways back.
    header_colour = page.locator(".site-header").evaluate(
        "h => getComputedStyle(h).backgroundColor"
    )
    assert header_colour not in ("rgba(0, 0, 0, 0)", "transparent")
    expect(page.get_by_role("link", name="Back to the map")).to_have_attribute("href", "/")
    expect(page.get_by_role("link", name="Manage my alerts")).to_be_visible()
    assert publisher.changed[-1].status is SubscriptionStatus.UNSUBSCRIBED
    _keep(page, "l_unsubscribed")
    page.get_by_role("link", name="Manage my alerts").click()
    expect(card).to_contain_text("Status: paused")
    expect(card.get_by_role("button", name="Resume these emails")).to_be_visible()
    assert problems.errors == []
