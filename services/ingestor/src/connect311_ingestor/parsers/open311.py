"""Open311 GeoReport v2 requests (JSON and XML): each record a request or a reasoned reject.

Pure parsers over response bodies (documents: `open311_document`; updates:
`open311_updates`; services lists: `open311_services`). What they accept beyond the letter
of the spec:

- A record with `non_public` set (FixMyStreet) is rejected (INVALID_FIELD): it must not
  reach a public map.
- A record with none of the request fields (a POST or token response that only carries
  `service_request_id`/`token`/`service_notice`) is UNEXPECTED_SHAPE, not a request; so is
  a service (`metadata`/`attributes`/`keywords`, no `service_request_id`) in a JSON list.
- Closed reason: from the status word (`duplicate` is closed as a duplicate), else from
  `status_notes` ("Duplicate request." -> duplicate).

For one record the first problem found decides the reason, in this order: shape, id,
non_public, coordinates, requested_datetime, status, other dates, contract checks
(field limits). Unusable optional dates and a closure before the opening keep the
record, with an anomaly noted (dates.py, normalize.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.coordinates import coordinates
from connect311_ingestor.parsers.dates import optional_datetime, parse_datetime
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.normalize import Draft, finish, record_location, rejected
from connect311_ingestor.parsers.open311_document import (
    FeedError,
    Format,
    document_records,
    document_reject,
    first_url,
    truthy,
)
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.parsers.statuses import closed_reason_for, map_status
from connect311_ingestor.parsers.text import as_id, clean_text, clean_url, present
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.scrub import OPEN311_REQUEST

__all__ = ["parse_record", "parse_requests", "request_records"]

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

# Keys only a service (GET services / services/{code}) has: such a record is not a request.
_SERVICE_KEYS = frozenset({"metadata", "attributes", "keywords"})


def _build_request(record: Mapping[str, Any], source: str, dataset: str) -> Draft:
    if not any(present(record.get(f)) for f in _REQUEST_FIELDS):
        keys = ", ".join(sorted(str(k) for k in record)) or "nothing"
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE,
            f"the record carries no request fields (only {keys}): a POST or token response, "
            "not a service request.",
        )
    if not present(record.get("service_request_id")) and _SERVICE_KEYS & set(record):
        raise RecordError(
            RejectReason.UNEXPECTED_SHAPE,
            "the record is a service (a services list entry or a service definition: it has "
            "metadata/attributes and no service_request_id), not a service request.",
        )
    request_id = as_id(record.get("service_request_id"), "service_request_id")
    if truthy(record.get("non_public")):
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
        media_url=clean_url(first_url(record.get("media_url"))),
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
        records = document_records(body, fmt, ("service_requests", "requests"), "request")
    except FeedError as error:
        return [document_reject(error, body, location)]
    return [
        parse_record(r, source=source, dataset=dataset, location=record_location(location, i))
        for i, r in enumerate(records)
    ]


def request_records(body: bytes, *, fmt: Format) -> list[Any]:
    """The raw records of a requests document (`check` lists their fields); FeedError if
    the document is unusable."""
    return document_records(body, fmt, ("service_requests", "requests"), "request")
