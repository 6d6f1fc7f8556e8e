"""`/docs` renders the API's operations with no network beyond the site itself."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

from tests.e2e.web.conftest import PageProblems, WebServer, screenshot


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
    expect(page.locator(".opblock-summary-path", has_text="/api/subscriptions").first).to_be_visible()
    assert page.locator(".opblock").count() > 10
    screenshot(page, "api-docs-offline", full_page=False)
    assert blocked == []
    assert problems.errors == []
