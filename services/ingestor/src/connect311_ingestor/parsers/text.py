"""Free text from feeds made safe for the contract.

Text: stripped, empty -> None, mojibake repaired, then cut to the contract's limits.
Mojibake repair: text that shows the classic marks of UTF-8 read as Latin-1/Windows-1252
(e.g. the NYC export's "Transportationâ\\x80\\x99s" for "Transportation\\u2019s") is repaired:
exactly when it holds C1 control characters (never found in real text) and the whole
string reads back as UTF-8; otherwise by ftfy's `fix_encoding`, which changes only text it
judges to be mojibake. The NYC sample's 183 apostrophes and 129 pairs of quotes are of the
first kind. Record ids: missing or too long ids reject the record.
"""

from __future__ import annotations

import re
from typing import Any

import ftfy

from connect311_contracts.rejects import RejectReason, clip
from connect311_contracts.request import MAX_TEXT, ServiceRequest
from connect311_ingestor.parsers.errors import RecordError

__all__ = [
    "MAX_ID",
    "MAX_URL",
    "TEXT_LIMITS",
    "as_id",
    "clean_text",
    "clean_url",
    "present",
    "repair_mojibake",
]


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
