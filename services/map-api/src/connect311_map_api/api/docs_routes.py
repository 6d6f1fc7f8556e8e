"""`/docs`: Swagger UI served from this site, so the API docs work offline and behind a strict CSP.

FastAPI's own `/docs` loads Swagger UI from a CDN and starts it with an inline script: blank with
no network, and refused by a CSP that allows only 'self'. Here the assets come from the
installed `fastapi-offline` package (Swagger UI 5, which reads OpenAPI 3.1) and the start-up
script is a same-origin file, so the page needs nothing but this site.
"""

from __future__ import annotations

import html
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static/docs"
DOCS_URL = "/docs"
INIT_URL = "/docs/init.js"

DOCS_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # Swagger UI's icons are data: SVGs in its CSS
        "connect-src 'self'",  # the OpenAPI document and "Try it out"
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The docs page's CSP: scripts, styles and requests only from this site."""

# The OpenAPI URL comes from the page (a data attribute), so the file is the same for every
# deployment and root path. validatorUrl null: no badge image fetched from swagger.io.
_INIT_JS = """\
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
})();
"""

_PAGE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API docs</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head><body>
<div id="swagger-ui" data-openapi-url="{openapi}">
<noscript>The API docs need JavaScript; the raw description is at {openapi}.</noscript></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{init}"></script>
</body></html>
"""


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": DOCS_CSP,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


def install(app: FastAPI) -> None:
    """Serve `/docs` and its assets locally; create the app with `docs_url=None`."""
    if app.docs_url is not None:
        raise RuntimeError("create the app with docs_url=None so /docs is served from this site")
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = _PAGE.format(
            title=html.escape(app.title),
            assets=html.escape(root + ASSETS_URL),
            openapi=html.escape(root + openapi_url),
            init=html.escape(root + INIT_URL),
        )
        return HTMLResponse(page, headers=_headers())

    @app.get(INIT_URL, include_in_schema=False)
    async def docs_init() -> Response:
        return Response(_INIT_JS, media_type="text/javascript", headers=_headers())


__all__ = ["ASSETS_URL", "DOCS_CSP", "DOCS_URL", "install"]
