"""A request's status in words a resident understands: one wording for map, track page, email
and Open311 output, so a duplicate never reads as just "Closed" anywhere.

"Closed — duplicate of another request (city status: Dup. of 4411)": the normalized status,
why it was closed when the source says, and the city's own status word when it adds something
(it is dropped when it only repeats the status or the reason, e.g. "Closed" or "Canceled",
and when it does not look like a status word at all: see `_looks_like_a_status`).
"""

from __future__ import annotations

from connect311_contracts.request import ClosedReason, RequestStatus

__all__ = [
    "MAX_CITY_WORD",
    "REASON_WORDS",
    "STATUS_WORDS",
    "city_status",
    "resident_status",
    "status_phrase",
]

STATUS_WORDS = {
    RequestStatus.OPEN: "Open",
    RequestStatus.ACKNOWLEDGED: "Acknowledged",
    RequestStatus.IN_PROGRESS: "In progress",
    RequestStatus.CLOSED: "Closed",
}
REASON_WORDS = {
    ClosedReason.FIXED: "completed",
    ClosedReason.DUPLICATE: "duplicate of another request",
    ClosedReason.CANCELLED: "cancelled",
    ClosedReason.REFERRED: "referred to another agency",
}
_SAME_AS_STATUS = {RequestStatus.OPEN: {"opened", "new"}, RequestStatus.CLOSED: {"close"}}
# City words that say nothing beyond the normalized status or reason (compared normalized).
_SAME_AS_REASON = {
    ClosedReason.FIXED: {"completed", "complete", "fixed", "resolved", "done"},
    ClosedReason.DUPLICATE: {"duplicate", "dup", "duplicated"},
    ClosedReason.CANCELLED: {"cancelled", "canceled", "cancel"},
    ClosedReason.REFERRED: {"referred"},
}
MAX_CITY_WORD = 80
"""Longest city status shown inline; longer ones are cut (the full text is in the feed)."""
MAX_CITY_WORDS = 8
MAX_CITY_DIGITS = 4
_CITY_PUNCTUATION = frozenset(" -/&'.,():")


def _status(status: RequestStatus | str) -> RequestStatus | None:
    try:
        return RequestStatus(status)
    except ValueError:
        return None


def _reason(reason: ClosedReason | str | None) -> ClosedReason | None:
    try:
        return ClosedReason(reason) if reason else None
    except ValueError:
        return None


def _normalized(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces ("In_Progress" -> "in progress")."""
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def status_phrase(status: RequestStatus | str, closed_reason: ClosedReason | str | None) -> str:
    """'Closed — referred to another agency', 'Closed', 'In progress' (no city word)."""
    known = _status(status)
    label = STATUS_WORDS[known] if known else "Unknown"
    reason = _reason(closed_reason)
    if known is RequestStatus.CLOSED and reason is not None:
        return f"{label} — {REASON_WORDS[reason]}"
    return label


def city_status(
    status: RequestStatus | str, closed_reason: ClosedReason | str | None, raw_status: str | None
) -> str | None:
    """The city's own status word when it says more than the phrase does, else None."""
    raw = " ".join((raw_status or "").split())
    if not raw:
        return None
    known = _status(status)
    reason = _reason(closed_reason)
    same: set[str] = set()
    if known is not None:
        same = {known.value.replace("_", " "), STATUS_WORDS[known].lower()}
        same |= _SAME_AS_STATUS.get(known, set())
    if known is RequestStatus.CLOSED and reason is not None:
        same |= _SAME_AS_REASON[reason] | {f"closed {w}" for w in _SAME_AS_REASON[reason]}
    if _normalized(raw) in same or not _looks_like_a_status(raw):
        return None
    return raw if len(raw) <= MAX_CITY_WORD else raw[: MAX_CITY_WORD - 1].rstrip() + "…"


def _looks_like_a_status(raw: str) -> bool:
    """An allow-list of shape: a few words of letters, little punctuation, few digits.

    The raw status goes to pages and emails, so a feed column mapped wrongly (free text, a
    reporter's phone number or address) must not ride along: anything that does not look
    like a status word is left out, and the normalized phrase is shown alone.
    """
    if len(raw.split()) > MAX_CITY_WORDS or sum(c.isdigit() for c in raw) > MAX_CITY_DIGITS:
        return False
    return all(c.isalnum() or c in _CITY_PUNCTUATION for c in raw)


def resident_status(
    status: RequestStatus | str, closed_reason: ClosedReason | str | None, raw_status: str | None
) -> str:
    """The whole status line: phrase plus the city's word when it adds something."""
    phrase = status_phrase(status, closed_reason)
    word = city_status(status, closed_reason, raw_status)
    return f"{phrase} (city status: {word})" if word else phrase
