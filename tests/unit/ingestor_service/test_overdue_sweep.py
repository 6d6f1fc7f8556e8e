"""The overdue clock: one RequestOverdue per request per due time, none for a request closed
first, a new one when the due date moves, the same event id after a crash or a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connect311_contracts.events import RequestOverdue
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_contracts.service_levels import Target
from connect311_ingestor.overdue import overdue_event_id
from connect311_ingestor.overdue_sweep import OverdueSweeper
from connect311_ingestor.pipeline import Ingestor
from connect311_ingestor.records import Accepted
from connect311_ingestor.store import IngestorStore
from connect311_map_api.db.state_store import apply_events
from tests.support.ingest_to_map import IngestToMap
from tests.support.ingestor_rejects import RecordingPublisher, recording_ingestor

MADE = datetime(2024, 6, 3, 13, 0, tzinfo=UTC)  # Monday, 9:00 in New York
LEVELS = "[service_code]\nPOT = { days = 5 }\nNOISE = { hours = 8 }\n"
DUE = MADE + timedelta(days=5)  # calendar days: Saturday 8 June, 9:00 in New York


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IngestorStore]:
    opened = IngestorStore.from_url(f"sqlite:///{tmp_path}/ingestor.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def levels(tmp_path: Path) -> Path:
    path = tmp_path / "levels.toml"
    path.write_text(LEVELS)
    return path


def snapshot(rid: str = "1", **fields: Any) -> ServiceRequest:
    values: dict[str, Any] = {
        "service_request_id": f"city:{rid}",
        "source": "city",
        "source_request_id": rid,
        "service_code": "POT",
        "service_name": "Pothole",
        "status": RequestStatus.OPEN,
        "raw_status": "Open",
        "address": "100 Main St",
        "lat": 27.77,
        "long": -82.64,
        "requested_datetime": MADE,
    }
    return ServiceRequest.model_validate(values | fields)


def setup(
    store: IngestorStore, levels: Path | None, clock: Clock
) -> tuple[Ingestor, RecordingPublisher, OverdueSweeper]:
    ingestor, publisher = recording_ingestor(store)
    return ingestor, publisher, sweeper_for(ingestor, levels, clock)


def sweeper_for(ingestor: Ingestor, levels: Path | None, clock: Clock) -> OverdueSweeper:
    return OverdueSweeper(ingestor, levels, "America/New_York", timedelta(days=7), clock=clock)


def ingest(ingestor: Ingestor, *requests: ServiceRequest) -> None:
    asyncio.run(ingestor.ingest([Accepted(r) for r in requests], source="city"))


def sweep(sweeper: OverdueSweeper, publisher: RecordingPublisher) -> list[RequestOverdue]:
    before = len(publisher.events)
    asyncio.run(sweeper.sweep())
    return overdues(publisher.events[before:])


def overdues(events: list[Any]) -> list[RequestOverdue]:
    return [e for e in events if isinstance(e, RequestOverdue)]


def test_once_per_due_time_and_not_again_after_a_restart(
    store: IngestorStore, levels: Path
) -> None:
    clock = Clock(MADE)
    ingestor, publisher, sweeper = setup(store, levels, clock)
    ingest(
        ingestor, snapshot(), snapshot("2", service_code="NOISE"), snapshot("3", service_code="X")
    )
    clock.now = DUE - timedelta(seconds=1)
    assert [e.service_request_id for e in sweep(sweeper, publisher)] == ["city:2"]  # 8 hours
    clock.now = DUE + timedelta(seconds=90)
    [late] = sweep(sweeper, publisher)
    assert late.service_request_id == "city:1" and late.request == snapshot()
    assert late.due_datetime == DUE and late.due_source == "service_level"
    assert late.target == Target(days=5) and late.overdue_by_s == 90 and not late.backfill
    assert late.event_id == overdue_event_id("city:1", DUE.replace(tzinfo=None))
    assert sweep(sweeper, publisher) == []
    restarted = sweeper_for(ingestor, levels, clock)  # a new process: only the database
    clock.now += timedelta(days=1)
    assert sweep(restarted, publisher) == []
    assert (
        ingestor.metrics.registry.get_sample_value(
            "ingestor_overdue_published_total", {"kind": "alert"}
        )
        == 2
    )


def test_a_request_closed_before_its_due_time_never_gets_one(
    store: IngestorStore, levels: Path
) -> None:
    clock = Clock(MADE)
    ingestor, publisher, sweeper = setup(store, levels, clock)
    ingest(ingestor, snapshot())
    closed = DUE - timedelta(hours=1)
    ingest(
        ingestor,
        snapshot(status=RequestStatus.CLOSED, closed_datetime=closed, updated_datetime=closed),
    )
    clock.now = DUE + timedelta(days=1)
    assert sweep(sweeper, publisher) == []


def test_a_request_closed_between_scan_and_publish_gets_none(
    store: IngestorStore, levels: Path
) -> None:
    clock = Clock(DUE + timedelta(minutes=1))
    ingestor, publisher, sweeper = setup(store, levels, clock)
    ingest(ingestor, snapshot())
    scan = sweeper._scan

    def scan_then_close(*args: Any) -> Any:
        found = scan(*args)  # it was late when read, then a feed batch closes it
        close = snapshot(status=RequestStatus.CLOSED, updated_datetime=clock.now)
        asyncio.run(ingestor.ingest([Accepted(close)], source="city"))
        return found

    sweeper._scan = scan_then_close  # type: ignore[method-assign,assignment]
    assert sweep(sweeper, publisher) == []
    assert [e.event_type for e in publisher.events] == ["request.opened", "request.closed"]


def test_a_moved_due_date_gets_its_own_event(store: IngestorStore) -> None:
    clock = Clock(MADE)
    ingestor, publisher, sweeper = setup(store, None, clock)  # the feed's own dates only
    first_due = MADE + timedelta(days=2)
    ingest(ingestor, snapshot(expected_datetime=first_due))
    clock.now = first_due + timedelta(minutes=5)
    [first] = sweep(sweeper, publisher)
    assert first.due_source == "feed" and first.target is None
    # The city moves its date: not late any more, until the new date passes.
    second_due = MADE + timedelta(days=9)
    ingest(ingestor, snapshot(expected_datetime=second_due, updated_datetime=clock.now))
    assert sweep(sweeper, publisher) == []
    clock.now = second_due + timedelta(minutes=5)
    [second] = sweep(sweeper, publisher)
    assert second.due_datetime == second_due and second.event_id != first.event_id


def test_a_crash_before_recording_publishes_the_same_event_again(
    store: IngestorStore, levels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(DUE + timedelta(minutes=1))
    ingestor, publisher, sweeper = setup(store, levels, clock)
    ingest(ingestor, snapshot())

    def crash(rows: Any) -> None:
        raise RuntimeError("killed after the broker acknowledged")

    monkeypatch.setattr(store, "record_overdue", crash)
    with pytest.raises(RuntimeError):
        asyncio.run(sweeper.sweep())
    [before_crash] = overdues(publisher.events)
    monkeypatch.undo()
    clock.now += timedelta(minutes=1)
    restarted = sweeper_for(ingestor, levels, clock)
    [again] = sweep(restarted, publisher)
    assert again.event_id == before_crash.event_id  # consumers drop the copy by its id
    assert sweep(sweeper_for(ingestor, levels, clock), publisher) == []


def test_noticed_long_after_the_due_time_it_is_recorded_but_never_alerted(
    store: IngestorStore, levels: Path
) -> None:
    clock = Clock(DUE + timedelta(days=30))  # e.g. history imported, or the ingestor was off
    ingestor, publisher, sweeper = setup(store, levels, clock)
    ingest(ingestor, snapshot())
    [late] = sweep(sweeper, publisher)
    assert late.backfill and late.overdue_by_s == 30 * 86_400


def test_an_unusable_levels_file_skips_the_sweep_and_says_so(
    store: IngestorStore, levels: Path
) -> None:
    clock = Clock(DUE + timedelta(minutes=1))
    ingestor, publisher, sweeper = setup(store, levels, clock)
    ingest(ingestor, snapshot(), snapshot("2", expected_datetime=MADE + timedelta(hours=1)))
    levels.write_text("[service_code]\nPOT = { days = 0 }\n")
    assert sweep(sweeper, publisher) == []
    skipped = {"outcome": "service_levels"}
    assert ingestor.metrics.registry.get_sample_value("ingestor_overdue_sweeps_total", skipped) == 1
    levels.write_text(LEVELS)  # fixed: the next sweep catches up
    assert len(sweep(sweeper, publisher)) == 2


def test_the_map_api_keeps_its_state_and_timeline(tmp_path: Path, levels: Path) -> None:
    pipe = IngestToMap(tmp_path, MADE)
    pipe.ingest([Accepted(snapshot())], "city")
    before = (pipe.current("city:1"), list(pipe.timeline("city:1")))
    asyncio.run(sweeper_for(pipe.ingestor, levels, Clock(DUE + timedelta(hours=1))).sweep())
    [late] = overdues(pipe.publisher.events)
    with pipe.map_db.begin() as conn:
        result = apply_events(conn, [late])
    assert (result.not_state, result.applied, result.changed_ids) == (1, 0, [])
    assert (pipe.current("city:1"), list(pipe.timeline("city:1"))) == before
