"""The optional outside geocoder (Nominatim-compatible `/search?format=json&q=`), server-side.

The browser never talks to it (the pages' CSP allows only this site), and the search text is
never logged: it may be someone's home address.
"""

from __future__ import annotations

import logging

import httpx

from connect311_map_api.core.places import Place, parse_geocoder_answer

__all__ = ["MAX_ANSWER_BYTES", "Geocoder", "GeocoderUnavailable"]

log = logging.getLogger(__name__)
MAX_ANSWER_BYTES = 512_000  # a page of places is a few kB; more is not a geocoder answer


class GeocoderUnavailable(Exception):
    """The geocoder did not answer usefully; the reason is safe to log (no search text)."""


class Geocoder:
    """Asks one geocoder, with a timeout; `transport` lets tests answer in-process."""

    def __init__(
        self, base_url: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.search_url = base_url.rstrip("/") + "/search"
        self.timeout_s = timeout_s
        self.transport = transport

    async def search(
        self, query: str, limit: int, viewbox: list[float] | None = None
    ) -> list[Place]:
        """Up to `limit` places for `query`, preferring `viewbox` [w, s, e, n] (the data)."""
        params = {"format": "json", "q": query, "limit": str(limit), "addressdetails": "0"}
        if viewbox:
            params["viewbox"] = ",".join(f"{v:.5f}" for v in viewbox)
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s,
                transport=self.transport,
                headers={"User-Agent": "Connect311 address search", "Accept": "application/json"},
            ) as client:
                response = await client.get(self.search_url, params=params)
        except httpx.HTTPError as exc:
            raise GeocoderUnavailable(f"{type(exc).__name__} from {self.search_url}") from exc
        if response.status_code != 200:
            raise GeocoderUnavailable(f"{self.search_url} answered {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise GeocoderUnavailable(f"{self.search_url} answered over {MAX_ANSWER_BYTES} bytes")
        try:
            body = response.json()
        except ValueError as exc:
            raise GeocoderUnavailable(f"{self.search_url} answered with no JSON") from exc
        places, skipped = parse_geocoder_answer(body, limit)
        if skipped:
            log.warning("geocoder: %d unusable entries skipped (no name or bad lat/lon)", skipped)
        return places
