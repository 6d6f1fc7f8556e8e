"""Journeys 2 and 3 of issue 13, whole: real Chromium, the four services as processes, a real
broker and a real SMTP server. Each test reads the screen and the inbox as a person would.

2. A shop owner finds their address by typing it, picks 500 m, sees an honest preview, signs
   up, confirms from the email, gets exactly one email per matching event, edits the radius,
   pauses, resumes, unsubscribes in one click and lands on a page that names what stopped.
3. A resident types the city's bare request number on Track, follows it, and gets each status
   change once, even when the request is also inside their own area alert (one email, both
   reasons).

"No second email" is proved without sleeping: one person's commands reach the notifier in
order (key = recipient), so once the matcher has counted an event and a later event's email
has arrived, any email the earlier event caused has arrived too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.system.conftest import Stack, readable, request_record, running_stack
from tests.e2e.web.conftest import POPUP_INSIDE_MAP, screenshot
from tests.e2e.web.tiles import tile_png

pytestmark = pytest.mark.browser

# St. Petersburg, FL. The two journeys' places are ~5 km apart, so neither one's alerts or
# preview see the other's requests.
SHOP = (27.77100, -82.67900)  # "2400 Central Ave": the shop, and a request filed there
NEAR_SHOP = (27.77280, -82.67900)  # ~200 m north
SHOP_EAST = (27.77100, -82.67600)  # ~300 m east
SHOP_800M = (27.77820, -82.67900)  # ~800 m north: outside 500 m, inside 1 km
FAR_FROM_SHOP = (27.78900, -82.67900)  # ~2 km north
HOME = (27.80500, -82.64000)  # the resident's area alert
NUMBER = "56922334"  # the city's own request number, as printed on the resident's receipt
CONFIRM = re.compile(r"https?://[^\s\"'<>]+/api/subscriptions/confirm\?token=[\w.\-]+")


def _link(pattern: str, message: EmailMessage) -> str:
    """The URL on the plain-text line that starts with `pattern` (what a reader clicks)."""
    found = re.search(re.escape(pattern) + r" (https?://\S+)", readable(message))
    assert found, f"no {pattern!r} link in:\n{readable(message)}"
    return found.group(1)


def _alerts(stack: Stack, email: str) -> list[EmailMessage]:
    """Everything sent to `email` except the confirmation."""
    return [m for m in stack.mail_to(email) if "confirm" not in str(m["Subject"]).lower()]


def _wait_for_mail_saying(stack: Stack, email: str, text: str) -> EmailMessage:
    """The first email to `email` whose subject or body says `text`."""
    return stack.wait_for_mail(lambda m: email in str(m["To"]) and text in readable(m))


def _metric(port: int, name: str) -> float:
    """The sum of one metric's samples over its labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def _matcher(stack: Stack, name: str) -> float:
    return _metric(stack.ports.matcher_port, name)


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Poll until `condition` holds (a service's state, read over HTTP)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.1)


def _events_seen(stack: Stack) -> float:
    return _matcher(stack, "matcher_events_total")


def _wait_matched(stack: Stack, before: float, count: int) -> None:
    """Wait until the matcher has matched `count` more events than `before`."""
    _until(lambda: _events_seen(stack) >= before + count, f"the matcher reading {count} events")


def _push_and_match(stack: Stack, *records: dict[str, Any]) -> None:
    """Push requests through the ingestor and wait until the matcher has handled them all."""
    before = _events_seen(stack)
    stack.push(*records)
    _wait_matched(stack, before, len(records))


def _confirm_in_browser(page: Page, stack: Stack, email: str, after: int) -> EmailMessage:
    """Open the confirmation email's link, as the person would; wait for the matcher to know.

    `after`: how many messages the sink held before the sign-up.
    """
    message = stack.wait_for_mail(lambda m: email in str(m["To"]), after=after)
    assert "confirm" in str(message["Subject"]).lower(), message["Subject"]
    links = CONFIRM.findall(readable(message))
    assert links and links[0].startswith(stack_url(stack)), readable(message)
    active = stack.matcher_active_subscriptions()
    page.goto(links[0])
    expect(page.get_by_role("heading", level=1)).to_have_text("Your alert is confirmed")
    _until(lambda: stack.matcher_active_subscriptions() > active, "the matcher holding the alert")
    return message


def stack_url(stack: Stack) -> str:
    """The site as the public (and the emails' links) see it."""
    return f"http://localhost:{stack.ports.map_api_port}"


@pytest.fixture(scope="module")
def journey_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Broker, SMTP server and the four services as processes, for this module's journeys."""
    extra = {"NOTIFIER_DIGEST_CHECK_S": "1", "NOTIFIER_INSTANT_PER_HOUR": "1000"}
    with running_stack(tmp_path_factory.mktemp("journeys"), extra) as stack:
        yield stack


@pytest.fixture
def person(page: Page) -> Page:
    """A browser page with the public tile server answered locally (no outside host in tests)."""
    page.route(
        "https://tile.openstreetmap.org/**",
        lambda route: route.fulfill(body=tile_png(), content_type="image/png"),
    )
    return page


def _history(now: datetime) -> list[dict[str, Any]]:
    """Two weeks of data: two requests within 500 m of the shop, one far away (the newest)."""

    def at(days: int) -> dict[str, Any]:
        moment = (now - timedelta(days=days)).isoformat()
        return {"requested_datetime": moment, "updated_datetime": moment}

    return [
        request_record("j2-shop", *SHOP, address="2400 Central Ave", **at(14)),
        request_record("j2-north", *NEAR_SHOP, address="2400 1st Ave N", **at(7)),
        request_record("j2-far", *FAR_FROM_SHOP, address="2400 9th Ave N", **at(0)),
    ]


def test_journey_2_shop_owner_from_address_search_to_one_click_unsubscribe(
    person: Page, journey_stack: Stack
) -> None:
    stack, page, site = journey_stack, person, stack_url(journey_stack)
    email = "shop-owner@example.org"
    stack.push(*_history(datetime.now(UTC).replace(microsecond=0)))
    for rid in ("j2-shop", "j2-north", "j2-far"):
        stack.wait_for_request(f"push:{rid}")

    # Find the shop by typing its address (the addresses the city's own requests carry).
    page.goto(site + "/#alert")
    expect(page.locator("#alert-form")).to_be_visible()
    box = page.get_by_role("combobox", name="Address")
    box.fill("2400 Cen")
    options = page.locator("#alert-place-list [role=option]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("2400 Central Ave")
    box.press("ArrowDown")
    box.press("Enter")
    expect(page.locator("#alert-chosen")).to_have_text("Alert around 2400 Central Ave.")
    page.locator("#alert-radius").fill("43")  # the slider's 500 m stop
    expect(page.locator("#alert-radius-out")).to_have_text("500 m")
    # Honest: 2 matching events in the 14 days of data there are, so 1 a week, said to be rough.
    expect(page.locator("#alert-preview")).to_have_text(
        "About 1 alert per week (based on the 14 days of data we have, so a rough guess). "
        "2 in that time."
    )
    page.locator("#alert-preview").scroll_into_view_if_needed()
    screenshot(page, "journey2-1-address-and-preview", full_page=False)
    form = page.locator("#alert-form")  # the page has other forms (a department's digest)
    form.get_by_label("How often").select_option(label="As it happens")
    form.get_by_label("Your email").fill(email)
    form.get_by_label("Name this alert (optional)").fill("Shop")
    inbox = len(stack.sink.messages)
    form.get_by_role("button", name="Send me a confirmation email").click()
    expect(page.locator("#alert-message")).to_contain_text("Check your inbox")

    _confirm_in_browser(page, stack, email, inbox)
    expect(page.locator("#alert-name")).to_have_text(
        "Your alert: Requests within 500 m of a point on the map"
    )
    screenshot(page, "journey2-2-confirmed")

    # One email per matching event; the far request sends nothing.
    _push_and_match(
        stack,
        request_record("j2-far-new", *FAR_FROM_SHOP, address="2500 9th Ave N"),
        request_record("j2-east", *SHOP_EAST, address="2430 Central Ave"),
    )
    opened = stack.wait_for_mail(lambda m: email in str(m["To"]) and "2430" in str(m["Subject"]))
    assert "Why you got this: within 500 m" in readable(opened)
    assert 'subscription "Shop"' in readable(opened)
    updated = request_record("j2-east", *SHOP_EAST, address="2430 Central Ave")
    stack.push({**updated, "status": "in_progress", "status_notes": "Crew assigned"})
    stack.wait_for_mail(lambda m: email in str(m["To"]) and "Crew assigned" in readable(m))
    alerts = _alerts(stack, email)
    assert [str(m["Subject"]) for m in alerts] == [
        "New request: Pothole at 2430 Central Ave",
        "Updated: Pothole at 2430 Central Ave",
    ], [m["Subject"] for m in alerts]

    # The email's links work: the request's page, then the manage page.
    page.goto(_link("Track this request:", alerts[1]))
    expect(page.locator("#track-title")).to_have_text("Pothole")
    expect(page.locator("#track-details")).to_contain_text("push:j2-east")
    page.goto(_link("Manage your subscriptions:", alerts[1]))
    card = page.locator(".sub-item").filter(has_text="Shop")
    expect(card).to_contain_text("Within 500 m of a point on the map")
    expect(card).to_contain_text("Status: active")

    # Edit the radius to 1 km: a request 800 m away now reaches the inbox.
    changes = _matcher(stack, "matcher_subscription_changes_total")
    card.get_by_label("Radius").select_option("1000")
    card.get_by_role("button", name="Update this alert").click()
    expect(page.locator("#manage-message")).to_contain_text("Saved")
    expect(card).to_contain_text("Within 1 km of a point on the map")
    # The small map shows the whole 1 km circle (it once overflowed the map's box).
    ring_inside = card.locator(".place-map").evaluate(
        """m => { const r = m.querySelector('path.alert-circle').getBoundingClientRect();
                  const b = m.getBoundingClientRect();
                  return r.width > 0 && r.top >= b.top && r.bottom <= b.bottom
                    && r.left >= b.left && r.right <= b.right; }"""
    )
    assert ring_inside, "the alert's circle does not fit its small map"
    _until(
        lambda: _matcher(stack, "matcher_subscription_changes_total") > changes,
        "the matcher applying the new radius",
    )
    stack.push(request_record("j2-800m", *SHOP_800M, address="2400 5th Ave N"))
    stack.wait_for_mail(lambda m: email in str(m["To"]) and "2400 5th Ave N" in str(m["Subject"]))
    screenshot(page, "journey2-3-manage-radius")

    # Pause: a request inside sends nothing. Resume: the next one does.
    active = stack.matcher_active_subscriptions()
    card.get_by_role("button", name="Pause these emails").click()
    expect(card).to_contain_text("Status: paused")
    expect(card.get_by_role("button", name="Resume these emails")).to_be_visible()
    _until(lambda: stack.matcher_active_subscriptions() < active, "the matcher pausing the alert")
    screenshot(page, "journey2-4-paused")
    _push_and_match(stack, request_record("j2-paused", *SHOP, address="2402 Central Ave"))
    card.get_by_role("button", name="Resume these emails").click()
    expect(card).to_contain_text("Status: active")
    _until(lambda: stack.matcher_active_subscriptions() == active, "the matcher resuming it")
    stack.push(request_record("j2-resumed", *SHOP, address="2404 Central Ave"))
    last = stack.wait_for_mail(lambda m: email in str(m["To"]) and "2404" in str(m["Subject"]))
    alerts = _alerts(stack, email)
    assert len(alerts) == 4, [m["Subject"] for m in alerts]  # none for the paused time
    assert not any("2402" in readable(m) for m in alerts)

    # One click on the email's stop link; the page names what stopped and leads back.
    page.goto(_link("Unsubscribe from Shop:", last))
    expect(page.locator("#alert-name")).to_contain_text("“Shop”")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    expect(page.locator("#alert-name")).to_contain_text("“Shop”: Requests within 1 km")
    expect(page.get_by_role("link", name="Back to the map")).to_be_visible()
    screenshot(page, "journey2-5-unsubscribed")
    _until(lambda: stack.matcher_active_subscriptions() < active, "the matcher dropping it")


def test_journey_3_resident_tracks_the_city_number_and_hears_each_change_once(
    person: Page, journey_stack: Stack
) -> None:
    stack, page, site = journey_stack, person, stack_url(journey_stack)
    email = "resident@example.org"
    # The resident has an area alert around home; a request is then reported inside it.
    target = {"kind": "circle", "lat": HOME[0], "long": HOME[1], "radius_m": 500}
    stack.subscribe({"email": email, "label": "Home", "delivery": "instant", "target": target})
    photo = f"{site}/static/leaflet/images/layers-2x.png"  # the city's photo (a same-site image)
    record = request_record(
        NUMBER, HOME[0] + 0.001, HOME[1], address="1200 4th St N", media_url=photo
    )
    stack.push(record)
    stack.wait_for_mail(lambda m: email in str(m["To"]) and "1200 4th St N" in str(m["Subject"]))

    # The bare number from the receipt, not "push:56922334".
    page.goto(site + "/track")
    page.get_by_label("Request number").fill(NUMBER)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#track-title")).to_have_text("Pothole")
    expect(page.locator("#track-details")).to_contain_text(f"push:{NUMBER}")
    page.get_by_label("Your email").fill(email)
    inbox = len(stack.sink.messages)
    page.get_by_role("button", name="Follow this request").click()
    expect(page.locator("#follow-message")).to_contain_text("Check your inbox")
    screenshot(page, "journey3-1-track-and-follow")
    _confirm_in_browser(page, stack, email, inbox)

    for status, note in (("in_progress", "Crew assigned"), ("closed", "Pothole filled")):
        stack.push({**record, "status": status, "status_notes": note})
        _wait_for_mail_saying(stack, email, note)
    # A new request near home (area alert only) comes after any stray second email.
    stack.push(request_record("j3-later", HOME[0] - 0.001, HOME[1], address="1100 4th St N"))
    stack.wait_for_mail(lambda m: email in str(m["To"]) and "1100 4th St N" in readable(m))

    alerts = _alerts(stack, email)
    assert [str(m["Subject"]) for m in alerts] == [
        "New request: Pothole at 1200 4th St N",
        "Update: Pothole is now In progress",
        "Update: Pothole is now Closed",
        "New request: Pothole at 1100 4th St N",
    ], [m["Subject"] for m in alerts]
    for message in alerts[1:3]:
        text = readable(message)
        assert "Why you got this (one email for 2 of your alerts):" in text, text
        assert "- You follow this request." in text
        assert "- It is within 500 m of Home" in text
    assert f"Photo of the reported problem: {photo}" in readable(alerts[2])
    # "See it on the map" opens the map at the request, its popup (with the photo) in view.
    page.goto(_link("See it on the map:", alerts[2]))
    popup = page.locator(".leaflet-popup .popup")
    expect(popup).to_have_attribute("data-request-id", f"push:{NUMBER}")
    expect(popup.get_by_role("img", name="Photo of the reported problem")).to_be_visible()
    expect(popup.locator(".popup-status")).to_contain_text("Closed")
    page.wait_for_function(POPUP_INSIDE_MAP)
    screenshot(page, "journey3-2-map-from-email", full_page=False)
    # The followed request's email leads to its page, which shows where it ended.
    page.goto(_link("Track this request:", alerts[2]))
    expect(page.locator("#track-title")).to_have_text("Pothole")
    expect(page.locator("#track-status")).to_contain_text("Closed")
    expect(page.get_by_role("img", name="Photo of the reported problem")).to_be_visible()
    expect(page.locator("#track-map .leaflet-tile-loaded").first).to_be_visible()
    screenshot(page, "journey3-3-closed")
    # The manage page names what the resident follows (not just an id), beside the area alert.
    page.goto(_link("Manage your subscriptions:", alerts[2]))
    cards = page.locator(".sub-item")
    expect(cards.filter(has_text="Home")).to_contain_text("Within 500 m of a point on the map")
    expect(cards.filter(has_text=f"push:{NUMBER}")).to_contain_text(
        f"Updates on Pothole at 1200 4th St N (request push:{NUMBER})"
    )
    screenshot(page, "journey3-4-manage")
