"""Issue 19 in a real browser: the map's visible "Feed" link follows the filters and the view,
and points to an Atom feed of exactly the requests the map shows; an alert's private feed
address is on its manage page, and making a new one stops the old (410)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import feedparser
import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, SEEDED, WATER, in_agency

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"
MANAGE = TokenPurpose.MANAGE


def test_the_map_feed_follows_the_filters_and_an_alert_feed_can_be_replaced(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    link = page.get_by_role("link", name="Feed of this view (Atom)")
    expect(link).to_have_attribute("href", re.compile(r"^/feeds/requests\.atom\?bbox="))
    page.get_by_label("Department", exact=True).select_option(WATER)
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(MARKERS)).to_have_count(len(in_agency(WATER)))
    href = link.get_attribute("href") or ""
    query = parse_qs(urlsplit(href).query)
    assert urlsplit(href).path == "/feeds/requests.atom"
    assert query["agency"] == [WATER] and len(query["bbox"][0].split(",")) == 4
    # The page's <link rel="alternate"> (feed autodiscovery) follows too.
    head = page.locator('head link[rel="alternate"][type="application/atom+xml"]')
    expect(head).to_have_attribute("href", href)
    answer = page.request.get(href)
    assert answer.status == 200
    feed = feedparser.parse(answer.body())
    assert feed.bozo == 0
    shown = {unquote(e.link.rsplit("/", 1)[1]) for e in feed.entries}
    assert shown == in_agency(WATER)

    # The same resident's alert: its private feed address is on the manage page, and a new
    # address stops the old one.
    target = {"kind": "circle", "lat": CENTER_LAT, "long": CENTER_LONG, "radius_m": 2000}
    signed_up = page.request.post(
        "/api/subscriptions", data={"email": "feeds@example.org", "target": target}
    )
    assert signed_up.status == 202, signed_up.text()
    confirmation = web_server.publisher.confirmations[-1]
    page.goto(confirmation.confirm_url)
    sid = confirmation.subscription.subscription_id
    page.goto("/subscriptions/manage?token=" + sign_subscription_token(SECRET, MANAGE, sid))
    card = page.locator(f'.sub-item[data-subscription-id="{sid}"]')
    field = card.get_by_label("Private feed (Atom) of this alert")
    expect(field).to_have_value(re.compile(r"/feeds/subscription\.atom\?token="))
    old = field.input_value()
    private = page.request.get(old)
    assert private.status == 200 and feedparser.parse(private.body()).bozo == 0
    assert private.headers["cache-control"].startswith("private")
    card.get_by_role("button", name="Make a new feed address").click()
    expect(page.locator("#manage-message")).to_contain_text("the old one no longer works")
    expect(field).not_to_have_value(old)
    assert page.request.get(old).status == 410
    assert page.request.get(field.input_value()).status == 200
    screenshot(page, "web-manage-feed-address")
    assert problems.errors == []
