"""Tabular exports (Socrata/CKAN CSV, JSON arrays, JSONL) read with a column profile.

Pure, like every parser: `tabular_rows.read_rows` reads the text of an export into rows, or
a Rejected for a row that cannot be read, so one bad line never stops an import. `parse_row`
takes one row and a profile and gives an Accepted request or a Rejected with its reason;
`parse_rows` does it for a whole export, with the profile's derived ids (`derived_ids`) or
rows folded into one record per id (`folding`). Profiles are described in `profiles`.

For one row the first problem found decides the reason, in this order: id, coordinates
(including the profile's placeholder points, then its `bounds`), requested date, other
dates, contract checks (field limits). Unusable optional dates and a closure before the
opening keep the record, with an anomaly noted (dates.py, normalize.py). A `point_events`
record (a crime incident) has no lifecycle: it is closed at its own time, with no status
word. Addresses and points are generalised here, before anything is stored (`generalise`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.parsers.cells import prepare_row
from connect311_ingestor.parsers.coordinates import coordinates
from connect311_ingestor.parsers.dates import optional_datetime, parse_datetime, zone
from connect311_ingestor.parsers.derived_ids import DerivedIds
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.folding import (
    Fold,
    Folded,
    fold_rows,
    folded_description,
    folded_status,
    merge,
    row_location,
)
from connect311_ingestor.parsers.generalise import block_address, round_coordinate
from connect311_ingestor.parsers.normalize import Draft, finish, rejected
from connect311_ingestor.parsers.profiles import ColumnProfile, ColumnSpec, column_names
from connect311_ingestor.parsers.statuses import StatusMapping, closed_reason_for, map_status
from connect311_ingestor.parsers.tabular_rows import RowOrReject
from connect311_ingestor.parsers.text import as_id, clean_text, clean_url, present
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.scrub import TEXT, AllowList, columns_allow_list

_TRUE = {"true", "t", "yes", "y", "1"}


# ---------------------------------------------------------------- one row


def _get(row: Mapping[str, Any], spec: ColumnSpec) -> Any:
    """The first non-empty value among the spec's columns (None when all are empty)."""
    if spec is None:
        return None
    for column in [spec] if isinstance(spec, str) else spec:
        value = row.get(column)
        if present(value):
            return value
    return None


def _names(spec: ColumnSpec) -> str:
    if spec is None:
        return "(no column)"
    return spec if isinstance(spec, str) else " / ".join(spec)


def _zipcode(value: Any, digits: int | None) -> Any:
    if digits is None or isinstance(value, bool) or not present(value):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text.zfill(digits) if text.isdigit() and len(text) < digits else text


def _id_names(profile: ColumnProfile) -> str:
    if profile.id_columns:
        return "derived from " + " + ".join(profile.id_columns)
    return _names(profile.columns.id)


def _build_row(
    row: Mapping[str, Any],
    profile: ColumnProfile,
    request_id: str | None = None,
    folded: Folded | None = None,
) -> Draft:
    cols = profile.columns
    tz = zone(profile.timezone)

    def date(name: str, spec: ColumnSpec) -> Any:
        return parse_datetime(
            _get(row, spec),
            field_name=f"{name} ({_names(spec)})",
            tz=tz,
            formats=profile.date_formats,
        )

    request_id = as_id(
        request_id if request_id is not None else _get(row, cols.id),
        f"id ({_id_names(profile)})",
    )
    lat, long = coordinates(
        _get(row, cols.lat),
        _get(row, cols.long),
        names=(_names(cols.lat), _names(cols.long)),
        kind="columns",
        placeholders=profile.placeholder_coordinates,
        bounds=profile.bounds,
    )
    lat = round_coordinate(lat, profile.coordinate_decimals)
    long = round_coordinate(long, profile.coordinate_decimals)
    anomalies: list[str] = []

    def optional(name: str, canonical: str, spec: ColumnSpec) -> Any:
        return optional_datetime(
            _get(row, spec),
            field_name=f"{name} ({_names(spec)})",
            canonical=canonical,
            anomalies=anomalies,
            tz=tz,
            formats=profile.date_formats,
        )

    requested = date("requested date", cols.requested_datetime)
    if requested is None:
        raise RecordError(
            RejectReason.MISSING_FIELD,
            f"no requested date (column {_names(cols.requested_datetime)} empty).",
        )
    if profile.point_events:
        # An incident, not a request: it happened at its time and has nothing left to do.
        closed_at, raw_status = requested, ""
        mapping = StatusMapping(RequestStatus.CLOSED)
    else:
        closed_at = optional("closed date", "closed_datetime", cols.closed_datetime)
        raw_status = clean_text(_get(row, cols.status), 200) or ""
        mapping = (profile.status_rule(raw_status) if raw_status else None) or map_status(
            raw_status if raw_status else ("closed" if closed_at else "open"),
            has_closed_date=closed_at is not None,
        )
    if folded is not None:
        mapping = folded_status(mapping, raw_status, folded, profile, anomalies)
    address = _get(row, cols.address)
    if profile.generalise_address == "block":
        address = block_address(address)
    reason_text = clean_text(_get(row, cols.closed_reason_text))
    notes = clean_text(_get(row, cols.status_notes))
    closed_reason = closed_reason_for(mapping, reason_text)
    if str(_get(row, cols.duplicate_flag)).strip().lower() in _TRUE:
        closed_reason = ClosedReason.DUPLICATE if mapping.status is RequestStatus.CLOSED else None
    return Draft(
        source=profile.source,
        source_request_id=request_id,
        dataset=profile.dataset_of(_get(row, cols.agency_responsible)),
        raw_status=raw_status,  # "" when the export has no status: nothing invented
        status=mapping.status,
        closed_reason=closed_reason,
        lat=lat,
        long=long,
        requested_datetime=requested,
        updated_datetime=optional("updated date", "updated_datetime", cols.updated_datetime),
        closed_datetime=closed_at,
        expected_datetime=optional("expected date", "expected_datetime", cols.expected_datetime),
        media_url=clean_url(_get(row, cols.media_url)),
        anomalies=anomalies,
        texts={
            "service_code": _get(row, cols.service_code),
            "service_name": _get(row, cols.service_name),
            "agency_responsible": _get(row, cols.agency_responsible),
            "status_notes": notes,
            "description": folded_description(_get(row, cols.description), folded),
            "address": address,
            "zipcode": _zipcode(_get(row, cols.zipcode), profile.zipcode_digits),
        },
    )


def reject_allow_list(profile: ColumnProfile) -> AllowList:
    """What of a rejected row the operator sees: the mapped columns (see `scrub`); a
    generalised address only as its length (the exact one is never kept)."""
    allow = dict(columns_allow_list(profile.columns.model_dump()))
    if profile.generalise_address:
        allow.update(dict.fromkeys(column_names(profile.columns.address), TEXT))
    return allow


def parse_row(
    row: Mapping[str, Any],
    profile: ColumnProfile,
    location: str | None = None,
    *,
    request_id: str | None = None,
) -> ParseResult:
    """One export row as an Accepted request or a Rejected with a clear reason.

    `request_id` is the row's derived id when the profile has `id_columns`.
    """
    row = prepare_row(row, profile)
    try:
        return Accepted(finish(_build_row(row, profile, request_id)), location)
    except RecordError as error:
        return rejected(error, row, location, reject_allow_list(profile))


def parse_fold(fold: Fold, profile: ColumnProfile) -> ParseResult:
    """The rows of one id folded into one record (a profile with `[group]`, see `folding`)."""
    location = row_location(fold)
    row, folded = merge(fold, profile)
    try:
        request = finish(_build_row(row, profile, folded=folded))
        return Accepted(request, location, rows=folded.rows)
    except RecordError as error:
        reject = rejected(error, row, location, reject_allow_list(profile))
        return dataclasses.replace(reject, rows=folded.rows)


def parse_rows(rows: Iterable[RowOrReject], profile: ColumnProfile) -> Iterator[ParseResult]:
    """Every row of an export (from `read_rows`) as accepted requests and rejections.

    With `[group]` the whole export is read before the first folded record comes out.
    """
    if profile.group is not None:
        for item in fold_rows(rows, profile):
            if isinstance(item, Fold):
                yield parse_fold(item, profile)
            else:
                location, row = item
                yield row if isinstance(row, Rejected) else parse_row(row, profile, location)
        return
    ids = DerivedIds(profile) if profile.id_columns else None
    for location, row in rows:
        if isinstance(row, Rejected):
            yield row
        elif ids is None:
            yield parse_row(row, profile, location)
        else:
            clean = prepare_row(row, profile)
            yield parse_row(clean, profile, location, request_id=ids.next(clean))
