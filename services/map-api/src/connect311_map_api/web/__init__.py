"""The web pages of the map API: map, alert sign-up, tracking, stats, embeds, management."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import xstatic.pkg.leaflet as xs_leaflet
import xstatic.pkg.leaflet_markercluster as xs_markercluster
from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from connect311_map_api.web.errors import install_error_pages
from connect311_map_api.web.pages import build_router

STATIC_DIR = Path(__file__).parent / "static"


class _NosniffStaticFiles(StaticFiles):
    """Static files that also tell browsers not to guess content types."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_web(app: FastAPI, settings: Any) -> None:
    """Add the HTML pages and their static files (own JS/CSS, Leaflet, MarkerCluster)."""
    # The libraries come from the installed XStatic packages; each folder is mounted whole
    # because Leaflet finds its marker images relative to its CSS.
    app.mount("/static/leaflet", _NosniffStaticFiles(directory=xs_leaflet.BASE_DIR), name="leaflet")
    app.mount(
        "/static/markercluster",
        _NosniffStaticFiles(directory=xs_markercluster.BASE_DIR),
        name="markercluster",
    )
    app.mount("/static/web", _NosniffStaticFiles(directory=STATIC_DIR), name="web-static")
    app.include_router(build_router(settings))
    install_error_pages(app)


__all__ = ["mount_web"]
