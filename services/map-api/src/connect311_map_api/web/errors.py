"""A page a person can read for "not found": HTML for browsers, JSON for everything else.

A mistyped link used to show a bare `{"detail":"Not Found"}` with no title, no language and no
way back. Browsers asking for HTML outside the API now get the site's own page (its header,
its menu, a link home); API clients and anything not asking for HTML keep FastAPI's JSON.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from connect311_map_api.web.i18n import (
    N_,
    language_context,
    page_environment,
    request_language,
)
from connect311_map_api.web.security import server_page_headers

_TEMPLATES = Jinja2Templates(
    env=page_environment(Path(__file__).parent / "templates"),
    context_processors=[language_context],
)
# Machine paths keep their JSON answers whatever the client's Accept header says.
_MACHINE_PREFIXES = ("/api/", "/open311/", "/static/", "/metrics", "/health", "/openapi")


def wants_html(request: Request) -> bool:
    """A browser navigating to a page (not a script, not an API path)."""
    if request.url.path.startswith(_MACHINE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 404 or not wants_html(request):
        return await http_exception_handler(request, exc)
    return _TEMPLATES.TemplateResponse(
        request,
        "not_found.html",
        {"title": N_("Page not found"), "page": "error"},
        status_code=404,
        headers={**server_page_headers(), "Content-Language": request_language(request)},
    )


def install_error_pages(app: FastAPI) -> None:
    """Answer a browser's 404 with the site's page; every other error is unchanged."""
    app.add_exception_handler(StarletteHTTPException, _not_found)


__all__ = ["install_error_pages", "wants_html"]
