"""The HTML page routes: each renders one template with its configuration as JSON data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from connect311_contracts.datasets import dataset_words
from connect311_map_api.api.departments_routes import (
    PeriodParam,
    department_filters,
    view_or_error,
)
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.http_cache import cacheable
from connect311_map_api.web.confirmed import CONFIRMED_COOKIE, confirmed_alert_name
from connect311_map_api.web.dataset_words import datasets_config
from connect311_map_api.web.i18n import (
    N_,
    format_locale,
    js_catalog,
    language_context,
    page_environment,
    remember_language,
    request_language,
)
from connect311_map_api.web.security import OSM_TILE_URL, page_headers
from connect311_map_api.web.stats_widget import widget_context

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATUSES = ("open", "acknowledged", "in_progress", "closed")
_CONFIRM_TITLES = {"": N_("Subscription confirmed"), "inactive": N_("Alert no longer active")}
# The axe-core release the browser tests run (tests/e2e/web/test_accessibility_axe.py checks
# this matches the one the axe-playwright-python wheel ships).
AXE_CORE_VERSION = "4.12.1"
_FILTER_MAX = 300  # longest filter value a page accepts (the API validates further)


@dataclass(frozen=True)
class MapConfig:
    """What the map scripts need from the server settings."""

    tile_url: str
    tile_attribution: str
    center_lat: float | None
    center_long: float | None
    zoom: int
    cluster_below_zoom: int

    def as_json(self) -> dict[str, Any]:
        """The config as the pages' JSON data block carries it.

        `center` is null when the deployment set none: the scripts then fit the map to the
        extent of the requests (/api/extent), so the first view always shows the data.
        """
        centred = self.center_lat is not None and self.center_long is not None
        return {
            "tileUrl": self.tile_url,
            "tileAttribution": self.tile_attribution,
            "center": [self.center_lat, self.center_long] if centred else None,
            "zoom": self.zoom,
            "clusterBelowZoom": self.cluster_below_zoom,
        }


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def map_config(settings: Any) -> MapConfig:
    """Read the map settings defensively (no centre and OpenStreetMap by default)."""
    return MapConfig(
        tile_url=str(getattr(settings, "tile_url", None) or OSM_TILE_URL),
        tile_attribution=str(
            getattr(settings, "tile_attribution", None) or "© OpenStreetMap contributors"
        ),
        center_lat=_optional_float(getattr(settings, "map_center_lat", None)),
        center_long=_optional_float(getattr(settings, "map_center_long", None)),
        zoom=int(getattr(settings, "map_zoom", 12)),
        cluster_below_zoom=int(getattr(settings, "map_server_cluster_below_zoom", 13)),
    )


def embed_view(lat: float | None, long: float | None, zoom: int | None) -> dict[str, Any]:
    """The starting view an embed snippet chose (builder), or nothing: fit to its requests."""
    if lat is None or long is None:
        return {"center": None}  # not the city's centre: an agency's requests may be elsewhere
    return {"center": [lat, long], "zoom": zoom if zoom is not None else 15}


def _clean(value: str | None) -> str:
    """A filter value from the query string, trimmed and bounded."""
    return (value or "").strip()[:_FILTER_MAX]


def _confirmed_name(ctx: Any, token: str | None, lang: str) -> str | None:
    """The just-confirmed alert, named from the confirm link's cookie (None when unknown)."""
    return confirmed_alert_name(
        ctx.engine,
        ctx.signing.secret_key.get_secret_value(),
        token,
        int(ctx.settings.confirm_token_max_age_s),
        lang,
    )


def build_router(settings: Any) -> APIRouter:
    """The router with every HTML page of the site."""
    # Every page gets its language, the scripts' strings and the language switch's links.
    templates = Jinja2Templates(
        env=page_environment(TEMPLATES_DIR), context_processors=[language_context]
    )
    config = map_config(settings)
    # Pages show times in the city's zone, as its emails do (MAP_API_DISPLAY_TIMEZONE).
    time_zone = str(getattr(settings, "display_timezone", None) or "America/New_York")
    router = APIRouter(include_in_schema=False)
    contact = str(getattr(settings, "accessibility_contact", "") or "").strip()

    def render(
        request: Request,
        template: str,
        *,
        page: str,
        title: str,
        extra: dict[str, Any] | None = None,
        embeddable: bool = False,
        photos: bool = False,
    ) -> HTMLResponse:
        data = {
            "page": page,
            "timeZone": time_zone,
            # How the scripts name and draw each known dataset, in the page's language.
            "datasets": datasets_config(request_language(request)),
            **config.as_json(),
            **(extra or {}),
        }
        context = {
            "title": title,
            "page": page,
            "config": data,
            "statuses": STATUSES,
            "i18n": js_catalog(request_language(request), template),
        }
        response = templates.TemplateResponse(
            request,
            template,
            context,
            headers=page_headers(config.tile_url, embeddable=embeddable, photos=photos),
        )
        remember_language(request, response)
        return response

    @router.get("/", response_class=HTMLResponse)
    def map_page(request: Request) -> HTMLResponse:
        """The live map of every request, with filters and "Alert me"."""
        # The hour a department digest goes out, for the sign-up's words (MAP_API_...).
        hour = {"digestHour": int(getattr(settings, "department_digest_hour", 7))}
        return render(
            request, "map.html", page="map", title=N_("Live 311 map"), photos=True, extra=hour
        )

    @router.get("/track", response_class=HTMLResponse)
    def track_page(request: Request, id: str | None = Query(default=None)) -> HTMLResponse:
        """Track one request by id: its timeline and follow-by-email."""
        return render(
            request,
            "track.html",
            page="track",
            title=N_("Track my request"),
            extra={"requestId": _clean(id)},
            photos=True,
        )

    @router.get("/requests/{service_request_id:path}", response_class=HTMLResponse)
    def request_page(request: Request, service_request_id: str) -> HTMLResponse:
        """The link alert emails carry: the tracking page for one request."""
        return render(
            request,
            "track.html",
            page="track",
            title=N_("Track my request"),
            extra={"requestId": _clean(service_request_id)},
            photos=True,
        )

    @router.get("/stats", response_class=HTMLResponse)
    def stats_page(request: Request) -> HTMLResponse:
        """Department statistics: opened vs resolved and time to close."""
        return render(request, "stats.html", page="stats", title=N_("Department statistics"))

    @router.get("/stats/departments", response_class=HTMLResponse)
    def departments_page(request: Request) -> HTMLResponse:
        """Departments compared: due dates met, backlog by age, trend; CSV and widget."""
        return render(request, "departments.html", page="stats", title=N_("Department performance"))

    @router.get("/embed/stats", response_class=HTMLResponse)
    def stats_widget_page(
        request: Request,
        filters: Annotated[RequestFilters, Depends(department_filters)],
        period: PeriodParam = "month",
    ) -> Response:
        """Our opened vs resolved this month, for another site's iframe: no script, cached."""
        ctx = request.app.state.ctx
        view = view_or_error(ctx, filters, period)
        lang = request_language(request)
        response = templates.TemplateResponse(
            request,
            "embed_stats.html",
            {"w": widget_context(view, filters, format_locale(lang), time_zone)},
        )
        # No language cookie is set from inside another site's iframe; the language is the
        # snippet's ?lang= or the reader's browser, so caches keep one copy per language.
        headers = page_headers(config.tile_url, embeddable=True)
        headers.pop("Cache-Control")  # cacheable() sets it: public, for the widget's minute
        headers |= {"Vary": "Accept-Language, Cookie", "Content-Language": lang}
        return cacheable(
            request,
            bytes(response.body),
            "text/html; charset=utf-8",
            int(ctx.settings.stats_max_age_s),
            headers,
        )

    @router.get("/embed", response_class=HTMLResponse)
    def embed_page(
        request: Request,
        agency: str | None = None,
        service_code: str | None = None,
        status: str | None = None,
        dataset: str | None = None,
        lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
        long: Annotated[float | None, Query(ge=-180, le=180)] = None,
        zoom: Annotated[int | None, Query(ge=0, le=19)] = None,
    ) -> HTMLResponse:
        """A filtered map for another site's iframe (the one page that may be framed).

        `lat`, `long` and `zoom` fix the starting view (the builder puts the preview's view in
        the snippet); without them the embed opens fitted to its own requests.
        """
        filters = {
            "agency": _clean(agency),
            "service_code": _clean(service_code),
            "status": ",".join(s for s in _clean(status).split(",") if s in STATUSES),
            "dataset": _clean(dataset),
        }
        # A crime-only embed has no statuses: its legend shows none (issue 17).
        named = [d.strip() for d in filters["dataset"].split(",") if d.strip()]
        has_status = not named or any(dataset_words(d).has_status for d in named)
        return render(
            request,
            "embed.html",
            page="embed",
            title=N_("311 map"),
            extra={"fixedFilters": filters, "hasStatus": has_status, **embed_view(lat, long, zoom)},
            embeddable=True,
            photos=True,
        )

    @router.get("/embed/builder", response_class=HTMLResponse)
    def embed_builder_page(request: Request) -> HTMLResponse:
        """Build the iframe snippet for a filtered map."""
        return render(request, "builder.html", page="builder", title=N_("Embed the map"))

    @router.get("/accessibility", response_class=HTMLResponse)
    def accessibility_page(request: Request) -> HTMLResponse:
        """The accessibility statement: standard, how it is tested, limits, how to report."""
        return render(
            request,
            "accessibility.html",
            page="accessibility",
            title=N_("Accessibility statement"),
            extra={"axeCore": AXE_CORE_VERSION, "contact": contact},
        )

    @router.get("/webhooks", response_class=HTMLResponse)
    def webhooks_page(request: Request) -> HTMLResponse:
        """Alerts by webhook for the people signing up: headers, how to check a signature."""
        return render(request, "webhooks.html", page="webhooks", title=N_("Alerts by webhook"))

    @router.get("/subscriptions/confirmed", response_class=HTMLResponse)
    def confirmed_page(request: Request, error: str | None = None) -> HTMLResponse:
        """Shown after a subscriber follows the confirmation link; names the alert."""
        name = None
        ctx = getattr(request.app.state, "ctx", None)
        if not error and ctx is not None:
            name = _confirmed_name(
                ctx, request.cookies.get(CONFIRMED_COOKIE), request_language(request)
            )
        return render(
            request,
            "confirmed.html",
            page="confirmed",
            title=_CONFIRM_TITLES.get(_clean(error), N_("Confirmation failed")),
            extra={"error": _clean(error), "alertName": name},
        )

    @router.get("/subscriptions/manage", response_class=HTMLResponse)
    def manage_page(request: Request, token: str | None = None) -> HTMLResponse:
        """Lists, changes and deletes one person's subscriptions (by their signed link)."""
        return render(
            request,
            "manage.html",
            page="manage",
            title=N_("Manage my alerts"),
            extra={"token": (token or "").strip()[:2000]},
        )

    return router
