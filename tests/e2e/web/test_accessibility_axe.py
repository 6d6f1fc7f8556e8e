"""axe-core (shipped in the axe-playwright-python wheel) finds no WCAG 2.0/2.1 A/AA violation
on any page, in any state a person reaches (issue 16).

Each state is its own test, so a failure names the page; the report lists every violation
with the elements and axe's message. The per-page counts are written to
test-artifacts/axe-report.json (with the axe-core version) for the issue's note.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.web.pages import AXE_CORE_VERSION
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import ARTIFACTS, WebServer
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, TIMELINE_ID

pytestmark = pytest.mark.browser

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE = Axe()
AXE_VERSION = AXE.axe_script.split("axe v", 1)[1].split()[0]
_COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_report() -> Iterator[None]:
    """After the module: every state checked, its violation count, and the axe version."""
    yield
    ARTIFACTS.mkdir(exist_ok=True)
    report = {"axe_core": AXE_VERSION, "tags": WCAG_AA, "violations": _COUNTS}
    (ARTIFACTS / "axe-report.json").write_text(json.dumps(report, indent=2) + "\n")


def check(page: Page, state: str) -> None:
    """Run axe on the page as it is now; fail with axe's report on any violation."""
    results = AXE.run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}})
    _COUNTS[state] = results.violations_count
    assert results.violations_count == 0, f"{state}:\n{results.generate_report()}"


def _ready_map(page: Page, url: str = "/") -> None:
    page.goto(url)
    # Generous: the shared app's per-client read limit may make the map wait and retry.
    expect(page.locator("#map")).to_have_attribute("data-state", "ready", timeout=20_000)


def _signed_up(page: Page, server: WebServer, label: str) -> str:
    """A pending circle alert made through the API; returns its subscription id."""
    target = {"kind": "circle", "lat": CENTER_LAT, "long": CENTER_LONG, "radius_m": 300}
    answer = page.request.post(
        server.url + "/api/subscriptions",
        data={"email": f"{label}@example.org", "target": target, "label": label},
    )
    assert answer.status == 202, answer.text()
    return server.publisher.confirmations[-1].subscription.subscription_id


def test_map(page: Page) -> None:
    _ready_map(page)
    check(page, "map")


def test_map_with_a_popup_open(page: Page) -> None:
    # Leaflet fades popups in and out, and opening one pans the map, which redraws the
    # markers and so the popup: half-faded text is no state a reader stays in. With reduced
    # motion (which the map honours) nothing fades, so axe measures the popup as it is read.
    page.emulate_media(reduced_motion="reduce")
    _ready_map(page)
    page.locator(".leaflet-marker-icon.req-marker").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".leaflet-popup .timeline .timeline-entry").first).to_be_visible()
    expect(page.locator(".leaflet-popup")).to_have_count(1)
    expect(page.locator(".leaflet-popup")).to_have_css("opacity", "1")
    check(page, "map, popup open")


def test_map_list_view(page: Page) -> None:
    _ready_map(page)
    expect(page.locator("#request-list li").first).to_be_visible()
    check(page, "map, list view")


def test_alert_me_steps(page: Page) -> None:
    _ready_map(page, "/#alert")
    expect(page.locator("#alert-form")).to_be_visible()
    check(page, "alert me: form open")
    page.get_by_role("button", name="use the centre of the map").click()
    expect(page.locator("#alert-preview")).to_contain_text("alert")
    check(page, "alert me: place chosen")
    page.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).not_to_be_empty()
    check(page, "alert me: email missing")
    page.get_by_label("Your email").fill("axe@example.org")
    page.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")
    check(page, "alert me: sent")


def test_embed_list_open(page: Page) -> None:
    _ready_map(page, "/embed")
    page.locator(".embed-list summary").click()
    expect(page.locator("#request-list li").first).to_be_visible()
    check(page, "embed, list open")


def test_alert_me_area(page: Page) -> None:
    _ready_map(page, "/#alert")
    page.get_by_label("An area I draw").check()
    for _ in range(3):
        page.get_by_role("button", name="Add map centre as a point").click()
        page.locator("#map").focus()
        page.keyboard.press("ArrowRight")
    check(page, "alert me: area")


@pytest.mark.parametrize(
    ("state", "url", "ready"),
    [
        ("track: empty", "/track", "#track-form"),
        ("track: found", f"/track?id={TIMELINE_ID}", "#track-title"),
        ("track: not found", "/track?id=webtest:no-such-request", "#track-message"),
        ("stats", "/stats", ".chart-svg"),
        ("embed", "/embed", "#map[data-state=ready]"),
        ("embed builder", "/embed/builder", "iframe"),
        ("api docs", "/docs", ".swagger-ui, redoc, #docs"),
        ("404", "/no-such-page", "h1, body"),
        ("accessibility statement", "/accessibility", "h1"),
        ("webhooks help", "/webhooks", "#verify-code"),
        ("map in Spanish", "/?lang=es", "#map[data-state=ready]"),
        ("track in Spanish: found", f"/track?id={TIMELINE_ID}&lang=es", "#track-title"),
    ],
)
def test_page(page: Page, state: str, url: str, ready: str) -> None:
    page.goto(url)
    expect(page.locator(ready).first).to_be_visible(timeout=20_000)
    if state == "track: not found":
        expect(page.locator("#track-message")).not_to_be_empty()
    check(page, state)


def test_confirm_manage_and_unsubscribe(page: Page, web_server: WebServer) -> None:
    base = web_server.url
    sid = _signed_up(page, web_server, "axe-manage")
    page.goto(web_server.publisher.confirmations[-1].confirm_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")
    check(page, "confirmed")
    page.goto(base + "/subscriptions/confirmed?error=expired")
    check(page, "confirmed: expired link")
    manage = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    page.goto(f"{base}/subscriptions/manage?token={manage}")
    expect(page.locator(f'.sub-item[data-subscription-id="{sid}"]')).to_be_visible()
    check(page, "manage")
    page.goto(f"{base}/subscriptions/manage?token=not-a-token")
    expect(page.locator("#manage-message")).not_to_be_empty()
    check(page, "manage: bad link")
    leave = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
    page.goto(f"{base}/api/subscriptions/unsubscribe?token={leave}")
    check(page, "unsubscribe: ask")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    check(page, "unsubscribe: done")


def test_the_statement_names_the_axe_core_release_the_tests_run() -> None:
    assert AXE_VERSION == AXE_CORE_VERSION, "update AXE_CORE_VERSION in web/pages.py"
