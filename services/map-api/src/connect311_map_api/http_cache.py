"""Cacheable answers: a strong ETag from the body, Cache-Control, and 304 on revalidation.

The validators every cacheable answer uses (`core.conditional`), with the headers for answers
that are not tiles or feeds: the department numbers, their CSV and the stats widget.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from connect311_map_api.core.conditional import etag_of, not_modified

__all__ = ["cacheable"]


def cacheable(
    request: Request,
    body: bytes,
    media_type: str,
    max_age_s: int,
    headers: dict[str, str] | None = None,
) -> Response:
    """`body` with its ETag and a public max-age; 304 (no body) when the client has it."""
    out = {
        **(headers or {}),
        "Cache-Control": f"public, max-age={max_age_s}",
        "ETag": etag_of(body),
    }
    if not_modified(request.headers.get("if-none-match"), None, out["ETag"]):
        return Response(status_code=304, headers=out)
    return Response(body, media_type=media_type, headers=out)
