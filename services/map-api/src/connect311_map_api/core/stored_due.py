"""The due-date rule's view of a stored request row (pure: a mapping in, a DueInput out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connect311_contracts.due import DueInput

__all__ = ["due_input"]


def due_input(row: Any) -> DueInput:
    """A stored request (a row or mapping with the requests table's due columns) as the
    due-date rule reads it."""
    m: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
    is_open = m["status"] != "closed"
    return DueInput(
        requested_at=m["requested_datetime"],
        expected_at=m["expected_datetime"],
        service_code=m["service_code"],
        service_name=m["service_name"],
        agency=m["agency_responsible"],
        is_open=is_open,
        # A reopened request may still carry its old close time: it is open, not closed.
        closed_at=None if is_open else m["closed_datetime"],
    )
