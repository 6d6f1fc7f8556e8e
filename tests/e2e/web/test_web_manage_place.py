"""Manage moves an alert's place (issue 13): by the address search or a click on the small
map, saved through the same publish path as the radius; the confirmed page names the alert."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, position

pytestmark = pytest.mark.browser


def test_a_subscriber_moves_the_alert_by_address_and_by_the_map(
    page: Page, own_web_server: WebServer, problems: PageProblems
) -> None:
    base, publisher = own_web_server.url, own_web_server.publisher
    target = {"kind": "circle", "lat": CENTER_LAT, "long": CENTER_LONG, "radius_m": 250}
    answer = page.request.post(
        base + "/api/subscriptions",
        data={"email": "shop@example.org", "target": target, "label": "Log in at evil.example"},
    )
    assert answer.status == 202, answer.text()
    sid = publisher.confirmations[-1].subscription.subscription_id
    page.goto(publisher.confirmations[-1].confirm_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")
    expect(page.locator("#alert-name")).to_have_text(
        "Your alert: Requests within 250 m of a point on the map"
    )
    assert "evil.example" not in page.content()
    screenshot(page, "web-confirmed-names-alert")

    page.goto(
        f"{base}/subscriptions/manage?token="
        + sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    )
    card = page.locator(f'.sub-item[data-subscription-id="{sid}"]')
    expect(card.locator(".leaflet-tile-loaded").first).to_be_visible()
    box = card.get_by_role("combobox", name="Move to an address")
    box.fill("105 Cent")
    option = card.locator("[role=option]")
    expect(option).to_have_count(1)
    box.press("ArrowDown")
    box.press("Enter")
    expect(card.locator("[data-place-status]")).to_contain_text("Moved to 105 Central Ave N")
    card.get_by_role("button", name="Update this alert").click()
    expect(page.locator("#manage-message")).to_contain_text("Saved")
    moved = publisher.changed[-1].target
    lat, long = position(5)
    assert moved.kind == "circle"
    assert (round(moved.lat, 4), round(moved.long, 4), moved.radius_m) == (
        round(lat, 4),
        round(long, 4),
        250,
    )
    screenshot(page, "web-manage-place-moved")

    # A click on the small map moves it again (the redrawn card's map is centred on it).
    small_map = card.locator(".place-map")
    size = small_map.bounding_box()
    assert size is not None and size["height"] > 100, "the small map has room"
    # Up and right of the centre (the zoom buttons are top left, the credits bottom right).
    small_map.click(position={"x": size["width"] - 50, "y": 50})
    expect(page.locator("#manage-message")).to_contain_text("Place moved on the map")
    card.get_by_role("button", name="Update this alert").click()
    expect(page.locator("#manage-message")).to_contain_text("Saved")
    clicked = publisher.changed[-1].target
    assert clicked.kind == "circle" and clicked.lat > moved.lat and clicked.long > moved.long
    assert problems.errors == []
