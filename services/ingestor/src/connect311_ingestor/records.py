"""What a parser yields for each feed record: a usable request, or a reasoned rejection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ServiceRequest
from connect311_ingestor.scrub import AllowList


@dataclass(frozen=True)
class Note:
    """One comment or status note a source gave on a request, with its time (text only:
    who wrote it is never read)."""

    at: datetime
    text: str


@dataclass(frozen=True)
class Accepted:
    """A feed record turned into the canonical request."""

    request: ServiceRequest
    location: str | None = None
    notes: tuple[Note, ...] = ()
    """Every comment the record holds (each becomes its own timeline entry; see `notes`)."""
    rows: int = 1
    """Export rows folded into this record (a case with one row per violation; `folding`)."""


@dataclass(frozen=True)
class Rejected:
    """A feed record that cannot be used, and why.

    What reaches the rejects topic is decided in one place (`pipeline.to_reject`, see
    `scrub`): with `record` and `allow`, the allow-listed fields of the parsed record
    (`raw` is then that same scrubbed JSON); otherwise `raw` with every word that is not a
    known key masked.
    """

    reason: RejectReason
    detail: str
    raw: str = ""
    location: str | None = None
    record: Any = None
    """The parsed record (a mapping from JSON, XML or a CSV row), when there was one."""
    allow: AllowList | None = None
    """Which of `record`'s keys may be kept (its source type's allow-list)."""
    rows: int = 1
    """Export rows this rejection covers (all the rows of a folded record; `folding`)."""


ParseResult = Accepted | Rejected
