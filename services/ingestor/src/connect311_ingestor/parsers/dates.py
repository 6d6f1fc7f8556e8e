"""Feed dates as aware UTC datetimes.

ISO 8601 first, then the caller's formats, then common US forms (`MM/DD/YYYY hh:mm:ss AM`,
`MM/DD/YYYY HH:MM[:SS]`, `MM/DD/YYYY`) and RFC 2822. A date without an offset is read in the
source's timezone (zoneinfo), then converted to UTC. Years before 1990 or from 9999 on are
placeholders, not dates: INVALID_DATE.

Date quality never drops a real request: only a missing or unusable requested date rejects
it. An unusable OPTIONAL date (closed, updated, expected: unparseable or a placeholder year)
is dropped and noted in `anomalies` as '<field>:unparseable' or '<field>:placeholder' (see
`optional_datetime`; the closure-before-opening rule is in `normalize.finish`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connect311_contracts.rejects import RejectReason, clip
from connect311_ingestor.parsers.errors import RecordError
from connect311_ingestor.parsers.text import present

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "US_FORMATS",
    "DateError",
    "optional_datetime",
    "parse_datetime",
    "zone",
]

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


class DateError(RecordError):
    """A value that is not a usable date; `kind` is 'unparseable' or 'placeholder'."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(RejectReason.INVALID_DATE, detail)
        self.kind = kind


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
