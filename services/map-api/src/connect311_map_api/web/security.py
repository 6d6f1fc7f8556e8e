"""Security headers for the web pages: a strict CSP with no inline script, framing rules."""

from __future__ import annotations

from urllib.parse import urlsplit

OSM_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
"""The default base map (a setting; tests point it at a local route)."""


def tile_origin(tile_url: str) -> str | None:
    """The CSP source that allows images from the tile URL template (None when same-origin).

    A `{s}` subdomain placeholder becomes a `*.` wildcard so every tile server is allowed.
    """
    parts = urlsplit(tile_url)
    if not parts.scheme or not parts.netloc:
        return None  # a relative template: tiles come from this site ('self')
    host = parts.netloc
    if "{s}" in host:
        host = host.replace("{s}.", "*.").replace("{s}", "*")
    return f"{parts.scheme}://{host}"


PHOTO_SOURCE = "https:"
"""Where request photos may load from on the pages that show them (map, track, embed).

Photos are hosted wherever each city's system keeps them (SeeClickFix's CDN, a city's
Open311 server, a cloud bucket), so no fixed host list can be known. An image cannot run
script, so allowing images from any https host costs only what showing the photo at all
costs (the photo host sees the reader's IP; `referrerpolicy="no-referrer"` on every photo
keeps the page's address from it). Plain http photos are shown as a link, never loaded.
Pages without photos (stats, builder, manage, confirmed) keep the narrow list.
"""


def content_security_policy(tile_url: str, *, embeddable: bool, photos: bool = False) -> str:
    """The CSP for one page: scripts and styles only from this site, tiles from the tile host."""
    img_sources = ["'self'", "data:"]
    origin = tile_origin(tile_url)
    if origin:
        img_sources.append(origin)
    if photos:
        img_sources.append(PHOTO_SOURCE)
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {' '.join(img_sources)}",
        "connect-src 'self'",
        "font-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        # Only the embed may sit in another site's iframe; every other page refuses framing.
        "frame-ancestors *" if embeddable else "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def page_headers(
    tile_url: str, *, embeddable: bool = False, photos: bool = False
) -> dict[str, str]:
    """The response headers every HTML page carries (`photos`: the page shows request photos)."""
    headers = {
        "Content-Security-Policy": content_security_policy(
            tile_url, embeddable=embeddable, photos=photos
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cache-Control": "no-store",
    }
    if not embeddable:
        headers["X-Frame-Options"] = "DENY"
    return headers


SERVER_PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
"""The CSP of the small server-rendered pages (unsubscribe): no script at all, never framed."""


def server_page_headers() -> dict[str, str]:
    """Headers of a page that carries a token in its URL: no referrer, no cache, no framing."""
    return {
        "Content-Security-Policy": SERVER_PAGE_CSP,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


__all__ = [
    "OSM_TILE_URL",
    "PHOTO_SOURCE",
    "content_security_policy",
    "page_headers",
    "server_page_headers",
]
