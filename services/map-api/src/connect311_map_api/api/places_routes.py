"""Finding a place: where the data is (/api/extent) and address search (/api/places)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from connect311_map_api.api.params import request_filters, unprocessable
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core.aggregates import BASE_CELL
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.places import (
    MAX_QUERY_CHARS,
    MIN_QUERY_CHARS,
    Extent,
    Place,
    data_extent,
    merge_places,
    normalize_query,
)
from connect311_map_api.db import queries
from connect311_map_api.db.places import AddressBook
from connect311_map_api.geocoder import Geocoder, GeocoderUnavailable

__all__ = ["MAX_PLACES", "router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["places"])
Filters = Annotated[RequestFilters, Depends(request_filters)]
MAX_PLACES = 10


class ExtentAnswer(BaseModel):
    """Where the matching requests are (bbox null when there are none)."""

    count: int
    bbox: list[float] | None
    center: list[float] | None


class PlaceAnswer(BaseModel):
    """One place found."""

    label: str
    lat: float
    long: float
    source: str
    requests: int | None


class PlacesAnswer(BaseModel):
    """Places for a search text; `geocoder` is off, ok or unavailable."""

    query: str
    places: list[PlaceAnswer]
    geocoder: str


def _extent(ctx: AppContext, filters: RequestFilters) -> Extent | None:
    def compute() -> Extent | None:
        with ctx.engine.connect() as conn:
            return data_extent(queries.clusters(conn, filters, BASE_CELL), BASE_CELL)

    result: Extent | None = ctx.cache.get(("extent", filters), compute)
    return result


@router.get("/extent", response_model=ExtentAnswer, summary="Where the requests are")
def extent(ctx: Ctx, filters: Filters) -> dict[str, Any]:
    """The box around the requests matching the filters (the few far from the rest left
    out), so a map with no configured centre, or an embed, can open on its data."""
    found = _extent(ctx, replace(filters, bbox=None))
    if found is None:
        return {"count": 0, "bbox": None, "center": None}
    return found.as_json()


def _address_book(request: Request, ctx: AppContext) -> AddressBook:
    """This app's in-memory list of request addresses (built on the first search)."""
    book: AddressBook | None = getattr(request.app.state, "address_book", None)
    if book is None:
        book = AddressBook(ctx.engine)
        request.app.state.address_book = book
    return book


def _geocoder(request: Request, ctx: AppContext) -> Geocoder | None:
    """The configured geocoder (tests may put one with an in-process transport on state)."""
    chosen: Geocoder | None = getattr(request.app.state, "geocoder", None)
    if chosen is None and ctx.settings.geocoder_url:
        chosen = Geocoder(ctx.settings.geocoder_url, ctx.settings.geocoder_timeout_s)
        request.app.state.geocoder = chosen
    return chosen


@router.get("/places", response_model=PlacesAnswer, summary="Find an address")
async def places(
    request: Request,
    ctx: Ctx,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS * 2,
            description=f"Part of an address ({MIN_QUERY_CHARS}-{MAX_QUERY_CHARS} characters)",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_PLACES)] = 8,
) -> dict[str, Any]:
    """Addresses the city's own requests carry that start with the text (or have a word that
    does), then, when a geocoder is configured, its answers for the text."""
    text = normalize_query(q)
    if any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in text):
        raise unprocessable("q must not contain control characters such as NUL or newline")
    if not MIN_QUERY_CHARS <= len(text) <= MAX_QUERY_CHARS:
        raise unprocessable(
            f"type {MIN_QUERY_CHARS} to {MAX_QUERY_CHARS} characters of the address to search"
        )

    book = _address_book(request, ctx)
    found = await run_in_threadpool(book.search, text, limit)
    geocoder = _geocoder(request, ctx)
    state = "off"
    remote: list[Place] = []
    if geocoder is not None and len(found) < limit:
        where = await run_in_threadpool(_extent, ctx, RequestFilters())
        box = [where.west, where.south, where.east, where.north] if where else None
        try:
            remote = await geocoder.search(text, limit, box)
            state = "ok"
        except GeocoderUnavailable as exc:
            log.warning("geocoder unavailable, answering with local addresses only: %s", exc)
            state = "unavailable"
    return {
        "query": text,
        "places": [p.as_json() for p in merge_places(found, remote, limit)],
        "geocoder": state,
    }
