"""Issue 16, server side: a browser's 404 is a page with a title, a language and a way home;
API clients keep JSON; the accessibility statement and the docs' contrast fixes are served."""

from __future__ import annotations

from fastapi.testclient import TestClient

from connect311_map_api.api.docs_routes import DOCS_CSP

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_a_browser_gets_a_readable_not_found_page(client: TestClient) -> None:
    answer = client.get("/no-such-page", headers=HTML)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    body = answer.text
    assert '<html lang="en">' in body
    assert "<title>Page not found · Connect311</title>" in body
    assert 'href="/"' in body and 'id="main"' in body


def test_api_clients_and_api_paths_keep_json_404s(client: TestClient) -> None:
    plain = client.get("/no-such-page")
    assert plain.status_code == 404 and plain.json() == {"detail": "Not Found"}
    # A browser reading an API path (e.g. a mistyped link to JSON) still gets the API's JSON.
    api = client.get("/api/requests/webtest:missing", headers=HTML)
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/json")
    wrong_method = client.delete("/track", headers=HTML)
    assert wrong_method.status_code == 405  # other errors are untouched


def test_the_accessibility_statement_is_linked_from_every_page(client: TestClient) -> None:
    statement = client.get("/accessibility")
    assert statement.status_code == 200
    assert "WCAG" in statement.text and "2.1" in statement.text and "axe-core 4." in statement.text
    assert "Report a barrier" in statement.text
    for path in ("/", "/track", "/stats", "/no-such-page"):
        assert 'href="/accessibility"' in client.get(path, headers=HTML).text, path


def test_the_docs_page_loads_its_contrast_fixes_from_this_site(client: TestClient) -> None:
    page = client.get("/docs").text
    assert 'href="/docs/a11y.css"' in page
    css = client.get("/docs/a11y.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".opblock-summary-method" in css.text
    assert css.headers["content-security-policy"] == DOCS_CSP
    assert "deepLinking: false" in client.get("/docs/init.js").text
