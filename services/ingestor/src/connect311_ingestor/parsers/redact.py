"""Reporter personal data kept out of everything a parser hands on (rejects above all)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from connect311_contracts.rejects import MAX_RAW, clip

__all__ = ["PERSONAL_FIELDS", "raw_text", "redact_text", "without_personal_data"]


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
"""Reporter fields (Open311 POST and common exports) that never leave the parser."""

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
