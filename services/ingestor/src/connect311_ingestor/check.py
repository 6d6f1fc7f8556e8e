"""`connect311-ingestor check`: what importing a file would do, before anything is published.

Reads a sample of an export (or a whole Open311 requests document or saved SeeClickFix
issues page) with a profile and reports the column mapping, the first normalized requests
and the rejects per reason with one example each. Nothing here touches a broker or a
database: the only I/O is reading the file, so an operator can fix a profile and check
again in a loop.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connect311_contracts.request import ServiceRequest
from connect311_ingestor.exclusions import Exclusion
from connect311_ingestor.parsers.open311 import request_records
from connect311_ingestor.parsers.open311_document import FeedError
from connect311_ingestor.parsers.profiles import BUILTIN_PROFILES, ColumnProfile, ColumnSpec
from connect311_ingestor.parsers.tabular import parse_rows
from connect311_ingestor.records import Accepted, ParseResult
from connect311_ingestor.sources.files import (
    open311_format,
    parse_open311_file,
    parse_seeclickfix_file,
    read_records,
    seeclickfix_page,
)

__all__ = [
    "CheckReport",
    "ColumnMapping",
    "RejectExample",
    "check_file",
    "describe",
    "infer_profile",
    "source_columns",
]

_REQUIRED = ("id", "requested_datetime", "lat", "long")


@dataclass(frozen=True)
class ColumnMapping:
    """One canonical field and the source column(s) it is read from."""

    field: str
    columns: tuple[str, ...]
    found: bool  # at least one of the columns is in the file


@dataclass(frozen=True)
class RejectExample:
    """The first reject of a reason: where it is and what is wrong."""

    location: str
    detail: str


@dataclass
class CheckReport:
    """Everything `check` prints about one file."""

    file: str
    kind: str
    profile: ColumnProfile
    profile_name: str
    inferred: bool
    mapping: list[ColumnMapping]
    unmapped: list[str]
    records: int = 0
    rows: int = 0
    """Export rows read for those records (more than `records` when rows are folded)."""
    accepted: int = 0
    samples: list[ServiceRequest] = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)
    reject_rows: Counter[str] = field(default_factory=Counter)
    """Export rows per reject reason (a rejected folded record covers all its rows)."""
    examples: dict[str, RejectExample] = field(default_factory=dict)
    excluded: int = 0
    """Records of a category the profile excludes (`exclude_service_codes`/`_names`)."""
    excluded_example: RejectExample | None = None
    anomalies: Counter[str] = field(default_factory=Counter)
    """Data-quality notes ('<field>:<kind>') of accepted records, per kind."""
    anomaly_examples: dict[str, RejectExample] = field(default_factory=dict)


def _columns(spec: ColumnSpec) -> tuple[str, ...]:
    if spec is None:
        return ()
    return (spec,) if isinstance(spec, str) else tuple(spec)


def _mapping(profile: ColumnProfile, present: Sequence[str]) -> list[ColumnMapping]:
    have = set(present)
    out = []
    for name, spec in profile.columns:
        columns = _columns(spec)
        if columns:
            out.append(ColumnMapping(name, columns, any(c in have for c in columns)))
    return out


def _unmapped(profile: ColumnProfile, present: Sequence[str]) -> list[str]:
    used = set(profile.read_columns())
    return [c for c in present if c not in used]


def infer_profile(present: Sequence[str]) -> str | None:
    """The built-in profile whose required columns are all in the file (most matches wins)."""
    have = set(present)
    best: tuple[int, str] | None = None
    for name, profile in BUILTIN_PROFILES.items():
        columns = profile.columns
        required = [_columns(getattr(columns, f)) for f in _REQUIRED]
        if not all(any(c in have for c in spec) for spec in required):
            continue
        score = sum(1 for m in _mapping(profile, present) if m.found)
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else None


def source_columns(path: Path, rows: int) -> list[str]:
    """The column names of the first `rows` rows of a tabular export, in file order."""
    seen: dict[str, None] = {}
    for _, item in itertools.islice(read_records(path), rows):
        if isinstance(item, Mapping):
            seen.update(dict.fromkeys(str(k) for k in item))
    return list(seen)


def _document_columns(path: Path, profile: ColumnProfile, rows: int) -> list[str]:
    fmt = open311_format(path, profile)
    assert fmt is not None
    try:
        records = request_records(path.read_bytes(), fmt=fmt)
    except FeedError:
        return []  # the parse reports the document's reject
    seen: dict[str, None] = {}
    for record in records[:rows]:
        if isinstance(record, Mapping):
            seen.update(dict.fromkeys(str(k) for k in record))
    return list(seen)


def _page_columns(path: Path, rows: int) -> list[str]:
    """The keys of the first `rows` issues of a saved SeeClickFix page, in file order."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return []  # the parse reports the page's reject
    issues = data.get("issues", data.get("result")) if isinstance(data, Mapping) else None
    issues = [issues] if isinstance(issues, Mapping) else issues
    seen: dict[str, None] = {}
    for issue in issues[:rows] if isinstance(issues, list) else []:
        if isinstance(issue, Mapping):
            seen.update(dict.fromkeys(str(k) for k in issue))
    return list(seen)


def _tabular_results(path: Path, profile: ColumnProfile) -> Iterator[ParseResult]:
    return parse_rows(read_records(path), profile)


def check_file(
    path: Path,
    profile: ColumnProfile | None,
    *,
    profile_name: str = "",
    rows: int = 1000,
    samples: int = 5,
) -> CheckReport:
    """Parse the first `rows` records of `path` and report what an import would do.

    Without a profile the built-in one that fits the file's columns is used; ValueError
    when none does. OSError when the file cannot be read.
    """
    inferred = profile is None
    if profile is None:
        open311 = BUILTIN_PROFILES["open311"]
        if open311_format(path, open311) == "xml":
            profile, profile_name = open311, "open311"
        else:
            present = source_columns(path, rows)
            name = infer_profile(present)
            if name is None and path.suffix.lower() == ".json" and "issues" in present:
                name = "seeclickfix"  # a saved SeeClickFix page {"metadata", "issues"}
            if name is None:
                shown = ", ".join(present[:8]) or "none"
                raise ValueError(
                    f"no built-in profile fits the columns of {path.name} ({shown}); "
                    "write a profile (docs/feeds.md) and pass --profile PATH"
                )
            profile, profile_name = BUILTIN_PROFILES[name], name
    document = open311_format(path, profile)
    if document is not None:
        present = _document_columns(path, profile, rows)
        results: Iterator[ParseResult] = iter(parse_open311_file(path, profile, document))
        kind = f"Open311 GeoReport v2 {document.upper()}"
    elif seeclickfix_page(path, profile):
        present = _page_columns(path, rows)
        results = iter(parse_seeclickfix_file(path, profile))
        kind = "SeeClickFix API v2 issues page"
    else:
        present = source_columns(path, rows)
        results = _tabular_results(path, profile)
        kind = path.suffix.lower().lstrip(".").upper() + " export"
    report = CheckReport(
        file=path.name,
        kind=kind,
        profile=profile,
        profile_name=profile_name or profile.source,
        inferred=inferred,
        mapping=_mapping(profile, present),
        unmapped=_unmapped(profile, present),
    )
    exclusion = profile.exclusion()
    for result in itertools.islice(results, rows):
        _tally(report, result, samples, exclusion)
    return report


def _tally(report: CheckReport, result: ParseResult, samples: int, exclusion: Exclusion) -> None:
    report.records += 1
    report.rows += result.rows
    if isinstance(result, Accepted):
        request = result.request
        where = result.location or report.file
        if exclusion and exclusion.excludes(request):
            report.excluded += 1
            if report.excluded_example is None:
                category = request.service_code or request.service_name
                report.excluded_example = RejectExample(where, f"category {category}")
            return
        report.accepted += 1
        for kind in request.anomalies:
            report.anomalies[kind] += 1
            report.anomaly_examples.setdefault(
                kind, RejectExample(where, request.service_request_id)
            )
        if len(report.samples) < samples:
            report.samples.append(request)
        return
    reason = result.reason.value
    report.rejects[reason] += 1
    report.reject_rows[reason] += result.rows
    if reason not in report.examples:
        report.examples[reason] = RejectExample(result.location or report.file, result.detail)


def describe(value: Any) -> str:
    """A short cell for a table: empty for None, ISO for dates."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text if len(text) <= 40 else text[:39] + "…"
