"""One stored request's due date as the request detail shows it (`/api/requests/{id}`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connect311_contracts.due import due_status
from connect311_contracts.service_levels import ServiceLevels, ServiceLevelsError, load
from connect311_map_api.core.state import iso
from connect311_map_api.core.stored_due import due_input
from connect311_map_api.settings import MapApiSettings

__all__ = ["due_fields"]

log = logging.getLogger(__name__)


def due_fields(settings: MapApiSettings, row: Any, now: datetime | None = None) -> dict[str, Any]:
    """due_datetime, its source and target, and whether (and by how long) it is overdue."""
    zone = settings.display_timezone
    try:
        levels = load(settings.service_levels_file, zone)
    except ServiceLevelsError as exc:
        # A resident's request page must not fail over the operator's file: the feed's own
        # date still counts; the department view answers 503 with the same reason.
        log.warning("service levels unusable, feed due dates only: %s", exc)
        levels = ServiceLevels(zone=ZoneInfo(zone))
    moment = now or datetime.now(UTC).replace(tzinfo=None)
    status = due_status(due_input(row), levels, moment)
    due = status.due
    return {
        "due_datetime": iso(due.at),
        "due_source": due.source.value if due.source else None,
        "due_target": due.target.describe() if due.target else None,
        "overdue": status.overdue,
        "overdue_seconds": status.overdue_seconds,
    }
