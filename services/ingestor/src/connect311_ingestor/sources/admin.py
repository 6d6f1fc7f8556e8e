"""Operating sources: what `connect311-ingestor sources` lists, and moving a watermark.

Pure functions over settings and what the store returned; the CLI does the I/O.

Watermark keys per kind of source (inside the `ingestor_source_cursor` JSON):
Open311 `requests_until` (and `updates_until` when updates are polled), SeeClickFix
`updated_after`; both set `caught_up` after their first poll (before it, events are marked
backfill and never alerted). File imports keep `last_import`/`imported_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.sources.open311 import iso

__all__ = [
    "SourceKind",
    "SourceRow",
    "configured_sources",
    "moved_watermark",
    "parse_when",
    "source_rows",
    "watermark_text",
]

SourceKind = Literal["open311", "seeclickfix", "push", "file"]


@dataclass(frozen=True)
class SourceRow:
    """One line of `connect311-ingestor sources`."""

    source: str
    kind: str
    requests: int
    rejected: int
    watermark: str
    last_poll: str
    last_error: str


def configured_sources(settings: IngestorSettings) -> dict[str, SourceKind]:
    """Every source the settings name, with its kind."""
    found: dict[str, SourceKind] = {f.source: "open311" for f in settings.open311_feeds}
    found.update({f.source: "seeclickfix" for f in settings.seeclickfix_feeds})
    if settings.tokens():
        found.setdefault(settings.push_source, "push")
    return found


def _kind_of(cursor: Mapping[str, Any]) -> SourceKind | None:
    if "requests_until" in cursor:
        return "open311"
    if "updated_after" in cursor:
        return "seeclickfix"
    if "last_import" in cursor or any(str(k).startswith("replay:") for k in cursor):
        return "file"
    return None


def watermark_text(cursor: Mapping[str, Any] | None) -> str:
    """The watermark in words: up to when the source has been read."""
    if not cursor:
        return "- (never polled: the first poll reads backfill_days)"
    parts = []
    for key in ("requests_until", "updates_until", "updated_after"):
        if key in cursor:
            parts.append(f"{key}={cursor[key]}")
    if "last_import" in cursor:
        parts.append(f"last import {cursor['last_import']} at {cursor.get('imported_at', '?')}")
    if not cursor.get("caught_up", True):
        parts.append("(first poll not finished)")
    return ", ".join(parts) or "-"


def _when(value: Any) -> str:
    return iso(value) if isinstance(value, datetime) else "-"


def source_rows(
    settings: IngestorSettings,
    cursors: Mapping[str, Mapping[str, Any]],
    health: Mapping[str, Mapping[str, Any]],
    rejects: Mapping[tuple[str, str], int],
    requests: Mapping[str, int],
) -> list[SourceRow]:
    """Configured sources first (in settings order), then any others the database knows."""
    configured = configured_sources(settings)
    known = set(cursors) | set(health) | set(requests) | {s for s, _ in rejects}
    names = list(configured) + sorted(known - set(configured))
    rows = []
    for name in names:
        cursor = cursors.get(name)
        polled = health.get(name, {})
        error = polled.get("last_error")
        failed_last = error is not None and polled.get("last_error_at") == polled.get(
            "last_poll_at"
        )
        error_text = f"{_when(polled.get('last_error_at'))} {error}" if error else "-"
        kind = configured.get(name) or _kind_of(cursor or {}) or "?"
        rows.append(
            SourceRow(
                source=name,
                kind=kind if name in configured else f"{kind} (not configured)",
                requests=requests.get(name, 0),
                rejected=sum(n for (s, _), n in rejects.items() if s == name),
                watermark=watermark_text(cursor),
                last_poll=_when(polled.get("last_poll_at")) + (" FAILED" if failed_last else ""),
                last_error=error_text.splitlines()[0] if error_text else "-",
            )
        )
    return rows


def parse_when(text: str) -> datetime:
    """A date (YYYY-MM-DD) or ISO 8601 date-time; no offset means UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: give YYYY-MM-DD or an ISO 8601 time such as "
            "2024-05-01T06:00:00-04:00 (no offset means UTC)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def moved_watermark(
    kind: SourceKind, cursor: Mapping[str, Any] | None, when: datetime, *, updates: bool
) -> dict[str, Any]:
    """The cursor with its watermark at `when`: the next poll reads from there, live."""
    moved = dict(cursor or {})
    if kind == "open311":
        moved["requests_until"] = iso(when)
        if updates or "updates_until" in moved:
            moved["updates_until"] = iso(when)
    elif kind == "seeclickfix":
        moved["updated_after"] = iso(when)
    else:
        raise ValueError(f"a {kind} source has no watermark to move; only polled feeds do")
    moved["caught_up"] = True  # from here on changes are live (alerted), not history
    return moved
