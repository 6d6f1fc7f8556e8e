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
    deepLinking: false, // true puts a link inside each operation's button (nested controls)
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
})();
"""

# Swagger UI's own colours fail WCAG AA contrast (white on light blue/green method badges,
# light-blue links): the same hues, darkened to at least 4.5:1 (issue 16).
_A11Y_CSS = """\
.swagger-ui .opblock .opblock-summary-method { color: #fff; }
.swagger-ui .opblock.opblock-get .opblock-summary-method { background: #0b5cad; }
.swagger-ui .opblock.opblock-post .opblock-summary-method { background: #1b6e2f; }
.swagger-ui .opblock.opblock-put .opblock-summary-method { background: #8a4500; }
.swagger-ui .opblock.opblock-delete .opblock-summary-method { background: #b3261e; }
.swagger-ui .opblock.opblock-patch .opblock-summary-method { background: #0f6b62; }
.swagger-ui .opblock.opblock-head .opblock-summary-method,
.swagger-ui .opblock.opblock-options .opblock-summary-method { background: #5c3d99; }
.swagger-ui .info .title small { background: #4a5261; }
.swagger-ui .info .title small.version-stamp { background: #3d6b00; }
.swagger-ui .info .title small pre,
.swagger-ui .info .title small.version-stamp pre { color: #fff; }
.swagger-ui .info .base-url, .swagger-ui .info a, .swagger-ui .url { color: #1a5296; }
.swagger-ui .opblock-tag small, .swagger-ui .opblock .opblock-summary-description,
.swagger-ui .parameter__in, .swagger-ui .parameter__type, .swagger-ui .prop-format,
.swagger-ui .response-col_links, .swagger-ui .model-title, .swagger-ui .model .property,
.swagger-ui table thead tr th, .swagger-ui .opblock-description-wrapper p { color: #2b2f36; }
.swagger-ui .json-schema-2020-12-expand-deep-button { color: #3d4450; }
.swagger-ui .parameter__name.required span,
.swagger-ui .parameter__name.required::after { color: #b3261e; }
@media (prefers-reduced-motion: reduce) {
  .swagger-ui * { transition: none !important; animation: none !important; }
}
"""
A11Y_CSS_URL = "/docs/a11y.css"

_PAGE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API docs</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="{a11y_css}">
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
            a11y_css=html.escape(root + A11Y_CSS_URL),
        )
        return HTMLResponse(page, headers=_headers())

    @app.get(A11Y_CSS_URL, include_in_schema=False)
    async def docs_a11y_css() -> Response:
        return Response(_A11Y_CSS, media_type="text/css", headers=_headers())

    @app.get(INIT_URL, include_in_schema=False)
    async def docs_init() -> Response:
        return Response(_INIT_JS, media_type="text/javascript", headers=_headers())


__all__ = ["ASSETS_URL", "DOCS_CSP", "DOCS_URL", "install"]
