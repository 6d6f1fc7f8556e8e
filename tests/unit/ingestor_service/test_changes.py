"""Change detection: which event (if any) a new snapshot causes, against a simple oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.request import ClosedReason, RequestStatus, ServiceRequest
from connect311_ingestor.changes import Decision, StoredState, decide, fingerprint

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def request(**changes: Any) -> ServiceRequest:
    fields: dict[str, Any] = {
        "service_request_id": "city:1",
        "source": "city",
        "source_request_id": "1",
        "status": RequestStatus.OPEN,
        "raw_status": "Open",
        "lat": 27.77,
        "long": -82.64,
        "requested_datetime": T0,
        "description": "Pothole",
    }
    fields.update(changes)
    return ServiceRequest(**fields)


def closed(**changes: Any) -> ServiceRequest:
    return request(
        status=RequestStatus.CLOSED,
        raw_status="Closed",
        closed_datetime=T0 + timedelta(days=1),
        updated_datetime=T0 + timedelta(days=1),
        **changes,
    )


def run(previous: StoredState | None, new: ServiceRequest, backfill: bool = False) -> Decision:
    return decide(previous, new, backfill=backfill, now=NOW, trace_id="t")


def test_first_sight_opens_with_backfill_flag_and_version_one() -> None:
    decision = run(None, request(), backfill=True)
    assert decision.event is not None and decision.state is not None
    assert decision.event.event_type == "request.opened"
    assert decision.event.backfill is True
    assert decision.event.previous_status is None
    assert decision.event.changed_fields == ()
    assert decision.state.version == 1
    assert decision.state.fingerprint == fingerprint(request())


def test_identical_snapshot_causes_nothing() -> None:
    state = run(None, request()).state
    assert run(state, request()) == Decision(None, None)


def test_closing_names_previous_status_and_changed_fields() -> None:
    state = run(None, request()).state
    decision = run(state, closed(closed_reason=ClosedReason.FIXED))
    assert decision.event is not None
    assert decision.event.event_type == "request.closed"
    assert decision.event.previous_status is RequestStatus.OPEN
    assert set(decision.event.changed_fields) == {
        "status",
        "raw_status",
        "closed_reason",
        "closed_datetime",
    }


def test_closed_then_open_again_is_a_reopen() -> None:
    state = run(run(None, request()).state, closed()).state
    later = request(updated_datetime=T0 + timedelta(days=2), raw_status="Reopened")
    decision = run(state, later)
    assert decision.event is not None and decision.event.event_type == "request.reopened"
    assert decision.event.previous_status is RequestStatus.CLOSED


def test_note_change_is_an_update_and_older_snapshot_is_ignored() -> None:
    state = run(None, request(updated_datetime=T0 + timedelta(hours=2))).state
    noted = request(updated_datetime=T0 + timedelta(hours=3), status_notes="Crew sent")
    decision = run(state, noted)
    assert decision.event is not None and decision.event.event_type == "request.updated"
    assert decision.event.changed_fields == ("status_notes",)
    stale = request(updated_datetime=T0 + timedelta(hours=1), description="old text")
    assert run(decision.state, stale) == Decision(None, None)


def test_newer_but_same_fingerprint_is_stored_silently() -> None:
    state = run(None, request(updated_datetime=T0)).state
    touched = request(updated_datetime=T0 + timedelta(hours=5))
    decision = run(state, touched)
    assert decision.event is None
    assert decision.state is not None and decision.state.snapshot == touched
    assert decision.state.version == state.version if state else False


def test_event_ids_are_reproducible_and_a_return_to_an_old_state_gets_a_new_id() -> None:
    first = run(None, request())
    again = run(None, request())
    assert first.event is not None and again.event is not None
    assert first.event.event_id == again.event.event_id
    moved = run(first.state, request(status_notes="x", updated_datetime=T0 + timedelta(hours=1)))
    back = run(moved.state, request(updated_datetime=T0 + timedelta(hours=2)))
    assert back.event is not None and back.event.event_type == "request.updated"
    assert back.event.event_id != first.event.event_id


def test_event_round_trips_through_the_contract() -> None:
    event = run(None, closed(closed_reason=ClosedReason.DUPLICATE)).event
    assert event is not None
    assert REQUEST_EVENT_ADAPTER.validate_json(event.model_dump_json()) == event


# ------------------------------------------------------------------ properties

STATUSES = list(RequestStatus)


@st.composite
def snapshots(draw: st.DrawFn) -> ServiceRequest:
    status = draw(st.sampled_from(STATUSES))
    hours = draw(st.integers(0, 6))
    is_closed = status is RequestStatus.CLOSED
    return request(
        status=status,
        raw_status=draw(st.sampled_from(["A", "B"])),
        closed_reason=draw(st.sampled_from([None, ClosedReason.FIXED])) if is_closed else None,
        closed_datetime=T0 + timedelta(hours=draw(st.integers(0, 3))) if is_closed else None,
        updated_datetime=draw(st.sampled_from([None, T0 + timedelta(hours=hours)])),
        description=draw(st.sampled_from(["Pothole", "Graffiti"])),
        lat=draw(st.sampled_from([27.77, 27.78])),
        status_notes=draw(st.sampled_from([None, "crew sent"])),
    )


IGNORED = {"updated_datetime", "requested_datetime"}


def _when(r: ServiceRequest) -> datetime:
    if r.updated_datetime is not None:
        return r.updated_datetime
    return r.closed_datetime or r.requested_datetime


def oracle(sequence: list[ServiceRequest]) -> list[str | None]:
    """Brute force: compare whole dumps, order by time, name the event by status change."""
    out: list[str | None] = []
    last: ServiceRequest | None = None
    for new in sequence:
        if last is None:
            out.append("request.opened")
            last = new
            continue
        if _when(new) < _when(last):
            out.append(None)
            continue
        before = {k: v for k, v in last.model_dump().items() if k not in IGNORED}
        after = {k: v for k, v in new.model_dump().items() if k not in IGNORED}
        if before == after:
            out.append(None)
        elif new.status == "closed" and last.status != "closed":
            out.append("request.closed")
        elif last.status == "closed" and new.status != "closed":
            out.append("request.reopened")
        else:
            out.append("request.updated")
        last = new
    return out


def replay(sequence: list[ServiceRequest]) -> list[str | None]:
    state: StoredState | None = None
    out: list[str | None] = []
    for new in sequence:
        decision = run(state, new)
        out.append(decision.event.event_type if decision.event else None)
        if decision.state is not None:
            state = decision.state
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(snapshots(), min_size=1, max_size=12))
def test_event_sequence_agrees_with_oracle(sequence: list[ServiceRequest]) -> None:
    assert replay(sequence) == oracle(sequence)


@settings(max_examples=200, deadline=None)
@given(st.lists(snapshots(), min_size=1, max_size=8))
def test_feeding_each_snapshot_twice_adds_no_events(sequence: list[ServiceRequest]) -> None:
    doubled = [s for s in sequence for _ in range(2)]
    assert [e for e in replay(doubled) if e] == [e for e in replay(sequence) if e]


@settings(max_examples=200, deadline=None)
@given(st.lists(snapshots(), min_size=1, max_size=8), snapshots())
def test_republishing_after_a_crash_reproduces_the_same_event(
    history: list[ServiceRequest], new: ServiceRequest
) -> None:
    state: StoredState | None = None
    for snapshot in history:
        state = run(state, snapshot).state or state
    first, again = run(state, new), run(state, new)
    assert first == again
    if first.event is not None and first.state is not None:
        assert run(first.state, new) == Decision(None, None)


@st.composite
def any_request(draw: st.DrawFn) -> ServiceRequest:
    requested = draw(
        st.datetimes(
            min_value=datetime(1990, 1, 1),
            max_value=datetime(2100, 1, 1),
            timezones=st.just(UTC),
        )
    )
    closed = draw(st.booleans())
    text = st.none() | st.text(min_size=1, max_size=40).map(str.strip).filter(bool)
    return request(
        lat=draw(st.floats(-90, 90, allow_nan=False)),
        long=draw(st.floats(-180, 180, allow_nan=False)),
        requested_datetime=requested,
        status=RequestStatus.CLOSED if closed else RequestStatus.IN_PROGRESS,
        closed_datetime=requested + timedelta(microseconds=draw(st.integers(0, 10**12)))
        if closed
        else None,
        description=draw(text),
        status_notes=draw(text),
        address=draw(text),
    )


@settings(max_examples=300, deadline=None)
@given(any_request())
def test_fingerprint_survives_the_stored_json_round_trip(original: ServiceRequest) -> None:
    # The store keeps snapshots as JSON: a reload must not look like a change.
    reloaded = ServiceRequest.model_validate_json(original.model_dump_json())
    assert reloaded == original
    assert fingerprint(reloaded) == fingerprint(original)
    state = run(None, original).state
    assert run(state, reloaded) == Decision(None, None)
