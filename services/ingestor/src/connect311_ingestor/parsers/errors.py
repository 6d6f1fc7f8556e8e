"""The one error a parser raises for a record it cannot use."""

from __future__ import annotations

from connect311_contracts.rejects import RejectReason

__all__ = ["RecordError"]


class RecordError(Exception):
    """A record cannot be used: the reason to count and a sentence for the operator."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
