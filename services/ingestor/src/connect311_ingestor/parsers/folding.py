"""Exports with several rows per record: a code-enforcement case with one row per violation.

With a profile's `[group]`, the rows that share an id (`columns.id`, e.g. the complaint
number) are folded into ONE record, because a resident sees one place with one status:

- record-level columns (opened, closed, status, type, address) repeat on every row: the
  first non-empty value in file order is used; the point is the first row's that has both
  coordinates (a case with one `NA` row and five geocoded ones is mapped);
- dates: `requested_datetime` is the earliest of the rows, `updated_datetime`,
  `closed_datetime` and `expected_datetime` the latest usable one (a `1/1/1900` placeholder
  on some rows does not hide a real date on others);
- status (`folded_status`): the record's own status, but it stays OPEN while any row's
  `group.status` is not closed (a case "Completed" with a violation still open is open,
  noted as the anomaly `status:row_still_open`); without a status column the record is
  closed only when every row is;
- description: the record's own description (if mapped), then `<label> (<n>):` and one line
  per row, `- <item> (<row status>)`, sorted so a re-export in another order changes nothing.

Folding needs the whole export: rows of one case are spread through the file. Only the
columns the profile reads are kept per row (`ColumnProfile.read_columns`), so an owner's
name in another column is dropped as the row is read. A row without an id, or one that
cannot be read, is handled on its own as without a group.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connect311_contracts.request import RequestStatus
from connect311_ingestor.parsers.cells import prepare_row
from connect311_ingestor.parsers.dates import DateError, parse_datetime, zone
from connect311_ingestor.parsers.profiles import ColumnProfile, ColumnSpec, column_names
from connect311_ingestor.parsers.statuses import StatusMapping, map_status
from connect311_ingestor.parsers.text import clean_text, present
from connect311_ingestor.records import Rejected

__all__ = [
    "Fold",
    "Folded",
    "fold_rows",
    "folded_description",
    "folded_status",
    "merge",
    "row_location",
]

MAX_LISTED_ROWS = 10
"""Row numbers named in a folded record's location (the rest are counted)."""


@dataclass
class Fold:
    """The rows of one record, in file order (only the columns the profile reads)."""

    key: str
    locations: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Folded:
    """What a folded record adds to its merged row: its rows' own statuses and lines."""

    rows: int
    row_statuses: tuple[str, ...]
    lines: tuple[str, ...]
    label: str


def _first(rows: Iterable[Mapping[str, Any]], spec: ColumnSpec) -> Any:
    for row in rows:
        for column in column_names(spec):
            if present(row.get(column)):
                return row[column]
    return None


def fold_rows(
    rows: Iterable[tuple[str, Mapping[str, Any] | Rejected]], profile: ColumnProfile
) -> Iterator[tuple[str, Mapping[str, Any] | Rejected] | Fold]:
    """Unreadable rows and rows without an id as they come, then one Fold per id."""
    keep = profile.read_columns()
    folds: dict[str, Fold] = {}
    for location, item in rows:
        if isinstance(item, Rejected):
            yield location, item
            continue
        row = prepare_row(item, profile)
        key = _first([row], profile.columns.id)
        if key is None or isinstance(key, (dict, list)):
            yield location, row
            continue
        fold = folds.setdefault(str(key).strip(), Fold(str(key).strip()))
        fold.locations.append(location)
        fold.rows.append({name: row.get(name) for name in keep})
    yield from folds.values()


def row_location(fold: Fold) -> str:
    """Where a folded record's rows are: 'file.csv:rows 3, 17, 40' (at most 10 named)."""
    first = fold.locations[0]
    name, _, _ = first.rpartition(":")
    numbers = [loc.rpartition(" ")[2] for loc in fold.locations]
    shown = ", ".join(numbers[:MAX_LISTED_ROWS])
    more = len(numbers) - MAX_LISTED_ROWS
    tail = f" (+{more} more)" if more > 0 else ""
    word = "rows" if len(numbers) > 1 else "row"
    return f"{name}:{word} {shown}{tail}" if name else first


def _pick_date(
    rows: list[dict[str, Any]], spec: ColumnSpec, profile: ColumnProfile, *, latest: bool
) -> Any:
    """The raw value of the earliest/latest usable date among the rows (else the first)."""
    tz = zone(profile.timezone)
    best: tuple[datetime, Any] | None = None
    for row in rows:
        for column in column_names(spec):
            value = row.get(column)
            try:
                parsed = parse_datetime(
                    value, field_name=column, tz=tz, formats=profile.date_formats
                )
            except DateError:
                continue
            if parsed is None:
                continue
            if best is None or (parsed > best[0] if latest else parsed < best[0]):
                best = (parsed, value)
            break  # the first non-empty column of the spec is the row's value
    return best[1] if best is not None else _first(rows, spec)


def _coordinates_row(rows: list[dict[str, Any]], profile: ColumnProfile) -> dict[str, Any]:
    cols = profile.columns
    for row in rows:
        if _first([row], cols.lat) is not None and _first([row], cols.long) is not None:
            return row
    return rows[0]


def merge(fold: Fold, profile: ColumnProfile) -> tuple[dict[str, Any], Folded]:
    """The one row a folded record is parsed from, and its rows' statuses and lines."""
    cols = profile.columns
    group = profile.group
    assert group is not None, "merge is only called for a profile with [group]"
    merged: dict[str, Any] = {}
    for _, spec in cols:
        for column in column_names(spec):
            merged.setdefault(column, _first(fold.rows, column))
    point = _coordinates_row(fold.rows, profile)
    for column in (*column_names(cols.lat), *column_names(cols.long)):
        merged[column] = point.get(column)
    dates = (
        (cols.requested_datetime, False),
        (cols.updated_datetime, True),
        (cols.closed_datetime, True),
        (cols.expected_datetime, True),
    )
    for spec, latest in dates:
        if spec is not None:
            merged[column_names(spec)[0]] = _pick_date(fold.rows, spec, profile, latest=latest)
            for other in column_names(spec)[1:]:
                merged[other] = None  # the picked value stands for the whole spec
    statuses = [_first([row], group.status) for row in fold.rows] if group.status else []
    lines = []
    for row, status in zip(fold.rows, statuses or [None] * len(fold.rows), strict=True):
        item = _first([row], group.item)
        text = " ".join(str(item).split()) if item is not None else "(no description)"
        lines.append(f"- {text} ({str(status).strip()})" if status is not None else f"- {text}")
    folded = Folded(
        rows=len(fold.rows),
        row_statuses=tuple(str(s).strip() for s in statuses if s is not None),
        lines=tuple(sorted(lines)) if group.item is not None else (),
        label=group.label,
    )
    return merged, folded


def folded_status(
    mapping: StatusMapping,
    raw_status: str,
    folded: Folded,
    profile: ColumnProfile,
    anomalies: list[str],
) -> StatusMapping:
    """A folded record's status: open while any of its rows is (see the module docstring)."""
    rows = [profile.status_rule(s) or map_status(s) for s in folded.row_statuses if s]
    still_open = next((m for m in rows if m.status is not RequestStatus.CLOSED), None)
    if still_open is not None and mapping.status is RequestStatus.CLOSED:
        anomalies.append("status:row_still_open")
        return StatusMapping(still_open.status)
    if not raw_status and rows and still_open is None:
        return StatusMapping(RequestStatus.CLOSED)  # no record status: every row is closed
    return mapping


def folded_description(own: Any, folded: Folded | None) -> Any:
    """The record's own description, then its rows' lines under the profile's label."""
    if folded is None or not folded.lines:
        return own
    listed = f"{folded.label} ({len(folded.lines)}):\n" + "\n".join(folded.lines)
    own_text = clean_text(own)
    return f"{own_text}\n\n{listed}" if own_text else listed
