"""GeoReport v2 errors on every Open311 route, in the format the route's extension names.

The spec answers errors as `[{"code": 400, "description": "..."}]` (JSON) or
`<errors><error><code>400</code><description>..</description></error></errors>` (XML), so a
strict client parses them like any other answer. FastAPI's own shapes (`{"detail": ..}`, 422)
would break such clients, so this route class turns every HTTP error and every parameter
validation error of the Open311 router into the spec's shape; validation errors become 400,
the code the spec uses for bad parameters.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from connect311_map_api.core import open311

__all__ = [
    "JSON_TYPE",
    "XML_TYPE",
    "Open311Route",
    "error_response",
    "json_response",
    "xml_response",
]

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
XML_TYPE = "text/xml"
"""Exactly the format the discovery document declares (the XML declaration names UTF-8)."""


def json_response(
    payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer."""
    return Response(json.dumps(payload), status_code, headers, media_type=JSON_TYPE)


def xml_response(
    payload: bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """An XML answer as `text/xml`, without the charset parameter Starlette would add."""
    return Response(payload, status_code, {**(headers or {}), "content-type": XML_TYPE})


def error_response(
    code: int, description: str, xml: bool, headers: Mapping[str, str] | None = None
) -> Response:
    """One GeoReport v2 error, in XML when the route asked for `.xml`, else JSON."""
    errors = open311.errors_dict(code, description)
    if xml:
        return xml_response(open311.errors_xml(errors), code, headers)
    return json_response(errors, code, headers)


def validation_text(exc: RequestValidationError) -> str:
    """'page_size: Input should be less than or equal to 1000' (one line, every problem)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
    return "; ".join(parts) or "invalid parameters"


class Open311Route(APIRoute):
    """An APIRoute whose errors come out in the GeoReport v2 shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            xml = request.url.path.endswith(".xml")
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return error_response(400, validation_text(exc), xml)
            except HTTPException as exc:
                code = 400 if exc.status_code == 422 else exc.status_code
                return error_response(code, str(exc.detail), xml, exc.headers)
            except Exception as exc:  # any other failure, still in the spec's shape
                return await _other_failure(request, exc, xml)

        return handle


async def _other_failure(request: Request, exc: Exception, xml: bool) -> Response:
    """A failure past the route: the app's own handler for it decides the status and
    `Retry-After` (a database outage is 503), the body is a GeoReport error; a failure no
    handler knows is logged and answered 500."""
    handlers = request.app.exception_handlers
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        log.exception("Open311 %s failed", request.url.path)
        return error_response(500, "internal error; try again later", xml)
    answer = handler(request, exc)
    answer = await answer if inspect.isawaitable(answer) else answer
    try:
        description = str(json.loads(answer.body)["detail"])
    except (ValueError, KeyError, TypeError):
        description = "the service cannot answer right now; try again later"
    retry = {k: v for k, v in answer.headers.items() if k.lower() == "retry-after"}
    return error_response(answer.status_code, description, xml, retry)
