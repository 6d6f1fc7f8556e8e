"""Issue 19 in a real browser: "Alert me" offers a webhook (the server's refusal shown at the
URL field), shows its signing secret once; the manage page names the webhook by its host only,
says whether the notifier has checked it (and when), rotates the secret (unchecked again),
and turns a webhook the notifier turned off back on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from connect311_contracts.subscriptions import SubscriptionBounced, WebhookVerified
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_contracts.webhooks import webhook_secret
from connect311_local.broker import free_port
from connect311_map_api.consumers import store_webhook_check
from tests.e2e.web.app_under_test import SECRET
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot
from tests.e2e.web.test_accessibility_axe import check

pytestmark = pytest.mark.browser


def test_a_webhook_signup_shows_its_secret_once_and_manage_rotates_it(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    # A receiver on loopback (allow-listed, MAP_API_WEBHOOK_ALLOW); its path stands for the
    # key a Slack or Teams URL carries, which no page may show. The map API only checks the
    # URL: nothing is posted to it here (the notifier does that, tested on its own).
    hook = f"http://127.0.0.1:{free_port()}/hooks/T0KEY/B0KEY/s3cr3tpath"
    page.goto("/#alert")
    expect(page.locator("#map")).to_have_attribute("data-state", "ready", timeout=20_000)
    page.get_by_role("button", name="use the centre of the map").click()
    page.get_by_label("By email and by webhook").check()
    page.get_by_label("Your email").fill("hooks@example.org")
    url_field = page.get_by_label("Webhook URL")
    send = page.get_by_role("button", name="Send me a confirmation email")

    # The server decides: a private address is refused, its reason next to the field.
    url_field.fill("https://10.1.2.3/hook")
    send.click()
    expect(page.locator("#alert-webhook-error")).to_contain_text("cannot be used")
    expect(url_field).to_be_focused()
    expect(url_field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#alert-message")).to_have_text("Could not sign up: see the webhook URL.")
    screenshot(page, "web-webhook-url-refused", full_page=False)

    url_field.fill(hook)
    send.click()
    box = page.locator("#alert-secret [data-secret-box]")
    expect(box).to_be_focused()
    confirmation = web_server.publisher.confirmations[-1]
    sub = confirmation.subscription
    assert sub.webhook is not None and sub.webhook.url == hook and sub.email_alerts
    sid = sub.subscription_id
    expect(box.get_by_role("textbox", name="Signing secret")).to_have_value(
        webhook_secret(SECRET, sid, 1)
    )
    expect(box).to_contain_text("it will not be shown again")
    expect(url_field).not_to_have_attribute("aria-invalid", "true")
    check(page, "alert me: webhook secret shown")
    screenshot(page, "web-webhook-secret-shown", full_page=False)

    page.goto(confirmation.confirm_url)
    manage = "/subscriptions/manage?token=" + sign_subscription_token(
        SECRET, TokenPurpose.MANAGE, sid
    )
    page.goto(manage)
    card = page.locator(f'.sub-item[data-subscription-id="{sid}"]')
    host = hook.split("/")[2]
    expect(card).to_contain_text(f"Webhook: {host} (Standard Webhooks JSON)")
    expect(card).to_contain_text("Told by: email and webhook")
    check_line = card.locator("[data-webhook-check]")
    expect(check_line).to_have_text("Webhook not checked yet: it is checked before its next alert.")
    # The notifier's handshake passed (what the feedback consumer does with its message).
    engine = web_server.app.state.ctx.engine
    checked = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    assert store_webhook_check(
        engine, WebhookVerified(subscription_id=sid, secret_version=1, occurred_at=checked)
    )
    page.goto(manage)
    expect(check_line).to_have_attribute("data-webhook-check", "checked")
    # In the page's language and the city's zone (New York): "Mar 1, 2026, 12:30 PM EST".
    expect(check_line).to_contain_text("Webhook checked: delivered on Mar 1, 2026, 12:30")
    expect(check_line).to_contain_text("EST.")
    card.scroll_into_view_if_needed()
    screenshot(page, "web-manage-webhook-checked", full_page=False)
    card.get_by_role("button", name="Rotate the secret").click()
    expect(page.locator("#manage-message")).to_contain_text("New secret made")
    # A new secret is not checked yet: the notifier checks it before the next alert.
    expect(check_line).to_have_attribute("data-webhook-check", "unchecked")
    rotated = card.locator("[data-secret-box]")
    expect(rotated).to_be_focused()
    expect(rotated.get_by_role("textbox", name="Signing secret")).to_have_value(
        webhook_secret(SECRET, sid, 2)
    )

    # The notifier turned it off (what the map API's feedback consumer does with its message).
    bounce = SubscriptionBounced(
        subscription_id=sid, reason="20 failures", permanent=True, disable=True, channel="webhook"
    )
    service = web_server.app.state.ctx.service
    assert asyncio.run_coroutine_threadsafe(service.bounced(bounce), web_server.loop).result(5)
    page.goto(manage)
    expect(card.locator("[data-webhook]")).to_have_attribute("data-webhook", "off")
    expect(card).to_contain_text("Webhook turned off")
    expect(check_line).to_have_count(0)  # turned off: whether it was checked says nothing
    card.get_by_role("button", name="Turn the webhook back on").click()
    expect(page.locator("#manage-message")).to_contain_text("The webhook is back on")
    expect(card.locator("[data-webhook]")).to_have_attribute("data-webhook", "on")
    expect(card.get_by_role("textbox", name="Signing secret")).to_have_value(
        webhook_secret(SECRET, sid, 3)
    )
    assert "s3cr3tpath" not in page.content()  # the host only, ever
    check(page, "manage: webhook back on, new secret shown")
    card.scroll_into_view_if_needed()
    screenshot(page, "web-manage-webhook-rotated")
    # The new secret checked, read in Spanish: the words and the date as Spanish writes them.
    again = WebhookVerified(subscription_id=sid, secret_version=3, occurred_at=checked)
    assert store_webhook_check(engine, again)
    page.get_by_role("link", name="Español").click()
    expect(check_line).to_contain_text("Webhook comprobado: entregado el 1 mar 2026")
    card.scroll_into_view_if_needed()
    screenshot(page, "web-manage-webhook-checked-es", full_page=False)
    # The browser logs the refused sign-up's 422; nothing else went wrong.
    assert [e for e in problems.errors if "status of 422" not in e] == []
    assert len(problems.errors) == 1
