"""Open311 updates applied to a stored snapshot, and the replay timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connect311_contracts.request import ClosedReason, RequestStatus, ServiceRequest
from connect311_ingestor.parsers.open311_updates import RequestUpdate
from connect311_ingestor.records import Accepted
from connect311_ingestor.timeline import lifecycle, timeline, wall_offset
from connect311_ingestor.updates import apply_update

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def request(rid: str = "1", **changes: Any) -> ServiceRequest:
    fields: dict[str, Any] = {
        "service_request_id": f"city:{rid}",
        "source": "city",
        "source_request_id": rid,
        "status": RequestStatus.OPEN,
        "raw_status": "Open",
        "lat": 27.77,
        "long": -82.64,
        "requested_datetime": T0,
    }
    fields.update(changes)
    return ServiceRequest(**fields)


def update(status: RequestStatus, at: datetime, **changes: Any) -> RequestUpdate:
    fields: dict[str, Any] = {
        "update_id": "u1",
        "service_request_id": "city:1",
        "status": status,
        "raw_status": status.value,
        "closed_reason": None,
        "updated_datetime": at,
        "description": None,
        "media_url": None,
        "external_status_code": None,
    }
    fields.update(changes)
    return RequestUpdate(**fields)


def test_closing_update_sets_closed_time_reason_and_notes() -> None:
    at = T0 + timedelta(hours=5)
    result = apply_update(
        request(),
        update(RequestStatus.CLOSED, at, closed_reason=ClosedReason.FIXED, description="Filled"),
    )
    assert isinstance(result, Accepted)
    got = result.request
    assert (got.status, got.closed_datetime, got.closed_reason) == ("closed", at, "fixed")
    assert got.status_notes == "Filled" and got.updated_datetime == at


def test_reopening_update_clears_closing_fields() -> None:
    done = request(
        status=RequestStatus.CLOSED,
        raw_status="closed",
        closed_datetime=T0 + timedelta(hours=1),
        closed_reason=ClosedReason.FIXED,
    )
    result = apply_update(done, update(RequestStatus.OPEN, T0 + timedelta(hours=2)))
    assert isinstance(result, Accepted)
    assert result.request.closed_datetime is None and result.request.closed_reason is None


def test_update_closing_before_the_request_was_made_keeps_it_with_an_anomaly() -> None:
    result = apply_update(request(), update(RequestStatus.CLOSED, T0 - timedelta(days=1)))
    assert isinstance(result, Accepted)
    assert result.request.status is RequestStatus.CLOSED
    assert result.request.closed_datetime == result.request.requested_datetime
    assert result.request.anomalies == ("closed_datetime:before_requested",)


def test_closed_export_row_plays_as_open_then_closed() -> None:
    row = request(
        status=RequestStatus.CLOSED,
        raw_status="Closed",
        closed_datetime=T0 + timedelta(hours=3),
        status_notes="Fixed it",
    )
    opened, closing = lifecycle(row)
    assert (opened.at, opened.request.status, opened.request.status_notes) == (T0, "open", None)
    assert (closing.at, closing.request) == (T0 + timedelta(hours=3), row)


def test_timeline_orders_by_time_and_shifts_the_earliest_to_start() -> None:
    late = request("2", requested_datetime=T0 + timedelta(hours=2))
    early = request(
        "1",
        status=RequestStatus.CLOSED,
        raw_status="Closed",
        closed_datetime=T0 + timedelta(hours=4),
    )
    start = datetime(2030, 1, 1, tzinfo=UTC)
    cues = timeline([late, early], start=start)
    assert [(c.request.source_request_id, c.at - start) for c in cues] == [
        ("1", timedelta(0)),
        ("2", timedelta(hours=2)),
        ("1", timedelta(hours=4)),
    ]
    assert cues[2].request.closed_datetime == start + timedelta(hours=4)
    assert wall_offset(cues[2].at, start, speed=60) == 240.0
