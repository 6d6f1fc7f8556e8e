"""What an adapter yields for each feed record: a usable request, or a reasoned rejection."""

from __future__ import annotations

from dataclasses import dataclass

from connect311_contracts.rejects import RejectReason
from connect311_contracts.request import ServiceRequest


@dataclass(frozen=True)
class Accepted:
    """A feed record turned into the canonical request."""

    request: ServiceRequest
    location: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A feed record that cannot be used, why, and its raw text for the operator."""

    reason: RejectReason
    detail: str
    raw: str
    location: str | None = None


ParseResult = Accepted | Rejected
