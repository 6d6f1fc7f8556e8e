"""Open311 updates older than the stored state still become timeline entries (issue 11).

The poller reads the requests list before `servicerequestupdates`, so the list already
holds the newest state. Every update must still become its own entry in the map API's
`request_history`, at its own time, without rolling the current state back, and a
re-polled window must add nothing. Through the real ingest step (SQLite store) into the
map API's state store (SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_ingestor.parsers.open311_updates import RequestUpdate, parse_updates
from connect311_ingestor.records import Accepted
from connect311_ingestor.updates import apply_update
from tests.support.ingest_to_map import IngestToMap

NOW = datetime(2024, 6, 1, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 9, tzinfo=UTC)


class Pipeline(IngestToMap):
    """Requests and update batches from one Open311 city into the map API's state."""

    def __init__(self, where: Path) -> None:
        super().__init__(where, NOW)

    def requests(self, requests: Sequence[ServiceRequest]) -> list[RequestEvent]:
        return self.ingest([Accepted(r) for r in requests], source="city")

    def updates(self, updates: Sequence[Any], source: str = "city") -> list[RequestEvent]:
        return super().updates(updates, source)

    def history(self, srid: str) -> list[tuple[str | None, datetime, str]]:
        return [(r.status_notes, r.source_at, r.status) for r in self.timeline(srid)]


def opened(srid: str = "city:7") -> ServiceRequest:
    return ServiceRequest(
        service_request_id=srid,
        source="city",
        source_request_id=srid.split(":", 1)[1],
        status=RequestStatus.OPEN,
        raw_status="open",
        lat=37.7,
        long=-122.4,
        requested_datetime=T0,
        updated_datetime=T0,
    )


def update(uid: str, at: datetime, status: RequestStatus, text: str | None) -> RequestUpdate:
    return RequestUpdate(
        update_id=uid,
        service_request_id="city:7",
        status=status,
        raw_status=status.value,
        closed_reason=None,
        updated_datetime=at,
        description=text,
        media_url=None,
        external_status_code=None,
    )


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def test_updates_older_than_the_list_each_become_an_entry_without_rolling_back(
    tmp_path: Path,
) -> None:
    pipeline = Pipeline(tmp_path)
    pipeline.requests([opened()])
    batch = [  # newest first, as servers list them
        update("u3", T0 + timedelta(hours=3), RequestStatus.CLOSED, "Filled"),
        update("u2", T0 + timedelta(hours=2), RequestStatus.IN_PROGRESS, "Crew on site"),
        update("u1", T0 + timedelta(hours=1), RequestStatus.ACKNOWLEDGED, "Seen"),
    ]
    # The list, polled first, already shows the request as u3 left it.
    latest = apply_update(opened(), batch[0])
    assert isinstance(latest, Accepted)
    assert [e.event_type for e in pipeline.requests([latest.request])] == ["request.closed"]

    notes = pipeline.updates(batch)

    assert [(e.request.status_notes, e.backfill) for e in notes] == [
        ("Seen", True),
        ("Crew on site", True),
    ], "the two older updates are history entries; u3 is what the list already showed"
    assert {e.event_type for e in notes} == {"request.updated"}, "no second closure"
    assert pipeline.history("city:7") == [
        (None, naive(T0), "open"),
        ("Seen", naive(T0 + timedelta(hours=1)), "acknowledged"),
        ("Crew on site", naive(T0 + timedelta(hours=2)), "in_progress"),
        ("Filled", naive(T0 + timedelta(hours=3)), "closed"),
    ]
    assert pipeline.current("city:7") == ("closed", "Filled"), "never rolled back"

    assert pipeline.updates(batch) == [], "a re-polled window publishes nothing"
    moved = latest.request.model_copy(update={"address": "1 Main St"})
    pipeline.requests([moved])  # the stored snapshot changes (same time)...
    assert pipeline.updates(batch) == [], "...and the past notes are still known"
    assert len(pipeline.history("city:7")) == 5  # + the address change


def test_a_past_closure_is_dated_at_its_update_not_at_the_later_one(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path)
    pipeline.requests([opened()])
    batch = [
        update("a", T0 + timedelta(hours=1), RequestStatus.CLOSED, "Fixed"),
        update("b", T0 + timedelta(hours=2), RequestStatus.OPEN, "Came back"),
        update("c", T0 + timedelta(hours=3), RequestStatus.CLOSED, "Fixed again"),
    ]
    state = opened()
    for item in batch:
        applied = apply_update(state, item)
        assert isinstance(applied, Accepted)
        state = applied.request
    pipeline.requests([state])  # closed at T0+3h

    notes = pipeline.updates(batch)

    assert [e.request.closed_datetime for e in notes] == [T0 + timedelta(hours=1), None]
    assert [at for _, at, _ in pipeline.history("city:7")] == [
        naive(T0 + timedelta(hours=h)) for h in range(4)
    ]


def test_real_adapter_updates_after_the_list_state(shared_data: Path, tmp_path: Path) -> None:
    """open311-adapter's real updates: request 2002 went in_progress, then duplicate."""
    folder = shared_data / "open311/open311-adapter"
    updates = parse_updates(
        (folder / "get_servicerequestupdates.xml").read_bytes(), source="city", fmt="xml"
    )
    assert all(isinstance(u, RequestUpdate) for u in updates)
    requested = datetime(2018, 3, 1, 9, tzinfo=UTC)
    base = opened("city:2002").model_copy(
        update={"requested_datetime": requested, "updated_datetime": requested}
    )
    pipeline = Pipeline(tmp_path)
    pipeline.requests([base])
    final = base
    for item in sorted(
        (
            u
            for u in updates
            if isinstance(u, RequestUpdate) and u.service_request_id.endswith("2002")
        ),
        key=lambda u: u.updated_datetime,
    ):
        applied = apply_update(final, item)
        assert isinstance(applied, Accepted)
        final = applied.request
    pipeline.requests([final])  # the list shows it closed as a duplicate at 13:30

    pipeline.updates(updates)

    assert [(at.hour, at.minute, status) for _, at, status in pipeline.history("city:2002")] == [
        (9, 0, "open"),
        (13, 0, "in_progress"),
        (13, 30, "closed"),
    ]
    assert pipeline.current("city:2002")[0] == "closed"


# ---------------------------------------------------------------- the invariant, for any split

statuses = st.sampled_from(list(RequestStatus))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes=st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=6, unique=True),
    chosen=st.lists(statuses, min_size=6, max_size=6),
    listed_upto=st.integers(min_value=0, max_value=2001),
)
def test_every_update_is_one_entry_at_its_time_whatever_the_list_showed(
    tmp_path_factory: Any, minutes: list[int], chosen: list[RequestStatus], listed_upto: int
) -> None:
    batch = [
        update(f"u{i}", T0 + timedelta(minutes=m), chosen[i], f"note {i}")
        for i, m in enumerate(minutes)
    ]
    in_order = sorted(batch, key=lambda u: u.updated_datetime)
    states = [opened()]
    for item in in_order:
        applied = apply_update(states[-1], item)
        assert isinstance(applied, Accepted)
        states.append(applied.request)
    # The list was read when the updates up to `listed_upto` minutes had happened.
    shown = sum(1 for m in minutes if m <= listed_upto)
    pipeline = Pipeline(tmp_path_factory.mktemp("p"))
    pipeline.requests([opened()])
    pipeline.requests([states[shown]])

    pipeline.updates(batch)

    history = pipeline.history("city:7")
    assert history[0][0] is None
    assert [(notes, at) for notes, at, _ in history[1:]] == [
        (u.description, naive(u.updated_datetime)) for u in in_order
    ], "each update once, in time order, at its time"
    assert [status for _, _, status in history[1:]] == [u.status.value for u in in_order]
    assert pipeline.current("city:7") == (states[-1].status.value, states[-1].status_notes)
    assert pipeline.updates(batch) == [], "a re-poll adds nothing"
