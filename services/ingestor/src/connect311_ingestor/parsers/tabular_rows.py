"""The rows of a tabular export (Socrata/CKAN CSV, JSON arrays, JSONL), before any profile.

Pure: `read_rows` takes the text of an export (`sources.files.read_records` opens the file)
and yields `(location, row)` pairs, or `(location, Rejected)` for a row that cannot be read
(broken JSONL line, CSV row with the wrong number of fields, bytes that are not UTF-8), so one
bad line never stops an import. `tabular.parse_rows` turns the rows into requests.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TextIO

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.redact import raw_text
from connect311_ingestor.records import Rejected

TabularFormat = Literal["csv", "json", "jsonl"]


RowOrReject = tuple[str, Mapping[str, Any] | Rejected]


_SUFFIXES: dict[str, TabularFormat] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def detect_format(path: Path) -> TabularFormat:
    """The export format a file name says (csv, json, jsonl/ndjson)."""
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ValueError(f"cannot tell the format of {path.name}: name it .csv, .json or .jsonl")
    return found


_SURROGATE = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(values: list[str]) -> bool:
    # Bytes that are not UTF-8 arrive as lone surrogates (errors="surrogateescape").
    return any(not v.isascii() and _SURROGATE.search(v) for v in values)


def _csv_rows(handle: TextIO, name: str) -> Iterator[RowOrReject]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield (
            f"{name}:header",
            Rejected(RejectReason.INVALID_CSV, f"unreadable header ({exc}).", "", f"{name}:header"),
        )
        return
    row_number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row_number += 1
            where = f"{name}:row {row_number}"
            yield (
                where,
                Rejected(
                    RejectReason.INVALID_CSV, f"the CSV row cannot be read ({exc}).", "", where
                ),
            )
            continue
        row_number += 1
        where = f"{name}:row {row_number}"
        if not fields:
            continue  # blank line between rows: nothing to read or lose
        if _has_bad_bytes(fields):
            yield (
                where,
                Rejected(
                    RejectReason.ENCODING_ERROR,
                    "the row has bytes that are not UTF-8 (re-export the file as UTF-8).",
                    raw_text(
                        [
                            f.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                            for f in fields
                        ]
                    ),
                    where,
                ),
            )
        elif len(fields) != len(header):
            yield (
                where,
                Rejected(
                    RejectReason.INVALID_CSV,
                    f"the row has {len(fields)} fields but the header has {len(header)} "
                    "(a truncated line or an unquoted comma).",
                    raw_text(fields),
                    where,
                ),
            )
        else:
            yield where, dict(zip(header, fields, strict=True))


def _json_rows(handle: TextIO, name: str) -> Iterator[RowOrReject]:
    try:
        data = json.load(handle)
    except UnicodeDecodeError as exc:
        detail = f"the file is not UTF-8 text ({exc.reason}); re-export it as UTF-8."
        yield name, Rejected(RejectReason.ENCODING_ERROR, detail, "", name)
        return
    except json.JSONDecodeError as exc:
        detail = f"the file is not valid JSON ({exc}); a JSON export must be one array."
        yield name, Rejected(RejectReason.INVALID_JSON, detail, "", name)
        return
    if isinstance(data, Mapping):
        data = data.get("data") if isinstance(data.get("data"), list) else [data]
    if not isinstance(data, list):
        yield (
            name,
            Rejected(
                RejectReason.UNEXPECTED_SHAPE,
                "the JSON file is not an array of row objects.",
                raw_text(data),
                name,
            ),
        )
        return
    for index, item in enumerate(data):
        yield from _object_row(item, f"{name}:row {index + 1}")


def _object_row(item: Any, where: str) -> Iterator[RowOrReject]:
    if isinstance(item, Mapping):
        yield where, item
    else:
        yield (
            where,
            Rejected(
                RejectReason.UNEXPECTED_SHAPE,
                f"the row is a JSON {type(item).__name__}, not an object of columns.",
                raw_text(item),
                where,
            ),
        )


def _jsonl_rows(handle: TextIO, name: str) -> Iterator[RowOrReject]:
    for number, line in enumerate(handle, start=1):
        where = f"{name}:line {number}"
        if not line.strip():
            continue
        if _has_bad_bytes([line]):
            yield (
                where,
                Rejected(
                    RejectReason.ENCODING_ERROR,
                    "the line has bytes that are not UTF-8.",
                    raw_text(line),
                    where,
                ),
            )
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield (
                where,
                Rejected(
                    RejectReason.INVALID_JSON,
                    f"the line is not valid JSON ({exc.msg}, column {exc.colno}).",
                    raw_text(line),
                    where,
                ),
            )
            continue
        yield from _object_row(item, where)


def read_rows(handle: TextIO, kind: TabularFormat, name: str) -> Iterator[RowOrReject]:
    """Each row of an export's text as (location, row), or (location, Rejected) if unreadable.

    The caller opens the file (`sources.files.read_records`): strict UTF-8 for JSON,
    surrogateescape otherwise (so bad bytes are found per row), newline="" for CSV.
    """
    if kind == "csv":
        yield from _csv_rows(handle, name)
    elif kind == "json":
        yield from _json_rows(handle, name)
    else:
        yield from _jsonl_rows(handle, name)
