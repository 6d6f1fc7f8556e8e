"""Open311 GeoReport v2 output (read-only): discovery, services, service definitions,
requests; JSON and XML by the path's extension. Every error, on every path under
/open311/v2/ (unknown ones too), is in the spec's errors shape (see `open311_errors`).
How close reasons and the city's raw status appear: `core/open311.py` and docs/open311.md.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from connect311_contracts.datasets import OPEN311_DATASETS, dataset_words
from connect311_map_api.api.open311_errors import (
    JSON_TYPE,
    XML_TYPE,
    Open311Route,
    json_response,
    xml_response,
)
from connect311_map_api.api.params import unprocessable
from connect311_map_api.cache import HEAVY_ROWS
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core import open311
from connect311_map_api.core.filters import RequestFilters, split_csv
from connect311_map_api.db import aggregates, queries
from connect311_map_api.heavy_work import HEAVY

router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)
CHANGESET = "2024-01-01T00:00:00Z"
MAX_PAGE_SIZE = 200  # 1,000 per page in XML slowed every other caller (issue 12)


_json = json_response
_xml = xml_response


def _doc(media: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media: {}}, "description": "GeoReport v2 document"},
        400: {"content": {media: {}}, "description": "GeoReport v2 errors: bad parameters"},
    }


def _discovery(ctx: AppContext) -> dict[str, Any]:
    return open311.discovery_dict(ctx.signing.public_base_url, CHANGESET)


@router.get("/discovery.json", response_class=Response, responses=_doc(JSON_TYPE))
def discovery_json(ctx: Ctx) -> Response:
    """Where the GeoReport v2 endpoint is and what it speaks."""
    return _json(_discovery(ctx))


@router.get("/discovery.xml", response_class=Response, responses=_doc(XML_TYPE))
def discovery_xml(ctx: Ctx) -> Response:
    """Where the GeoReport v2 endpoint is and what it speaks (XML)."""
    return _xml(open311.discovery_xml(_discovery(ctx)))


def _services(ctx: AppContext) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        rows = aggregates.kind_counts(
            conn, "service_code", "service_name", "agency", datasets=OPEN311_DATASETS
        )
    seen: dict[str, dict[str, Any]] = {}
    for code, name, agency, _count in rows:
        seen.setdefault(code, open311.service_dict(code, name, agency))
    return list(seen.values())


@router.get("/services.json", response_class=Response, responses=_doc(JSON_TYPE))
def services_json(ctx: Ctx) -> Response:
    """Service types present in the data."""
    return _json(_services(ctx))


@router.get("/services.xml", response_class=Response, responses=_doc(XML_TYPE))
def services_xml(ctx: Ctx) -> Response:
    """Service types present in the data (XML)."""
    return _xml(open311.to_xml("services", "service", _services(ctx)))


def _definition(ctx: AppContext, service_code: str) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        known = queries.open311_requests(
            conn, (), RequestFilters(service_codes=(service_code,), datasets=OPEN311_DATASETS), 1, 1
        )
    if not known:
        raise HTTPException(
            404, detail="no service with this service_code: see services.json for the list"
        )
    return open311.service_definition_dict(service_code)


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown service_code (GeoReport v2 errors)"}
}


@router.get(
    "/services/{service_code:path}.json",
    response_class=Response,
    responses={**_doc(JSON_TYPE), **_NOT_FOUND},
)
def service_definition_json(ctx: Ctx, service_code: str) -> Response:
    """A service's definition; `attributes` is empty (every service has metadata false)."""
    return _json(_definition(ctx, service_code))


@router.get(
    "/services/{service_code:path}.xml",
    response_class=Response,
    responses={**_doc(XML_TYPE), **_NOT_FOUND},
)
def service_definition_xml(ctx: Ctx, service_code: str) -> Response:
    """A service's definition (XML, an empty `<attributes/>`)."""
    return _xml(open311.service_definition_xml(_definition(ctx, service_code)))


def _requests(
    ctx: AppContext,
    service_request_id: str | None,
    service_code: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
    status: str | None,
    page: int,
    page_size: int,
    extensions: bool,
) -> list[dict[str, Any]]:
    statuses = split_csv(status)
    if any(s not in ("open", "closed") for s in statuses):
        raise unprocessable("status must be open, closed or both (comma-separated)")
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None and value.tzinfo is None:
            raise unprocessable(f"{name} needs a time zone (w3 format, e.g. 2010-01-01T00:00:00Z)")
    internal: tuple[str, ...] = ()
    if statuses == ("closed",):
        internal = ("closed",)
    elif statuses == ("open",):
        internal = ("open", "acknowledged", "in_progress")
    filters = RequestFilters(
        statuses=internal,
        service_codes=split_csv(service_code),
        since=start_date,
        until=end_date,
        datasets=OPEN311_DATASETS,  # service requests only: docs/open311.md
    )
    with ctx.engine.connect() as conn:
        rows = queries.open311_requests(
            conn, split_csv(service_request_id), filters, page, page_size
        )
    return [open311.request_dict(row, extensions) for row in rows]


class _RequestQuery:
    """The GeoReport v2 request-list parameters plus the `page`/`page_size` and
    `extensions` (adds `extended_attributes`: status, closed_reason, raw_status) extensions."""

    def __init__(
        self,
        service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
        service_code: Annotated[str | None, Query(max_length=2000)] = None,
        start_date: Annotated[datetime | None, Query()] = None,
        end_date: Annotated[datetime | None, Query()] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
        extensions: Annotated[bool, Query()] = False,
    ) -> None:
        self.args = (
            service_request_id,
            service_code,
            start_date,
            end_date,
            status,
            page,
            page_size,
            extensions,
        )


RequestQuery = Annotated[_RequestQuery, Depends()]


def _requests_body(ctx: AppContext, query: _RequestQuery, xml: bool) -> bytes:
    """The rendered list; a heavy one is kept briefly, so asking again only sends it again."""
    key = ("open311-requests", xml, query.args)
    body = ctx.answers.lookup(key)
    if body is None:
        found = _requests(ctx, *query.args)
        if xml:
            body = open311.to_xml("service_requests", "request", found)
        else:
            body = json.dumps(found).encode("utf-8")  # what json_response sends
        if len(found) >= HEAVY_ROWS:
            ctx.answers.keep(key, body)
    return body


@router.get(
    "/requests.json", response_class=Response, responses=_doc(JSON_TYPE), dependencies=[HEAVY]
)
def requests_json(ctx: Ctx, query: RequestQuery) -> Response:
    """Requests, newest first, filtered like GeoReport v2 (page/page_size extension)."""
    return Response(_requests_body(ctx, query, xml=False), media_type=JSON_TYPE)


@router.get(
    "/requests.xml", response_class=Response, responses=_doc(XML_TYPE), dependencies=[HEAVY]
)
def requests_xml(ctx: Ctx, query: RequestQuery) -> Response:
    """Requests, newest first, filtered like GeoReport v2 (XML)."""
    return _xml(_requests_body(ctx, query, xml=True))


def _single(ctx: AppContext, service_request_id: str, extensions: bool) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        row = queries.one_request(conn, service_request_id)
    if row is None:
        raise HTTPException(
            404,
            detail="no request with this service_request_id: check the id (source:number)",
        )
    if row.dataset not in OPEN311_DATASETS:
        item = dataset_words(row.dataset).item
        raise HTTPException(
            404,
            detail=f"this id is a {item}, not a service request: Open311 serves 311 requests "
            "only (see /api/requests/{id})",
        )
    return [open311.request_dict(row, extensions)]


Extensions = Annotated[bool, Query(description="Add extended_attributes")]


# "/request/" (singular) is the path in the Open311 schema-validation Swagger document.
@router.get(
    "/request/{service_request_id:path}.json", response_class=Response, include_in_schema=False
)
@router.get(
    "/requests/{service_request_id:path}.json",
    response_class=Response,
    responses={**_doc(JSON_TYPE), 404: {"description": "Unknown id"}},
)
def request_json(ctx: Ctx, service_request_id: str, extensions: Extensions = False) -> Response:
    """One request (a one-element list, as the spec says)."""
    return _json(_single(ctx, service_request_id, extensions))


@router.get(
    "/request/{service_request_id:path}.xml", response_class=Response, include_in_schema=False
)
@router.get(
    "/requests/{service_request_id:path}.xml",
    response_class=Response,
    responses={**_doc(XML_TYPE), 404: {"description": "Unknown id"}},
)
def request_xml(ctx: Ctx, service_request_id: str, extensions: Extensions = False) -> Response:
    """One request (XML)."""
    found = _single(ctx, service_request_id, extensions)
    return _xml(open311.to_xml("service_requests", "request", found))


_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# Registered last: only paths no route above matched reach it.
@router.api_route("", methods=_ANY_METHOD, include_in_schema=False)
@router.api_route("/{unknown:path}", methods=_ANY_METHOD, include_in_schema=False)
def unknown_path(request: Request) -> Response:
    """404 (or 405 for a write: this endpoint is read-only) in the errors shape."""
    if request.method != "GET":
        raise HTTPException(
            405,
            detail="this Open311 endpoint is read-only: use GET (see discovery.json)",
            headers={"Allow": "GET"},
        )
    raise HTTPException(
        404,
        detail="no such Open311 path: see /open311/v2/discovery.json for the endpoints",
    )
