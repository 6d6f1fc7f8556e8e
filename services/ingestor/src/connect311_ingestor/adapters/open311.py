"""Open311 GeoReport v2: requests, request updates and services lists (JSON and XML).

Pure parsers over response bodies. What they accept beyond the letter of the spec:

- XML is parsed with defusedxml: a DTD, entity declaration or external reference rejects
  the whole document as UNSAFE_XML (nothing is expanded or fetched). Element namespaces
  (e.g. SF311's services.xml) are ignored, so `<m:service>` reads like `<service>`.
- A whole-document failure (invalid JSON such as the spec's own `"service_code":001`,
  invalid or unsafe XML, an Open311 error document) yields ONE Rejected for the document.
- A JSON body may be a list of requests, one bare request object (Boston) or an object
  wrapping the list under `service_requests` / `requests`.
- `media_url` given as a list (Boston: `[{"id", "url", "tags"}]`) keeps the FIRST URL.
- A record with `non_public` set (FixMyStreet) is rejected (INVALID_FIELD): it must not
  reach a public map.
- A record with none of the request fields (a POST or token response that only carries
  `service_request_id`/`token`/`service_notice`) is UNEXPECTED_SHAPE, not a request.
- Closed reason: from the status word (`duplicate` is closed as a duplicate), else from
  `status_notes` ("Duplicate request." -> duplicate).
- Updates: both roots seen in the wild, `service_requests_updates` (GET) and
  `service_request_updates` (POST responses, open311-adapter), are accepted.

For one record the first problem found decides the reason, in this order: shape, id,
non_public, coordinates, requested_datetime, status, other dates, contract checks
(field limits). Unusable optional dates and a closure before the opening keep the
record, with an anomaly noted (normalize.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ClosedReason, RequestStatus, scoped_request_id
from connect311_ingestor.adapters.normalize import (
    Draft,
    RecordError,
    as_id,
    clean_text,
    clean_url,
    closed_reason_for,
    coordinates,
    finish,
    map_status,
    optional_datetime,
    parse_datetime,
    present,
    raw_text,
    record_location,
    rejected,
)
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.scrub import OPEN311_REQUEST, OPEN311_UPDATE

Format = Literal["json", "xml"]

_LEADING_ZERO = re.compile(rb"\"\s*:\s*-?0\d")  # "key": 001
MAX_BODY = 50_000_000
"""Largest response body parsed (bytes); larger ones are rejected as TOO_LARGE."""

_REQUEST_FIELDS = (
    "status",
    "requested_datetime",
    "lat",
    "long",
    "service_code",
    "service_name",
    "description",
    "updated_datetime",
)
_UPDATE_FIELDS = ("service_request_id", "status", "updated_datetime", "description")


class FeedError(Exception):
    """A whole document cannot be used (bad JSON/XML, error document, wrong shape)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Open311Service:
    """One entry of a GeoReport `services` list."""

    service_code: str
    service_name: str | None
    description: str | None
    metadata: bool
    type: str | None
    keywords: tuple[str, ...]
    group: str | None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestUpdate:
    """One GeoReport `servicerequestupdates` entry (a status change of a known request)."""

    update_id: str
    service_request_id: str
    status: RequestStatus
    raw_status: str
    closed_reason: ClosedReason | None
    updated_datetime: datetime
    description: str | None
    media_url: str | None
    external_status_code: str | None


# ---------------------------------------------------------------- documents


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


def _records(body: bytes, fmt: Format, roots: tuple[str, ...], item: str) -> list[Any]:
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


def _document_reject(error: FeedError, body: bytes, location: str | None) -> Rejected:
    return Rejected(error.reason, error.detail, raw_text(body), location)


# ---------------------------------------------------------------- requests


def _first_url(value: Any) -> Any:
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


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y"}
    return bool(value)


def _build_request(record: Mapping[str, Any], source: str, dataset: str) -> Draft:
    if not any(present(record.get(f)) for f in _REQUEST_FIELDS):
        keys = ", ".join(sorted(str(k) for k in record)) or "nothing"
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE,
            f"the record carries no request fields (only {keys}): a POST or token response, "
            "not a service request.",
        )
    request_id = as_id(record.get("service_request_id"), "service_request_id")
    if _truthy(record.get("non_public")):
        raise RecordError(
            RejectReason.INVALID_FIELD,
            "the server marks this request non_public: it must not be shown on a public map.",
        )
    lat, long = coordinates(record.get("lat"), record.get("long"))
    requested = parse_datetime(record.get("requested_datetime"), field_name="requested_datetime")
    if requested is None:
        raise RecordError(
            RejectReason.MISSING_FIELD, "no requested_datetime: when was it reported?"
        )
    if not present(record.get("status")):
        raise RecordError(
            RejectReason.MISSING_FIELD, "no status (Open311 requires open or closed)."
        )
    anomalies: list[str] = []

    def optional(name: str) -> datetime | None:
        return optional_datetime(
            record.get(name), field_name=name, canonical=name, anomalies=anomalies
        )

    updated = optional("updated_datetime")
    closed_at = optional("closed_datetime")
    mapping = map_status(record.get("status"), has_closed_date=closed_at is not None)
    notes = clean_text(record.get("status_notes"))
    return Draft(
        source=source,
        source_request_id=request_id,
        dataset=dataset,
        raw_status=str(record.get("status")),
        status=mapping.status,
        closed_reason=closed_reason_for(mapping, notes),
        lat=lat,
        long=long,
        requested_datetime=requested,
        updated_datetime=updated,
        closed_datetime=closed_at,
        expected_datetime=optional("expected_datetime"),
        media_url=clean_url(_first_url(record.get("media_url"))),
        anomalies=anomalies,
        texts={
            "service_code": record.get("service_code"),
            "service_name": record.get("service_name"),
            "agency_responsible": record.get("agency_responsible"),
            "status_notes": notes,
            "description": record.get("description"),
            "address": record.get("address") or record.get("address_string"),
            "zipcode": record.get("zipcode"),
        },
    )


def parse_record(
    record: Mapping[str, Any], *, source: str, dataset: str = "311", location: str | None = None
) -> ParseResult:
    """One request in Open311 field names, as an Accepted request or a reasoned Rejected."""
    if not isinstance(record, Mapping):
        return Rejected(
            RejectReason.UNEXPECTED_SHAPE,
            f"a request must be an object of Open311 fields, not a {type(record).__name__}.",
            raw_text(record),
            location,
        )
    try:
        return Accepted(finish(_build_request(record, source, dataset)), location)
    except RecordError as error:
        return rejected(error, record, location, OPEN311_REQUEST)


def parse_requests(
    body: bytes,
    *,
    source: str,
    fmt: Format,
    dataset: str = "311",
    location: str | None = None,
) -> list[ParseResult]:
    """Every request of a GET requests response; one Rejected if the document is unusable."""
    try:
        records = _records(body, fmt, ("service_requests", "requests"), "request")
    except FeedError as error:
        return [_document_reject(error, body, location)]
    return [
        parse_record(r, source=source, dataset=dataset, location=record_location(location, i))
        for i, r in enumerate(records)
    ]


# ---------------------------------------------------------------- updates


def _build_update(record: Mapping[str, Any], source: str) -> RequestUpdate:
    if not any(present(record.get(f)) for f in _UPDATE_FIELDS):
        keys = ", ".join(sorted(str(k) for k in record)) or "nothing"
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE,
            f"the entry carries no update fields (only {keys}): a POST response, not an update.",
        )
    update_id = as_id(record.get("update_id"), "update_id")
    request_id = as_id(record.get("service_request_id"), "service_request_id")
    if not present(record.get("status")):
        raise RecordError(RejectReason.MISSING_FIELD, "no status in the update.")
    updated = parse_datetime(record.get("updated_datetime"), field_name="updated_datetime")
    if updated is None:
        raise RecordError(RejectReason.MISSING_FIELD, "no updated_datetime: when did it change?")
    mapping = map_status(record.get("status"))
    description = clean_text(record.get("description"))
    return RequestUpdate(
        update_id=update_id,
        service_request_id=scoped_request_id(source, request_id),
        status=mapping.status,
        raw_status=clean_text(record.get("status"), 200) or "",
        closed_reason=closed_reason_for(mapping, description),
        updated_datetime=updated,
        description=description,
        media_url=clean_url(_first_url(record.get("media_url"))),
        external_status_code=clean_text(record.get("external_status_code"), 200),
    )


def parse_updates(
    body: bytes, *, source: str, fmt: Format, location: str | None = None
) -> list[RequestUpdate | Rejected]:
    """Every entry of a servicerequestupdates response (either root name seen in the wild)."""
    roots = ("service_requests_updates", "service_request_updates")
    try:
        records = _records(body, fmt, roots, "request_update")
    except FeedError as error:
        return [_document_reject(error, body, location)]
    results: list[RequestUpdate | Rejected] = []
    for i, record in enumerate(records):
        where = record_location(location, i, "update")
        if not isinstance(record, Mapping):
            results.append(
                Rejected(
                    RejectReason.UNEXPECTED_SHAPE,
                    "an update must be an object.",
                    raw_text(record),
                    where,
                )
            )
            continue
        try:
            results.append(_build_update(record, source))
        except RecordError as error:
            results.append(rejected(error, record, where, OPEN311_UPDATE))
    return results


# ---------------------------------------------------------------- services


def _texts(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(t for t in (clean_text(i, 300) for i in items) if t)


def _service(entry: Any, index: int) -> Open311Service:
    if not isinstance(entry, Mapping):
        raise FeedError(RejectReason.UNEXPECTED_SHAPE, f"service {index + 1} is not an object.")
    code = clean_text(entry.get("service_code"), 200)
    if code is None:
        raise FeedError(RejectReason.MISSING_FIELD, f"service {index + 1} has no service_code.")
    groups_value = entry.get("groups")
    groups = _texts(
        groups_value.get("group") if isinstance(groups_value, Mapping) else groups_value
    )
    groups = groups or _texts(entry.get("group"))
    keywords = clean_text(entry.get("keywords"), 2000)
    return Open311Service(
        service_code=code,
        service_name=clean_text(entry.get("service_name"), 300),
        description=clean_text(entry.get("description")),
        metadata=_truthy(entry.get("metadata")),
        type=clean_text(entry.get("type"), 60),
        keywords=tuple(k.strip() for k in keywords.split(",") if k.strip()) if keywords else (),
        group=groups[0] if groups else None,
        groups=groups,
    )


def parse_services(body: bytes, *, fmt: Format) -> list[Open311Service]:
    """The services list; FeedError(reason, detail) when the document is unusable."""
    entries = _records(body, fmt, ("services",), "service")
    return [_service(entry, i) for i, entry in enumerate(entries)]


def request_records(body: bytes, *, fmt: Format) -> list[Any]:
    """The raw records of a requests document (`check` lists their fields); FeedError if
    the document is unusable."""
    return _records(body, fmt, ("service_requests", "requests"), "request")
