"""Shared normalization for every feed adapter: dates, statuses, coordinates, text.

Rules (each failure raises `RecordError` with a reason and a sentence for the operator):

- Dates: ISO 8601 first, then the caller's formats, then common US forms
  (`MM/DD/YYYY hh:mm:ss AM`, `MM/DD/YYYY HH:MM[:SS]`, `MM/DD/YYYY`) and RFC 2822. A date
  without an offset is read in the source's timezone (zoneinfo), then converted to UTC.
  Years before 1990 or from 9999 on are placeholders, not dates: INVALID_DATE.
- Date quality never drops a real request: only a missing or unusable requested date
  rejects it. An unusable OPTIONAL date (closed, updated, expected: unparseable or a
  placeholder year) is dropped and noted in `anomalies` as '<field>:unparseable' or
  '<field>:placeholder'; a closure before the opening (date-only closure fields, stamped
  at midnight, are common) is moved to the opening time and noted as
  'closed_datetime:before_requested'. Each kind is counted (`ingestor_data_anomalies`).
- Statuses: `map_status` is total: every word gets a RequestStatus. Unknown words become
  `open` (or `closed` when the record has a closed date) with `known=False`; the raw word
  is always kept in `raw_status`.
- Closed reasons: from the status word (duplicate, cancelled, referred, fixed, ...), else
  from resolution text that mentions a duplicate, a cancellation or a referral.
- Coordinates: missing -> MISSING_COORDINATES; not a number, NaN, infinite, out of range
  or (0, 0) ("null island") -> INVALID_COORDINATES.
- Text: stripped, empty -> None, mojibake repaired, then cut to the contract's limits.
  Mojibake repair: text that shows the classic marks of UTF-8 read as Latin-1/Windows-1252
  (e.g. the NYC export's "Transportationâ\\x80\\x99s" for "Transportation\\u2019s") is repaired:
  exactly when it holds C1 control characters (never found in real text) and the whole
  string reads back as UTF-8; otherwise by ftfy's `fix_encoding`, which changes only text it
  judges to be mojibake. The NYC sample's 183 apostrophes and 129 pairs of quotes are of the
  first kind.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ftfy
from pydantic import ValidationError

from connect311_contracts.rejects import MAX_RAW, RejectReason, clip
from connect311_contracts.request import (
    MAX_TEXT,
    ClosedReason,
    RequestStatus,
    ServiceRequest,
    scoped_request_id,
)
from connect311_ingestor.records import Rejected
from connect311_ingestor.scrub import AllowList, scrubbed_json

MIN_YEAR = 1990
"""Dates before this are placeholders (1900-01-01, epoch 0), not real 311 activity."""
MAX_YEAR = 9998
"""Dates after this (9999-12-31) are "never" placeholders."""

US_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)


def _max_length(name: str) -> int:
    """The contract's max_length for a ServiceRequest field (read, so it never drifts)."""
    for rule in ServiceRequest.model_fields[name].metadata:
        limit = getattr(rule, "max_length", None)
        if isinstance(limit, int):
            return limit
    raise LookupError(f"ServiceRequest.{name} has no max_length")


_TEXT_FIELDS = ("service_code", "service_name", "agency_responsible", "raw_status",
                "status_notes", "description", "address", "zipcode")  # fmt: skip
TEXT_LIMITS = {name: _max_length(name) for name in _TEXT_FIELDS}
"""The contract's length limit for each free-text field of a request."""
MAX_URL = _max_length("media_url")
MAX_ID = _max_length("source_request_id")

# C1 controls, or a lead byte of UTF-8 (Â Ã â) followed by a Latin-1/cp1252 continuation mark.
_CP1252_MARKS = (
    "\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d"
    "\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
)
_C1 = re.compile("[\u0080-\u009f]")
_MOJIBAKE = re.compile(f"[\u0080-\u009f]|[\u00c2\u00c3\u00e2][\u0080-\u00bf{_CP1252_MARKS}]")


class RecordError(Exception):
    """A record cannot be used: the reason to count and a sentence for the operator."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class DateError(RecordError):
    """A value that is not a usable date; `kind` is 'unparseable' or 'placeholder'."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(RejectReason.INVALID_DATE, detail)
        self.kind = kind


# ---------------------------------------------------------------- text


def present(value: Any) -> bool:
    """Whether a raw value carries something (not None, not blank text)."""
    if value is None:
        return False
    return not (isinstance(value, str) and not value.strip())


def repair_mojibake(text: str) -> str:
    """Undo UTF-8-read-as-Latin-1 damage where it is unambiguous; other text is unchanged."""
    if text.isascii() or not _MOJIBAKE.search(text):
        return text  # the cheap check keeps clean text (nearly all of it) fast
    if _C1.search(text):
        # C1 controls never occur in real text: if the whole string reads back as UTF-8,
        # it was UTF-8 decoded as Latin-1 (the NYC export's case) and this is exact.
        try:
            return text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return ftfy.fix_encoding(text)  # Windows-1252 or mixed damage: ftfy's judgement


def clean_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """Feed text made safe for the contract: stripped, repaired, cut; blank -> None."""
    if not present(value) or isinstance(value, (dict, list)):
        return None
    text = repair_mojibake(str(value).strip())
    if len(text) > limit:
        # Long prose says it was cut; short codes (zip, status) are simply cut.
        text = clip(text, limit - 20) if limit >= 100 else text[:limit]
    return text or None


def clean_url(value: Any) -> str | None:
    """A media URL, or None when absent or longer than the contract allows (never cut)."""
    text = clean_text(value, limit=10 * MAX_URL)
    if text is None or len(text) > MAX_URL:
        return None
    return text


def as_id(value: Any, what: str) -> str:
    """A source's record id as text; missing or too long ids reject the record."""
    if isinstance(value, bool) or not present(value) or isinstance(value, (dict, list)):
        raise RecordError(RejectReason.MISSING_FIELD, f"no {what}: a record needs its own id.")
    text = str(value).strip()
    if len(text) > MAX_ID:
        raise RecordError(
            RejectReason.INVALID_FIELD, f"{what} is {len(text)} characters long (limit {MAX_ID})."
        )
    return text


# ---------------------------------------------------------------- dates


def zone(name: str) -> tzinfo:
    """The tzinfo for an IANA timezone name (UTC for 'UTC')."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name like America/Chicago)"
        ) from exc


_US_12H = re.compile(r"(\d\d)/(\d\d)/(\d{4}) (\d\d):(\d\d):(\d\d) ([AP])M")


def _parse_us_12h(text: str) -> datetime | None:
    """Fast path for Socrata's `MM/DD/YYYY hh:mm:ss AM` (strptime is ~10x slower)."""
    match = _US_12H.fullmatch(text)
    if match is None:
        return None
    month, day, year, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 1 <= hour <= 12:
        return None
    hour = hour % 12 + (12 if match.group(7) == "P" else 0)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _parse_text_date(text: str, formats: Iterable[str]) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    fast = _parse_us_12h(text)
    if fast is not None:
        return fast
    for fmt in (*formats, *US_FORMATS):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def parse_datetime(
    value: Any, *, field_name: str, tz: tzinfo = UTC, formats: Iterable[str] = ()
) -> datetime | None:
    """A feed date as an aware UTC datetime; None when absent; RecordError when not a date."""
    if not present(value):
        return None
    if isinstance(value, datetime):
        parsed: datetime | None = value
    elif isinstance(value, str):
        parsed = _parse_text_date(value.strip(), formats)
    else:
        parsed = None
    if parsed is None:
        raise DateError(
            "unparseable",
            f"{field_name} {clip(str(value), 60)!r} is not a date in a known format "
            "(ISO 8601, MM/DD/YYYY hh:mm:ss AM, RFC 2822 or the profile's formats).",
        )
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise DateError(
            "placeholder",
            f"{field_name} {clip(str(value), 60)!r} is in year {parsed.year}: a placeholder, "
            f"not a real date (accepted years {MIN_YEAR}-{MAX_YEAR}).",
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def optional_datetime(
    value: Any,
    *,
    field_name: str,
    canonical: str,
    anomalies: list[str],
    tz: tzinfo = UTC,
    formats: Iterable[str] = (),
) -> datetime | None:
    """An optional date (closed, updated, expected): an unusable one is dropped, not fatal.

    The request is kept without it and '<canonical>:<kind>' is added to `anomalies`.
    """
    try:
        return parse_datetime(value, field_name=field_name, tz=tz, formats=formats)
    except DateError as error:
        anomalies.append(f"{canonical}:{error.kind}")
        return None


# ---------------------------------------------------------------- statuses


@dataclass(frozen=True)
class StatusMapping:
    """A source's status word, normalized; `known` is False for words not in the table."""

    status: RequestStatus
    closed_reason: ClosedReason | None = None
    known: bool = True


_O, _A, _P, _C = (
    RequestStatus.OPEN,
    RequestStatus.ACKNOWLEDGED,
    RequestStatus.IN_PROGRESS,
    RequestStatus.CLOSED,
)
_FIX, _DUP, _CAN, _REF = (
    ClosedReason.FIXED,
    ClosedReason.DUPLICATE,
    ClosedReason.CANCELLED,
    ClosedReason.REFERRED,
)

STATUS_WORDS: Mapping[str, StatusMapping] = {
    # Open311 core, SeeClickFix, NYC, Chicago, Boston and FixMyStreet/open311-adapter words.
    **{
        w: StatusMapping(_O)
        for w in (
            "open",
            "new",
            "submitted",
            "received",
            "reopened",
            "pending",
            "unassigned",
            "unspecified",
            "confirmed",
        )
    },
    **{
        w: StatusMapping(_A)
        for w in ("acknowledged", "assigned", "accepted", "triaged", "under review", "reviewed")
    },
    **{
        w: StatusMapping(_P)
        for w in (
            "in progress",
            "in_progress",
            "inprogress",
            "started",
            "investigating",
            "action scheduled",
            "action_scheduled",
            "scheduled",
            "work in progress",
            "on hold",
        )
    },
    **{
        w: StatusMapping(_C)
        for w in (
            "closed",
            "archived",
            "unable to fix",
            "unable_to_fix",
            "no further action",
            "no_further_action",
            "wont fix",
            "won't fix",
        )
    },
    **{
        w: StatusMapping(_C, _FIX)
        for w in (
            "fixed",
            "completed",
            "complete",
            "resolved",
            "done",
            "fixed - council",
            "fixed - user",
        )
    },
    **{w: StatusMapping(_C, _DUP) for w in ("duplicate", "duplicated")},
    **{
        w: StatusMapping(_C, _CAN)
        for w in ("cancelled", "canceled", "withdrawn", "invalid", "rejected", "void")
    },
    **{
        w: StatusMapping(_C, _REF)
        for w in (
            "referred",
            "internal referral",
            "internal_referral",
            "transferred",
            "not councils responsibility",
            "not_councils_responsibility",
        )
    },
}


def _status_key(raw: str) -> str:
    return " ".join(raw.strip().lower().replace("-", " ").split())


def map_status(raw: Any, *, has_closed_date: bool = False) -> StatusMapping:
    """Normalize any status word (total: unknown words map to open, or closed if dated)."""
    text = "" if raw is None else str(raw)
    found = STATUS_WORDS.get(_status_key(text)) or STATUS_WORDS.get(text.strip().lower())
    if found is not None:
        return found
    return StatusMapping(_C if has_closed_date else _O, None, known=False)


_REASON_HINTS = (
    (ClosedReason.DUPLICATE, re.compile(r"\bduplicat", re.IGNORECASE)),
    (ClosedReason.CANCELLED, re.compile(r"\bcancel|\bwithdrawn\b|\bcase invalid\b", re.I)),
    (ClosedReason.REFERRED, re.compile(r"\breferr(?:ed|al)\b|\btransferred\b", re.IGNORECASE)),
)


def closed_reason_from_text(text: str | None) -> ClosedReason | None:
    """The closed reason a resolution note states (duplicate > cancelled > referred), if any."""
    if not text:
        return None
    for reason, pattern in _REASON_HINTS:
        if pattern.search(text):
            return reason
    return None


# ---------------------------------------------------------------- coordinates


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise RecordError(RejectReason.INVALID_COORDINATES, f"{name} {value!r} is not a number.")
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise RecordError(
            RejectReason.INVALID_COORDINATES, f"{name} {clip(str(value), 40)!r} is not a number."
        ) from None


def coordinates(
    lat_raw: Any,
    long_raw: Any,
    *,
    names: tuple[str, str] = ("lat", "long"),
    kind: str = "fields",
    placeholders: Iterable[tuple[float, float]] = (),
) -> tuple[float, float]:
    """Validated WGS84 (lat, long); RecordError for missing or impossible coordinates."""
    missing = [n for n, v in zip(names, (lat_raw, long_raw), strict=True) if not present(v)]
    if missing:
        label = kind if len(missing) > 1 else kind.rstrip("s")
        raise RecordError(
            RejectReason.MISSING_COORDINATES,
            f"no latitude/longitude ({label} {', '.join(missing)} empty): "
            "the request cannot be mapped.",
        )
    lat, long = _number(lat_raw, names[0]), _number(long_raw, names[1])
    for name, val, bound in ((names[0], lat, 90.0), (names[1], long, 180.0)):
        if not math.isfinite(val):
            raise RecordError(
                RejectReason.INVALID_COORDINATES, f"{name} is not a finite number ({val})."
            )
        if not -bound <= val <= bound:
            raise RecordError(
                RejectReason.INVALID_COORDINATES,
                f"{name} {val} is outside -{bound:g}..{bound:g}: not a WGS84 coordinate.",
            )
    if lat == 0.0 and long == 0.0:
        raise RecordError(
            RejectReason.INVALID_COORDINATES,
            "coordinates (0, 0) are 'null island', a placeholder for a missing location.",
        )
    for p_lat, p_long in placeholders:
        if math.isclose(lat, p_lat, abs_tol=1e-9) and math.isclose(long, p_long, abs_tol=1e-9):
            raise RecordError(
                RejectReason.MISSING_COORDINATES,
                f"coordinates ({lat}, {long}) are this source's placeholder for a request "
                "without a real location (listed in its profile), so it cannot be mapped.",
            )
    return lat, long


# ---------------------------------------------------------------- assembling a request


@dataclass
class Draft:
    """A request's values after per-field normalization, before the contract checks."""

    source: str
    source_request_id: str
    dataset: str
    raw_status: str
    status: RequestStatus
    lat: float
    long: float
    requested_datetime: datetime
    closed_reason: ClosedReason | None = None
    updated_datetime: datetime | None = None
    closed_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    texts: dict[str, Any] = field(default_factory=dict)
    media_url: str | None = None
    anomalies: list[str] = field(default_factory=list)


def finish(draft: Draft) -> ServiceRequest:
    """The contract request for a draft; RecordError for inconsistent or invalid values."""
    is_closed = draft.status is RequestStatus.CLOSED
    closed = draft.closed_datetime if is_closed else None
    anomalies = list(draft.anomalies)
    if closed is not None and closed < draft.requested_datetime:
        # Usually a date-only closure (midnight) on the day it was opened: the request is
        # real, so keep it, closed no earlier than it was opened, and say so.
        closed = draft.requested_datetime
        anomalies.append("closed_datetime:before_requested")
    texts = {name: clean_text(draft.texts.get(name), TEXT_LIMITS[name]) for name in TEXT_LIMITS}
    texts.pop("raw_status")
    try:
        return ServiceRequest(
            service_request_id=scoped_request_id(draft.source, draft.source_request_id),
            source=draft.source,
            source_request_id=draft.source_request_id,
            dataset=draft.dataset,
            status=draft.status,
            raw_status=clean_text(draft.raw_status, TEXT_LIMITS["raw_status"]) or "",
            closed_reason=draft.closed_reason if is_closed else None,
            lat=draft.lat,
            long=draft.long,
            requested_datetime=draft.requested_datetime,
            updated_datetime=draft.updated_datetime,
            closed_datetime=closed,
            expected_datetime=draft.expected_datetime,
            media_url=draft.media_url,
            anomalies=tuple(dict.fromkeys(anomalies)),
            **texts,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors()[:3]
        )
        raise RecordError(RejectReason.INVALID_FIELD, f"invalid value: {problems}.") from None


def closed_reason_for(mapping: StatusMapping, *texts: str | None) -> ClosedReason | None:
    """The status word's closed reason, else the first one a resolution text states."""
    if mapping.status is not RequestStatus.CLOSED:
        return None
    if mapping.closed_reason is not None:
        return mapping.closed_reason
    for text in texts:
        reason = closed_reason_from_text(text)
        if reason is not None:
            return reason
    return None


PERSONAL_FIELDS = frozenset(
    {
        "email",
        "e_mail",
        "first_name",
        "last_name",
        "firstname",
        "lastname",
        "phone",
        "phone_number",
        "device_id",
        "account_id",
        "reporter",
        "contact_name",
        "contact_email",
        "contact_phone",
    }
)
"""Reporter fields (Open311 POST and common exports) that never leave the adapter."""

MAX_RAW_INPUT = MAX_RAW + 200
"""Text looked at for a reject (a little over what is kept, so the cut is still marked)."""
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z][\w-]+")


_KEYS = "|".join(sorted(PERSONAL_FIELDS))
_PERSONAL_IN_TEXT = (
    # JSON "key": "value" (also in broken documents that could not be parsed)
    (re.compile(rf'"({_KEYS})"\s*:\s*"(?:[^"\\]|\\.)*"?', re.I), r'"\1": "[removed]"'),
    # XML <key>value</key>
    (re.compile(rf"<({_KEYS})>[^<]*(?:</\1>)?", re.I), r"<\1>[removed]</\1>"),
    # form-encoded key=value
    (re.compile(rf"(^|[&?])({_KEYS})=[^&]*", re.I), r"\1\2=[removed]"),
)


def redact_text(text: str) -> str:
    """Untrusted text with reporter fields and email addresses blanked out."""
    for pattern, replacement in _PERSONAL_IN_TEXT:
        text = pattern.sub(replacement, text)
    return _EMAIL.sub("[email removed]", text)


def without_personal_data(record: Any) -> Any:
    """A copy of a JSON-like record without reporter fields (at any depth)."""
    if isinstance(record, Mapping):
        return {
            k: without_personal_data(v)
            for k, v in record.items()
            if str(k).strip().lower().replace("-", "_") not in PERSONAL_FIELDS
        }
    if isinstance(record, list):
        return [without_personal_data(v) for v in record]
    return record


def raw_text(record: Any) -> str:
    """A record as bounded text for the rejects topic, without reporter personal data."""
    if isinstance(record, (bytes, bytearray)):
        text = bytes(record[:MAX_RAW_INPUT]).decode("utf-8", errors="replace")
    elif isinstance(record, str):
        text = record[:MAX_RAW_INPUT]
    else:
        try:
            text = json.dumps(without_personal_data(record), ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(record)
    # Addresses can hide anywhere (free text, XML, CSV): none reaches the rejects topic.
    return clip(redact_text(text[:MAX_RAW_INPUT]))


def rejected(
    error: RecordError, raw: Any, location: str | None, allow: AllowList | None = None
) -> Rejected:
    """The Rejected result for a RecordError on a raw record.

    With `allow` (the source type's allow-list) the parsed record itself is carried and only
    its allow-listed fields reach the rejects topic (see `scrub`); without, its text is masked.
    """
    if allow is not None:
        text = scrubbed_json(raw, allow)
        return Rejected(error.reason, error.detail, text, location, record=raw, allow=allow)
    return Rejected(error.reason, error.detail, raw_text(raw), location)


def record_location(location: str | None, index: int, unit: str = "record") -> str:
    """Where a record sits in a document: 'file.xml, record 3' (1-based)."""
    where = f"{unit} {index + 1}"
    return f"{location}, {where}" if location else where
