"""The other pages in a real browser: alert me, track, stats, embed and its builder, phones."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, SEEDED, TIMELINE_ID, WATER, in_agency

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"


def test_alert_me_circle_posts_a_subscription_and_confirms(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    before = len(web_server.publisher.confirmations)
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    page.get_by_role("button", name="Alert me about a place").click()
    box = page.locator("#map").bounding_box()
    assert box is not None
    # The map centre lies between the seeded requests (~500 m from the nearest marker).
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    circle = page.locator("path.alert-circle")
    expect(circle).to_have_count(1)
    small = circle.bounding_box()
    slider = page.get_by_label("Radius")
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#alert-radius-out")).not_to_have_text("500 m")
    bigger = circle.bounding_box()
    assert small is not None and bigger is not None and bigger["width"] > small["width"] * 1.5
    page.get_by_label("Only this department (optional)").select_option(WATER)
    page.get_by_label("reopened").uncheck()
    expect(page.locator("#alert-preview")).to_contain_text("per week")
    shown = page.locator("#alert-preview").text_content() or ""
    page.get_by_label("Your email").fill("resident@example.org")
    page.get_by_label("Name this alert (optional)").fill("Home")
    page.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")
    screenshot(page, "web-alert-me")
    sub = web_server.publisher.confirmations[before].subscription
    assert sub.email == "resident@example.org"
    assert sub.target.kind == "circle"
    assert 500 < sub.target.radius_m <= 10_000
    assert sub.filters.agencies == (WATER,)
    # The name is kept with the subscription, never put in the confirmation email.
    assert sub.label is None
    stored = [s for s in web_server.publisher.changed if s.subscription_id == sub.subscription_id]
    assert stored and stored[-1].label == "Home"
    assert sub.status == "pending"
    assert sub.filters.event_kinds == ("opened", "updated", "closed")
    # The preview showed what the API estimates for exactly this target and these filters.
    estimate = page.request.post(
        "/api/subscriptions/preview",
        data={"target": sub.target.model_dump(), "filters": sub.filters.model_dump()},
    ).json()["per_week_average"]
    assert estimate > 0  # the circle covers Water Resources requests changed in the window
    rounded = round(estimate * 10) / 10 if estimate < 10 else round(estimate)
    assert shown.startswith(f"About {rounded:g} alert"), (shown, estimate)
    assert problems.errors == []


def test_alert_me_area_draws_a_polygon(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    before = len(web_server.publisher.confirmations)
    page.goto("/#alert")
    expect(page.locator("#alert-form")).to_be_visible()
    page.get_by_label("An area I draw").check()
    box = page.locator("#map").bounding_box()
    assert box is not None
    for fx, fy in ((0.2, 0.2), (0.6, 0.25), (0.5, 0.7)):
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    expect(page.locator("#alert-area-count")).to_contain_text("3 points")
    expect(page.locator("path.alert-area")).to_have_count(1)
    page.get_by_label("Your email").fill("walker@example.org")
    page.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")
    target = web_server.publisher.confirmations[before].subscription.target
    assert target.kind == "area"
    ring = target.geometry["coordinates"][0]
    assert len(ring) == 4 and ring[0] == ring[-1]
    assert problems.errors == []


def test_track_shows_the_timeline_and_offers_follow(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    before = len(web_server.publisher.confirmations)
    seed = next(s for s in SEEDED if s.service_request_id == TIMELINE_ID)
    page.goto("/track")
    page.get_by_label("Request number").fill(TIMELINE_ID)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#track-title")).to_have_text(seed.service_name)
    expect(page.locator("#track-timeline .timeline-entry")).to_have_count(len(seed.notes) + 1)
    for note in seed.notes:
        expect(page.locator("#track-timeline")).to_contain_text(note)
    page.get_by_label("Your email").fill("me@example.org")
    page.get_by_role("button", name="Follow this request").click()
    expect(page.locator("#follow-message")).to_contain_text("Check your inbox")
    screenshot(page, "web-track")
    target = web_server.publisher.confirmations[before].subscription.target
    assert target.kind == "follow" and target.service_request_id == TIMELINE_ID
    page.goto("/track?id=webtest:does-not-exist")
    expect(page.locator("#track-message")).to_contain_text("No request with id")
    assert [e for e in problems.errors if "404" not in e] == []


def test_stats_page_charts_opened_vs_resolved_by_department(
    page: Page, problems: PageProblems
) -> None:
    page.goto("/stats")
    rows = page.locator("#stats-table tbody tr")
    agencies = sorted({s.agency for s in SEEDED})
    expect(rows).to_have_count(len(agencies))
    for agency in agencies:
        row = rows.filter(has=page.get_by_role("rowheader", name=agency))
        opened = sum(1 for s in SEEDED if s.agency == agency)
        resolved = sum(1 for s in SEEDED if s.agency == agency and s.final_status == "closed")
        expect(row.locator("td").nth(0)).to_have_text(str(opened))
        expect(row.locator("td").nth(1)).to_have_text(str(resolved))
    expect(page.locator("#chart-agency rect.series-opened")).to_have_count(len(agencies))
    expect(page.locator("#chart-agency rect.series-resolved")).to_have_count(len(agencies))
    expect(page.locator("#chart-period rect.bar").first).to_be_visible()
    closing = {s.agency for s in SEEDED if s.final_status == "closed"}
    expect(page.locator("#chart-close rect.series-median")).to_have_count(len(closing))
    screenshot(page, "web-stats")
    assert problems.errors == []


def test_embed_shows_only_its_department_and_may_be_framed(
    page: Page, problems: PageProblems
) -> None:
    response = page.goto("/embed?agency=Water%20Resources")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "x-frame-options" not in response.headers
    expect(page.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
    expect(page.locator("#embed-title")).to_have_text(f"311 requests: {WATER}")
    link = page.get_by_role("link", name="Subscribe to this view")
    href = link.get_attribute("href") or ""
    assert parse_qs(urlsplit(href).query)["agency"] == [WATER]
    assert href.endswith("#alert")
    screenshot(page, "web-embed")
    assert problems.errors == []


def test_embed_builder_produces_the_snippet(page: Page, problems: PageProblems) -> None:
    page.goto("/embed/builder")
    page.get_by_label("Department").select_option(WATER)
    snippet = page.get_by_label("Snippet to paste")
    expect(snippet).to_have_value(
        f'<iframe src="{page.url.split("/embed")[0]}/embed?agency=Water%20Resources" '
        'width="600" height="450" title="311 service requests map" loading="lazy" '
        'style="border:0"></iframe>'
    )
    preview = page.frame_locator("#b-preview")
    expect(preview.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
    screenshot(page, "web-embed-builder")
    assert problems.errors == []


def test_pages_refuse_framing_and_carry_a_strict_csp(page: Page) -> None:
    for path in ("/", "/track", "/stats", "/embed/builder", "/subscriptions/confirmed"):
        response = page.request.get(path)
        assert response.status == 200, path
        headers = response.headers
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert "<script>" not in response.text(), path  # only src= scripts and JSON data
    static = page.request.get("/static/leaflet/leaflet.js")
    assert static.status == 200 and static.headers["x-content-type-options"] == "nosniff"


def test_keyboard_opens_a_popup_and_focus_is_visible(page: Page) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    outline = skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"
    marker = page.locator(MARKERS).first
    marker.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".leaflet-popup .popup")).to_be_visible()


def test_alert_me_works_with_the_keyboard_alone(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    before = len(web_server.publisher.confirmations)
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    start = page.get_by_role("button", name="Alert me about a place")
    start.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Around a point")).to_be_focused()
    page.keyboard.press("Tab")  # the address search comes first (issue 13), then the centre
    expect(page.get_by_role("combobox", name="Address")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="use the centre of the map")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("path.alert-circle")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Radius")).to_be_focused()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#alert-radius-out")).not_to_have_text("500 m")
    page.get_by_label("Your email").focus()
    page.keyboard.type("keys@example.org")
    page.keyboard.press("Enter")
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")
    sub = web_server.publisher.confirmations[before].subscription
    assert sub.email == "keys@example.org"
    assert sub.target.kind == "circle" and 50 <= sub.target.radius_m < 500
    assert abs(sub.target.lat - CENTER_LAT) < 1e-4 and abs(sub.target.long - CENTER_LONG) < 1e-4
    assert problems.errors == []


PHONE = {"width": 390, "height": 844}
PHONE_PAGES = {
    "map": "/",
    "track": f"/requests/{TIMELINE_ID}",
    "stats": "/stats",
    "embed": "/embed?agency=Water%20Resources",
    "builder": "/embed/builder",
    "confirmed": "/subscriptions/confirmed",
}


@pytest.mark.parametrize("name", sorted(PHONE_PAGES))
def test_pages_work_at_a_phone_viewport(browser: Browser, base_url: str, name: str) -> None:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, base_url=base_url
    )
    try:
        page = context.new_page()
        page.goto(PHONE_PAGES[name])
        page.wait_for_load_state("networkidle")
        if name in ("map", "embed"):
            expect(page.locator(MARKERS).first).to_be_visible()
            map_box = page.locator("#map").bounding_box()
            assert map_box is not None and map_box["width"] >= PHONE["width"] - 2
        if name == "map":
            # Filters start folded on a phone; the header's "Get alerts" opens "Alert me".
            expect(page.locator("details.filters-box")).not_to_have_attribute("open", "")
            page.get_by_role("link", name="Get alerts").click()
            expect(page.get_by_label("Your email")).to_be_visible()
            expect(page.locator("#alert-form")).to_be_in_viewport()
            # The map stays in sight (sticky) so a place can be tapped while filling the form.
            expect(page.locator("#map")).to_be_in_viewport()
            page.locator("#map").tap(position={"x": 30, "y": 200})
            expect(page.locator("path.alert-circle")).to_have_count(1)
            screenshot(page, "web-phone-alert-me", full_page=False)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px on a phone"
        screenshot(page, f"web-phone-{name}")
    finally:
        context.close()


def sign_up(page: Page, email: str, target: dict[str, object], label: str) -> None:
    """Create a pending subscription through the JSON API (set-up, not under test here)."""
    response = page.request.post(
        "/api/subscriptions",
        data={"email": email, "target": target, "delivery": "daily", "label": label},
    )
    assert response.status == 202, response.text()


def test_confirmation_link_lands_on_the_confirmed_page(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    before = len(web_server.publisher.confirmations)
    sign_up(
        page,
        "confirm-me@example.org",
        {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 300},
        "Work",
    )
    command = web_server.publisher.confirmations[before]
    assert command.confirm_url.startswith(web_server.url)
    page.goto(command.confirm_url)
    assert urlsplit(page.url).path == "/subscriptions/confirmed"
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")
    screenshot(page, "web-confirmed")
    page.goto("/subscriptions/confirmed?error=expired")
    expect(page.get_by_role("heading", level=1)).to_have_text("We could not confirm that alert")
    assert problems.errors == []


def test_manage_page_lists_changes_and_deletes_subscriptions(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    email = "manage-me@example.org"
    before = len(web_server.publisher.confirmations)
    sign_up(page, email, {"kind": "follow", "service_request_id": TIMELINE_ID}, "My report")
    sign_up(page, email, {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 800}, "Home")
    subs = [c.subscription for c in web_server.publisher.confirmations[before:]]
    token = sign_subscription_token(SECRET, TokenPurpose.MANAGE, subs[0].subscription_id)
    page.goto(f"/subscriptions/manage?token={token}")
    items = page.locator(".sub-item")
    expect(items).to_have_count(2)
    expect(page.locator("#manage-message")).to_have_text("You have 2 alerts.")
    home = items.filter(has_text="Home")
    expect(home).to_contain_text("Within 800 m of a point")
    expect(home).to_contain_text("Status: waiting for you to confirm")
    home.get_by_label("How often").select_option("weekly")
    home.get_by_role("button", name="Save").click()
    expect(page.locator("#manage-message")).to_have_text("Saved.")
    changed = web_server.publisher.changed[-1]
    assert changed.subscription_id == subs[1].subscription_id and changed.delivery == "weekly"
    screenshot(page, "web-manage")
    items.filter(has_text="My report").get_by_role("button", name="Delete this alert").click()
    expect(items).to_have_count(1)
    assert web_server.publisher.deleted[-1] == subs[0].subscription_id
    page.goto("/subscriptions/manage?token=not-a-token")
    expect(page.locator("#manage-message")).to_contain_text("invalid or has expired")
    assert [e for e in problems.errors if "400" not in e] == []
