"""What of a rejected record may be kept for the operator: an allow-list, never a deny-list.

A rejected record goes to `requests.rejects.v1`, which operators read; it never reaches the
public map. Real feeds put personal data anywhere: reporter fields, SeeClickFix
`comments[].commenter` and `questions[]` answers, export columns such as owner or reporter
names, free text. So a reject keeps only:

- keys a source type is known to use for non-personal request fields (`OPEN311_REQUEST`,
  `OPEN311_UPDATE`, `SEECLICKFIX_ISSUE`; for exports, the columns the profile maps, see
  `columns_allow_list`), with scalar values cut to `MAX_VALUE` characters;
- every other key is dropped, and only how many were dropped is said (`_dropped`);
- free text (description, status notes) becomes its length only, e.g.
  `"[text: 142 chars]"` (a SeeClickFix summary is kept: in practice it is the category title).
  Decision: a rejected record is never published on purpose, so none of its free text needs
  to be kept; free text is where callers write names and phone numbers, and no reject reason
  depends on its content (a too-long description is said in the reject's detail). The
  record is recognised by its id, location, category, dates and address instead.
- a document that could not be parsed at all (invalid JSON or XML, a CSV line with the wrong
  number of fields) has no keys to check: `mask_text` keeps its punctuation and the words
  that are allow-listed keys, and turns every other letter into `x` and digit into `9`, so
  the operator still sees the shape of the error (`"service_code":999`) and nothing else.

`scrub_record` and `mask_text` are applied in ONE place, `pipeline.to_reject`, which every
source (file import, replay, Open311 and SeeClickFix pollers, push) passes through.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from connect311_contracts.rejects import MAX_RAW

__all__ = [
    "ID",
    "KEEP",
    "MAX_VALUE",
    "OPEN311_REQUEST",
    "OPEN311_UPDATE",
    "SEECLICKFIX_ISSUE",
    "TEXT",
    "AllowList",
    "Rule",
    "columns_allow_list",
    "content_hash",
    "mask_text",
    "record_id",
    "scrub_record",
    "scrubbed_json",
]


class Rule(Enum):
    """What is kept of an allow-listed key's value."""

    KEEP = "keep"  # a scalar, cut to MAX_VALUE characters
    ID = "id"  # kept like KEEP, and names the record (a reject is recorded once per id)
    TEXT = "text"  # free text: only its length


KEEP = Rule.KEEP
ID = Rule.ID
TEXT = Rule.TEXT

AllowList = Mapping[str, "Rule | AllowList"]
"""Allowed keys: a rule, or a nested allow-list for an object (or a list of objects)."""

MAX_VALUE = 300
"""Longest kept scalar (addresses and ids are far shorter; longer is not a field we know)."""
MAX_ITEMS = 20
"""Most list items kept (e.g. Boston's media list); the rest count as dropped."""
DROPPED = "_dropped"

# GeoReport v2 request fields, minus the reporter ones (first_name, last_name, email, phone,
# device_id, account_id) which are simply not listed.
OPEN311_REQUEST: AllowList = {
    "service_request_id": ID,
    "token": KEEP,
    "status": KEEP,
    "status_notes": TEXT,
    "service_name": KEEP,
    "service_code": KEEP,
    "description": TEXT,
    "agency_responsible": KEEP,
    "service_notice": TEXT,
    "requested_datetime": KEEP,
    "updated_datetime": KEEP,
    "expected_datetime": KEEP,
    "closed_datetime": KEEP,
    "address": KEEP,
    "address_string": KEEP,
    "address_id": KEEP,
    "zipcode": KEEP,
    "lat": KEEP,
    "long": KEEP,
    "media_url": {"url": KEEP, "id": KEEP},  # a URL, or Boston's list of {id, url, tags}
    "non_public": KEEP,
    "jurisdiction_id": KEEP,
}

OPEN311_UPDATE: AllowList = {
    "update_id": ID,
    "service_request_id": KEEP,
    "status": KEEP,
    "updated_datetime": KEEP,
    "description": TEXT,
    "media_url": {"url": KEEP, "id": KEEP},
    "external_status_code": KEEP,
}

# SeeClickFix API v2 issue fields: no reporter, comments, questions, avatars or user ids.
SEECLICKFIX_ISSUE: AllowList = {
    "id": ID,
    "status": KEEP,
    "summary": KEEP,
    "description": TEXT,
    "lat": KEEP,
    "lng": KEEP,
    "address": KEEP,
    "created_at": KEEP,
    "updated_at": KEEP,
    "acknowledged_at": KEEP,
    "closed_at": KEEP,
    "reopened_at": KEEP,
    "html_url": KEEP,
    "url": KEEP,
    "request_type": {"id": KEEP, "title": KEEP, "organization": KEEP, "url": KEEP},
    "media": {"image_full": KEEP, "image_square_100x100": KEEP, "video_url": KEEP},
}

_FREE_TEXT_COLUMNS = ("description", "status_notes", "closed_reason_text")


def columns_allow_list(columns: Mapping[str, str | list[str] | None]) -> AllowList:
    """An export's allow-list: only the columns the profile maps to a canonical field.

    `columns` is canonical field -> column name(s) (a profile's `columns`); free-text fields
    keep their length only. A column mapped to both a kept and a free-text field (NYC's
    Resolution Description is status notes and closed-reason text) is free text.
    """
    allowed: dict[str, Rule] = {}
    for field, spec in columns.items():
        names = [spec] if isinstance(spec, str) else list(spec or [])
        rule = TEXT if field in _FREE_TEXT_COLUMNS else ID if field == "id" else KEEP
        for name in names:
            # One column in two roles: free text wins (kept as length), then id.
            both = (rule, allowed.get(name))
            allowed[name] = TEXT if TEXT in both else ID if ID in both else KEEP
    return allowed


def _scalar(value: Any, rule: Rule) -> Any:
    if rule is TEXT:
        return f"[text: {len(str(value))} chars]" if value not in (None, "") else value
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE else value[:MAX_VALUE] + "…"
    return value


def _scrub(value: Any, rule: Rule | AllowList) -> tuple[Any, int]:
    """(kept value, how many keys or items were dropped) for one allowed key's value."""
    if isinstance(value, list):
        kept: list[Any] = []
        dropped = max(0, len(value) - MAX_ITEMS)
        for item in value[:MAX_ITEMS]:
            item_value, item_dropped = _scrub(item, rule)
            dropped += item_dropped
            if item_value is not _DROP:
                kept.append(item_value)
            else:
                dropped += 1
        return kept, dropped
    if isinstance(value, Mapping):
        if isinstance(rule, Rule):
            return _DROP, 0  # an object where a scalar belongs: nothing known to keep
        out, dropped = _scrub_mapping(value, rule)
        return out, dropped
    if value is None or isinstance(value, (str, int, float, bool)):
        return _scalar(value, rule if isinstance(rule, Rule) else KEEP), 0
    return _DROP, 0


_DROP = object()


def _scrub_mapping(record: Mapping[Any, Any], allow: AllowList) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    dropped = 0
    for key, value in record.items():
        rule = allow.get(key) if isinstance(key, str) else None
        if rule is None:
            dropped += 1
            continue
        kept, inner = _scrub(value, rule)
        dropped += inner
        if kept is _DROP:
            dropped += 1
        else:
            out[key] = kept
    return out, dropped


def scrub_record(record: Any, allow: AllowList) -> Any:
    """The allow-listed part of a parsed record; `_dropped` says how much was left out."""
    if isinstance(record, Mapping):
        out, dropped = _scrub_mapping(record, allow)
        if dropped:
            out[DROPPED] = dropped
        return out
    if isinstance(record, list):
        kept, dropped = _scrub(record, allow)
        return {"items": kept, DROPPED: dropped} if dropped else kept
    return {DROPPED: 1}  # a bare value where a record belongs: nothing known to keep


def scrubbed_json(record: Any, allow: AllowList) -> str:
    """`scrub_record` as compact JSON (what a reject's `raw` carries)."""
    return json.dumps(scrub_record(record, allow), ensure_ascii=False, default=str)[:MAX_RAW]


def _words(allow_lists: Iterable[AllowList]) -> frozenset[str]:
    words: set[str] = set()
    for allow in allow_lists:
        for key, rule in allow.items():
            words.add(key)
            if not isinstance(rule, Rule):
                words |= _words([rule])
    return frozenset(words)


# Words an unparseable document may show as they are: allow-listed keys, JSON literals and
# the GeoReport / SeeClickFix envelope names (they say which document it was).
_KNOWN_WORDS = _words([OPEN311_REQUEST, OPEN311_UPDATE, SEECLICKFIX_ISSUE]) | {
    "true",
    "false",
    "null",
    "xml",
    "version",
    "encoding",
    "service_requests",
    "request",
    "requests",
    "service_requests_updates",
    "service_request_updates",
    "request_update",
    "services",
    "service",
    "issues",
    "metadata",
    "pagination",
    "errors",
    "error",
    "code",
}
_WORD = re.compile(r"\w+")  # one character class, no alternation: linear time
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")


def _mask_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word in _KNOWN_WORDS:
        return word
    return _DIGIT.sub("9", _LETTER.sub("x", word))


def mask_text(text: str) -> str:
    """Unparseable text with every word that is not a known key masked (shape kept)."""
    return _WORD.sub(_mask_word, text[: MAX_RAW + 100])  # a little over: the cut is marked


def record_id(record: Any, allow: AllowList) -> str | None:
    """The record's own id (the first non-empty value under an ID key), if it has one."""
    if not isinstance(record, Mapping):
        return None
    for key, rule in allow.items():
        value = record.get(key)
        if rule is ID and isinstance(value, (str, int)) and str(value).strip():
            return str(value).strip()[:MAX_VALUE]
    return None


def content_hash(record: Any, text: str) -> str:
    """A digest of what was rejected (the parsed record, else the text), for de-duplication.

    Computed over the whole record, so a changed record is a new reject; only the digest is
    kept, never the content.
    """
    try:
        body = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        body = repr(record)
    if record is None:
        body = text
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
