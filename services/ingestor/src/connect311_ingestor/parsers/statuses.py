"""Status words and closed reasons, normalized.

`map_status` is total: every word gets a RequestStatus. Unknown words become `open` (or
`closed` when the record has a closed date) with `known=False`; the raw word is always kept
in `raw_status`. Closed reasons come from the status word (duplicate, cancelled, referred,
fixed, ...), else from resolution text that mentions a duplicate, a cancellation or a referral.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connect311_contracts.request import ClosedReason, RequestStatus

__all__ = [
    "STATUS_WORDS",
    "StatusMapping",
    "closed_reason_for",
    "closed_reason_from_text",
    "map_status",
]


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
