"""What a newcomer to the local run sees: API docs with no network, inbox links that open.

`/docs` renders the API's operations with every request beyond the site refused; a link in an
email shown in the local inbox opens the site in a new tab (not a refused frame), and a URL in
the plain-text part is a link.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from connect311_local.broker import free_port
from connect311_local.mailcatcher import Inbox, inbox_app, start_smtp
from tests.e2e.web.conftest import PageProblems, WebServer, screenshot, uvicorn_thread

pytestmark = pytest.mark.browser


def test_docs_render_offline_with_only_self_scripts(
    page: Page, web_server: WebServer, problems: PageProblems
) -> None:
    blocked: list[str] = []

    def offline(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:  # as with no network: a CDN asset would never arrive
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    response = page.goto(f"{web_server.url}/docs")
    assert response is not None
    csp = response.headers["content-security-policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"

    # The operations list is Swagger UI's work: it only appears once its script ran and read
    # /openapi.json.
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    paths = page.locator(".opblock-summary-path")
    expect(paths.filter(has_text="/api/subscriptions").first).to_be_visible()
    assert page.locator(".opblock").count() > 10
    screenshot(page, "api-docs-offline", full_page=False)
    assert blocked == []
    assert problems.errors == []


@pytest.fixture
def inbox_url() -> Iterator[tuple[str, Inbox]]:
    """The local mail catcher's web inbox, served by uvicorn on a free port."""
    inbox, port = Inbox(), free_port()
    with uvicorn_thread(inbox_app(inbox), port):
        yield f"http://127.0.0.1:{port}", inbox


def _deliver(inbox: Inbox, site: str) -> None:
    smtp_port = free_port()
    controller = start_smtp(inbox, smtp_port)
    message = EmailMessage()
    message["From"], message["To"] = "alerts@city.example", "resident@example.org"
    message["Subject"] = "New request near Home"
    message.set_content(f"See it on the map: {site}/track?id=nyc:56922334.")
    message.add_alternative(
        f'<p><a id="see" href="{site}/track?id=nyc:56922334">See it</a></p>', subtype="html"
    )
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.send_message(message)
        deadline = time.monotonic() + 10
        while not inbox.all() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        controller.stop()


def test_inbox_links_open_the_site_in_a_new_tab(
    page: Page, web_server: WebServer, inbox_url: tuple[str, Inbox]
) -> None:
    url, inbox = inbox_url
    _deliver(inbox, web_server.url)
    page.goto(url)
    page.get_by_role("link", name="New request near Home").click()

    with page.context.expect_page() as opened:
        page.frame_locator("iframe").locator("#see").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == f"{web_server.url}/track?id=nyc:56922334"
    assert tab.title()  # the site's page, not a refused frame
    tab.close()

    text_link = page.locator("pre a")
    expect(text_link).to_have_attribute("href", f"{web_server.url}/track?id=nyc:56922334")
    with page.context.expect_page() as opened:
        text_link.click()
    assert opened.value.url == f"{web_server.url}/track?id=nyc:56922334"
    screenshot(page, "local-inbox-message", full_page=False)
