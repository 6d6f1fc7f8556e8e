"""State rules: which snapshot wins, and the rows a request event turns into."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus, ServiceRequest

Rank = tuple[datetime, datetime, str]


def naive_utc(value: datetime) -> datetime:
    """A datetime as naive UTC (the storage convention)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def aware_utc(value: datetime | None) -> datetime | None:
    """A stored naive-UTC datetime as an aware one."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def source_time(request: ServiceRequest) -> datetime:
    """When the city says this snapshot was true (latest of its own timestamps)."""
    times = [request.requested_datetime, request.updated_datetime, request.closed_datetime]
    return naive_utc(max(t for t in times if t is not None))


def event_rank(event: RequestEvent) -> Rank:
    """Total order of snapshots of one request: source time, then ingest time, then id.

    The stored snapshot is always the highest-ranked event seen, so the final state does not
    depend on the order (or repetition) in which events arrive.
    """
    return (source_time(event.request), naive_utc(event.occurred_at), event.event_id)


def is_newer(candidate: Rank, stored: Rank | None) -> bool:
    """True when the candidate snapshot should replace the stored one."""
    return stored is None or candidate > stored


def request_row(event: RequestEvent) -> dict[str, Any]:
    """The `requests` row for an event's snapshot."""
    req = event.request
    rank = event_rank(event)
    closed = req.closed_datetime if req.status is RequestStatus.CLOSED else None
    hours = None
    if closed is not None:
        hours = int((closed - req.requested_datetime).total_seconds() // 3600)
    return {
        "service_request_id": req.service_request_id,
        "source": req.source,
        "source_request_id": req.source_request_id,
        "dataset": req.dataset,
        "service_code": req.service_code,
        "service_name": req.service_name,
        "agency_responsible": req.agency_responsible,
        "status": req.status.value,
        "raw_status": req.raw_status,
        "closed_reason": req.closed_reason.value if req.closed_reason else None,
        "status_notes": req.status_notes,
        "description": req.description,
        "address": req.address,
        "zipcode": req.zipcode,
        "lat": req.lat,
        "long": req.long,
        "requested_datetime": naive_utc(req.requested_datetime),
        "updated_datetime": _opt(req.updated_datetime),
        "closed_datetime": _opt(req.closed_datetime),
        "expected_datetime": _opt(req.expected_datetime),
        "media_url": req.media_url,
        "opened_day": naive_utc(req.requested_datetime).date().isoformat(),
        "closed_day": naive_utc(closed).date().isoformat() if closed else None,
        "hours_to_close": hours,
        "rank_source_at": rank[0],
        "rank_occurred_at": rank[1],
        "rank_event_id": rank[2],
        "last_event_type": event.event_type,
    }


def history_row(event: RequestEvent) -> dict[str, Any]:
    """The `request_history` row (one timeline entry) for an event."""
    req = event.request
    return {
        "event_id": event.event_id,
        "service_request_id": req.service_request_id,
        "event_type": event.event_type,
        "status": req.status.value,
        "previous_status": event.previous_status.value if event.previous_status else None,
        "status_notes": req.status_notes,
        "occurred_at": naive_utc(event.occurred_at),
        "source_at": source_time(req),
        "backfill": int(event.backfill),
    }


def _opt(value: datetime | None) -> datetime | None:
    return naive_utc(value) if value is not None else None


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC text for a stored datetime ('Z' suffix)."""
    aware = aware_utc(value)
    return aware.isoformat().replace("+00:00", "Z") if aware else None


FEATURE_FIELDS = (
    "service_request_id",
    "status",
    "service_name",
    "service_code",
    "agency_responsible",
    "dataset",
    "requested_datetime",
    "updated_datetime",
    "address",
    "description",
)


def feature(row: Any) -> dict[str, Any]:
    """A GeoJSON Feature for one stored request (the map's and the stream's shape)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return {
        "type": "Feature",
        "id": m["service_request_id"],
        "geometry": {"type": "Point", "coordinates": [m["long"], m["lat"]]},
        "properties": {
            "service_request_id": m["service_request_id"],
            "status": m["status"],
            "service_name": m["service_name"],
            "service_code": m["service_code"],
            "agency_responsible": m["agency_responsible"],
            "dataset": m["dataset"],
            "requested_datetime": iso(m["requested_datetime"]),
            "updated_datetime": iso(m["updated_datetime"]),
            "address": m["address"],
            "description": m["description"],
        },
    }
