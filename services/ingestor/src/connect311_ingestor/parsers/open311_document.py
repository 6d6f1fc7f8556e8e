"""Open311 GeoReport v2 documents: a JSON or XML body as a list of record mappings.

Shared by the requests, updates and services parsers (pure, over response bodies):

- XML is parsed with defusedxml: a DTD, entity declaration or external reference rejects
  the whole document as UNSAFE_XML (nothing is expanded or fetched). Element namespaces
  (e.g. SF311's services.xml) are ignored, so `<m:service>` reads like `<service>`.
- A whole-document failure (invalid JSON such as the spec's own `"service_code":001`,
  invalid or unsafe XML, an Open311 error document) yields ONE Rejected for the document.
- A JSON body may be a list of records, one bare record object (Boston) or an object
  wrapping the list under one of the expected root names.
- `media_url` given as a list (Boston: `[{"id", "url", "tags"}]`) keeps the FIRST URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.parsers.text import present
from connect311_ingestor.records import Rejected

__all__ = [
    "MAX_BODY",
    "FeedError",
    "Format",
    "document_records",
    "document_reject",
    "first_url",
    "parse_error",
    "truthy",
]

Format = Literal["json", "xml"]

_LEADING_ZERO = re.compile(rb"\"\s*:\s*-?0\d")  # "key": 001
MAX_BODY = 50_000_000
"""Largest response body parsed (bytes); larger ones are rejected as TOO_LARGE."""


class FeedError(Exception):
    """A whole document cannot be used (bad JSON/XML, error document, wrong shape)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _tag(element: Element) -> str:
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _element_value(element: Element) -> Any:
    """Leaf -> its text; otherwise a dict of child tags (repeated tags -> list)."""
    children = list(element)
    if not children:
        return element.text
    value: dict[str, Any] = {}
    for child in children:
        key, child_value = _tag(child), _element_value(child)
        if key in value:
            existing = value[key]
            value[key] = (
                [*existing, child_value]
                if isinstance(existing, list)
                else [
                    existing,
                    child_value,
                ]
            )
        else:
            value[key] = child_value
    return value


def _parse_xml(body: bytes) -> Element:
    if len(body) > MAX_BODY:
        raise FeedError(
            RejectReason.TOO_LARGE, f"the document is {len(body)} bytes (limit {MAX_BODY})."
        )
    try:
        root: Element = fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        return root
    except DefusedXmlException as exc:
        raise FeedError(
            RejectReason.UNSAFE_XML,
            f"the XML declares a DTD, entities or external references ({type(exc).__name__}); "
            "it was not expanded or fetched. Ask the server for plain GeoReport XML.",
        ) from None
    except ParseError as exc:
        raise FeedError(
            RejectReason.INVALID_XML, f"the body is not well-formed XML ({exc})."
        ) from None


def _parse_json(body: bytes) -> Any:
    if len(body) > MAX_BODY:
        raise FeedError(
            RejectReason.TOO_LARGE, f"the document is {len(body)} bytes (limit {MAX_BODY})."
        )
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise FeedError(
            RejectReason.ENCODING_ERROR, f"the body is not UTF-8 text ({exc.reason})."
        ) from None
    except json.JSONDecodeError as exc:
        hint = (
            " (numbers with leading zeros such as 001 are not JSON: they must be strings)"
            if _LEADING_ZERO.search(body)
            else ""
        )
        raise FeedError(
            RejectReason.INVALID_JSON,
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}.",
        ) from None


def _xml_error(root: Element) -> str | None:
    tag = _tag(root)
    if tag == "errors":
        parts = [_format_error(_element_value(e)) for e in root if _tag(e) == "error"]
        return "; ".join(parts) or "empty error list"
    if tag == "error":
        return _format_error(_element_value(root))
    return None


def _format_error(error: Any) -> str:
    if isinstance(error, Mapping):
        code, text = error.get("code"), str(error.get("description") or "").strip().rstrip(".")
        return f"{code}: {text}" if present(code) else text
    return str(error or "").strip().rstrip(".") or "unspecified error"


def _json_error(data: Any) -> str | None:
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, Mapping) for i in items):
        return None
    if isinstance(data, Mapping) and "errors" in data and isinstance(data["errors"], list):
        return "; ".join(_format_error(e) for e in data["errors"]) or "empty error list"
    if all(set(i) <= {"code", "description"} and "description" in i for i in items):
        return "; ".join(_format_error(i) for i in items)
    return None


def parse_error(body: bytes, fmt: Format) -> str | None:
    """The message of an Open311 error document ("403: Invalid api_key ..."), else None."""
    try:
        return _xml_error(_parse_xml(body)) if fmt == "xml" else _json_error(_parse_json(body))
    except FeedError:
        return None


def document_records(body: bytes, fmt: Format, roots: tuple[str, ...], item: str) -> list[Any]:
    """The record mappings of a document; FeedError when the document is unusable."""
    if fmt == "xml":
        root = _parse_xml(body)
        error = _xml_error(root)
        if error is not None:
            raise FeedError(
                RejectReason.UNEXPECTED_SHAPE,
                f"the server answered with an Open311 error: {error}.",
            )
        if _tag(root) not in roots:
            raise FeedError(
                RejectReason.UNEXPECTED_SHAPE,
                f"root element <{_tag(root)}> is not one of {', '.join(f'<{r}>' for r in roots)}.",
            )
        return [_element_value(e) or {} for e in root if _tag(e) == item]
    data = _parse_json(body)
    error = _json_error(data)
    if error is not None:
        raise FeedError(
            RejectReason.UNEXPECTED_SHAPE, f"the server answered with an Open311 error: {error}."
        )
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in roots:
            if isinstance(data.get(key), list):
                return list(data[key])
        return [data]
    raise FeedError(
        RejectReason.UNEXPECTED_SHAPE,
        f"the JSON body is a {type(data).__name__}, not a list of records.",
    )


def document_reject(error: FeedError, body: bytes, location: str | None) -> Rejected:
    """The one Rejected for a whole unusable document (its text masked, see `raw_text`)."""
    return Rejected(error.reason, error.detail, raw_text(body), location)


# ---------------------------------------------------------------- values


def first_url(value: Any) -> Any:
    """Boston sends media_url as a list of {id, url, tags}: keep the first URL."""
    if isinstance(value, list):
        for item in value:
            url = item.get("url") if isinstance(item, Mapping) else item
            if present(url):
                return url
        return None
    if isinstance(value, Mapping):
        return value.get("url")
    return value


def truthy(value: Any) -> bool:
    """An Open311 flag (`non_public`, `metadata`): true, "true", "1", "yes" or "y"."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y"}
    return bool(value)
