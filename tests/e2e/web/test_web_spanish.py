"""The site in Spanish, in a real browser (issue 16): the language switch in the header (a
link, reached with the keyboard) turns the map, its list, popups and "Alert me" Spanish and
is remembered; the sign-up carries the language; a Spanish alert email reads well."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from tests.e2e.web.conftest import POPUP_INSIDE_MAP, PageProblems, WebServer, screenshot
from tests.e2e.web.seed import SEEDED
from tests.unit.notifier.factories import event, matched, request, subscription

pytestmark = pytest.mark.browser

MARKERS = ".leaflet-marker-icon.req-marker"


def test_the_map_in_spanish_with_alert_me(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    page.goto("/")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    switch = page.get_by_role("link", name="Español")
    expect(switch).to_have_attribute("hreflang", "es")
    switch.focus()  # a plain link: reached and followed with the keyboard
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    # What the scripts write is Spanish too: the live status, the list, the legend.
    expect(page.locator("#map-status")).to_have_text(f"{len(SEEDED)} solicitudes mostradas")
    expect(page.locator("#request-list-summary")).to_contain_text("solicitudes en la vista")
    expect(page.get_by_role("heading", name="Leyenda")).to_be_visible()
    expect(page.get_by_role("link", name="English")).to_have_attribute("lang", "en")
    # A request's popup: Spanish labels around the city's own words.
    page.locator(MARKERS).first.focus()
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup")
    expect(popup.locator(".timeline .timeline-entry").first).to_be_visible()
    expect(popup).to_contain_text("Historial")
    expect(popup).to_contain_text("Ver o seguir esta solicitud")
    screenshot(page, "web-map-es")
    page.keyboard.press("Escape")

    # Remembered: the next page opens in Spanish with no ?lang= in its address.
    page.goto("/#alert")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.get_by_role("button", name="use el centro del mapa").click()
    expect(page.locator("#alert-preview")).to_contain_text("por semana")
    page.get_by_label("Su correo electrónico").fill("vecina@example.org")
    before = len(web_server.publisher.confirmations)
    page.get_by_role("button", name="Enviarme un correo de confirmación").click()
    expect(page.locator("#alert-message")).to_contain_text("Revise su bandeja de entrada")
    screenshot(page, "web-alert-me-es")
    sent = web_server.publisher.confirmations[before]
    assert sent.subscription.email == "vecina@example.org"
    assert sent.subscription.language == "es"  # its emails will be Spanish
    assert problems.errors == []


def test_a_spanish_alert_email_as_a_mail_client_shows_it(page: Page) -> None:
    renderer = Renderer.create(
        NotifierSettings(from_address="alertas@example.city"),
        LinkBuilder("https://311.example.city", "secret"),
    )
    req = request(
        status=RequestStatus.CLOSED, description="Bache grande en el carril derecho"
    ).model_copy(update={"closed_reason": ClosedReason.FIXED, "raw_status": "Work Completed"})
    sub = subscription(label="Casa").model_copy(update={"language": "es"})
    command = matched(sub, event(req, "closed", previous=RequestStatus.IN_PROGRESS), distance_m=312)
    message = renderer.alert(command, False, "<es@example.city>", datetime.now(UTC))
    html = next(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/html"
    )
    page.set_content(html)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("link", name="Verla en el mapa")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Cerrada — completada")
    expect(page.locator("body")).to_contain_text("a menos de 500 m de Casa (a 312 m)")
    screenshot(page, "email-alert-es")


def test_the_embed_lists_its_requests_for_the_keyboard(page: Page, web_server: WebServer) -> None:
    page.goto("/embed")
    expect(page.locator(MARKERS)).to_have_count(len(SEEDED))
    summary = page.locator(".embed-list summary")
    summary.focus()
    page.keyboard.press("Enter")  # a <details>: opened with the keyboard
    items = page.locator("#request-list .request-item")
    expect(items).to_have_count(len(SEEDED))
    items.first.locator("button.link").focus()  # "Show … on the map"
    page.keyboard.press("Enter")
    expect(page.locator(".leaflet-popup .popup-title")).to_be_focused()
    page.wait_for_function(POPUP_INSIDE_MAP)  # panned fully into view
    screenshot(page, "web-embed-list")
