"""File import against the real broker: keys, contract, no duplicates, restart safety."""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from connect311_bus.kafka import TRACE_HEADER, decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.rejects import RecordRejected
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS
from connect311_ingestor.app import running
from connect311_ingestor.parsers.profiles import ColumnProfile, get_profile
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.sources.files import import_file

DEMO = Path(__file__).resolve().parents[3] / "data" / "demo" / "nyc311_2023-02-28_demo.csv"
Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def demo_rows() -> list[dict[str, str]]:
    """The first 60 rows of the shipped NYC demo export (real, dirty data)."""
    with DEMO.open(encoding="utf-8", newline="") as handle:
        return [row for _, row in zip(range(60), csv.DictReader(handle), strict=False)]


@pytest.fixture
def profile(source_name: str) -> ColumnProfile:
    return get_profile("nyc").model_copy(update={"source": source_name})


def events_of(records: list[ConsumerRecord[bytes, bytes]]) -> list[Any]:
    return [decode(REQUEST_EVENT_ADAPTER, r.value) for r in records]


async def test_import_publishes_contract_events_keyed_by_request_and_rejects_by_source(
    ingestor_settings: IngestorSettings,
    kafka_settings: KafkaSettings,
    demo_rows: list[dict[str, str]],
    profile: ColumnProfile,
    tmp_path: Path,
    topic_reader: Reader,
) -> None:
    export = write_rows(tmp_path / "export.csv", demo_rows)
    async with running(ingestor_settings, kafka_settings) as runtime:
        summary = await import_file(runtime.ingestor, export, profile, batch_size=16)
        counts = await asyncio.to_thread(runtime.store.reject_counts)
        metrics = runtime.metrics.render().decode()

    assert summary.records == 60
    assert summary.accepted + sum(summary.rejects.values()) == 60
    assert summary.events == Counter({"request.opened": summary.accepted})
    assert summary.rejects == {"missing_coordinates": 1}  # row 54
    # The export's first row was closed before it was opened: kept, with the anomaly noted.
    assert summary.anomalies == {"closed_datetime:before_requested": 1}

    records = await topic_reader(REQUEST_EVENTS.name, f"{profile.source}:")
    events = events_of(records)
    assert len(events) == summary.accepted
    assert all(
        r.key == e.request.service_request_id.encode() for r, e in zip(records, events, strict=True)
    )
    assert all(e.backfill for e in events), "a source's first import is history"
    assert all(
        dict(r.headers)[TRACE_HEADER].decode() == e.trace_id
        for r, e in zip(records, events, strict=True)
    )
    assert len({e.event_id for e in events}) == len(events)

    rejects = [
        RecordRejected.model_validate_json(r.value)
        for r in await topic_reader(REQUEST_REJECTS.name, profile.source)
    ]
    rejects = [r for r in rejects if r.source == profile.source]
    assert Counter(r.reason.value for r in rejects) == summary.rejects
    assert all(r.raw and r.location and r.location.startswith("export.csv") for r in rejects)
    assert counts == {(profile.source, k): v for k, v in summary.rejects.items()}
    line = f'reason="missing_coordinates",source="{profile.source}"}} 1.0'
    assert "ingestor_records_rejected_total{" + line in metrics
    kind = f'kind="closed_datetime:before_requested",source="{profile.source}"}} 1.0'
    assert "ingestor_data_anomalies_total{" + kind in metrics
    flagged = [e.request for e in events if e.request.anomalies]
    assert [r.anomalies for r in flagged] == [("closed_datetime:before_requested",)]
    assert flagged[0].closed_datetime == flagged[0].requested_datetime


async def test_reimport_is_silent_and_one_changed_row_gives_exactly_one_event_after_restart(
    ingestor_settings: IngestorSettings,
    kafka_settings: KafkaSettings,
    demo_rows: list[dict[str, str]],
    profile: ColumnProfile,
    tmp_path: Path,
    topic_reader: Reader,
) -> None:
    export = write_rows(tmp_path / "export.csv", demo_rows)
    async with running(ingestor_settings, kafka_settings) as runtime:
        first = await import_file(runtime.ingestor, export, profile)
        second = await import_file(runtime.ingestor, export, profile)
    assert sum(first.events.values()) > 40
    assert second.events == Counter() and second.unchanged == second.accepted

    # Change two rows: the one in progress gets closed, a closed one gets new notes.
    changed = [dict(r) for r in demo_rows]
    busy = next(r for r in changed if r["Status"] == "In Progress")
    busy.update(
        {
            "Status": "Closed",
            "Closed Date": "03/01/2023 09:00:00 AM",
            "Resolution Action Updated Date": "03/01/2023 09:00:00 AM",
        }
    )
    done = next(r for r in changed[5:] if r["Status"] == "Closed" and r["Latitude"])
    done["Resolution Description"] = "Inspector revisited and confirmed the repair."
    done["Resolution Action Updated Date"] = "03/02/2023 10:00:00 AM"
    write_rows(export, changed)

    # A restart: new runtime objects over the same database.
    async with running(ingestor_settings, kafka_settings) as runtime:
        third = await import_file(runtime.ingestor, export, profile)
    assert third.events == Counter({"request.closed": 1, "request.updated": 1})

    events = events_of(await topic_reader(REQUEST_EVENTS.name, f"{profile.source}:"))
    assert len(events) == sum(first.events.values()) + 2
    by_type = {e.event_type: e for e in events if e.event_type != "request.opened"}
    closed = by_type["request.closed"]
    assert closed.request.source_request_id == busy["Unique Key"]
    assert closed.previous_status == "in_progress"
    assert closed.backfill is False, "later imports are live"
    updated = by_type["request.updated"]
    assert updated.request.source_request_id == done["Unique Key"]
    assert updated.changed_fields == ("status_notes",)


async def test_crash_between_publish_and_record_republishes_the_same_event_ids(
    ingestor_settings: IngestorSettings,
    kafka_settings: KafkaSettings,
    demo_rows: list[dict[str, str]],
    profile: ColumnProfile,
    tmp_path: Path,
    topic_reader: Reader,
) -> None:
    export = write_rows(tmp_path / "export.csv", demo_rows[:20])

    class Crash(Exception):
        pass

    async with running(ingestor_settings, kafka_settings) as runtime:
        store = runtime.store

        def crash(*_args: object) -> None:
            raise Crash

        original = store.save_states
        store.save_states = crash  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await import_file(runtime.ingestor, export, profile)
        store.save_states = original  # type: ignore[method-assign]
        assert store.count_requests(profile.source) == 0

    async with running(ingestor_settings, kafka_settings) as runtime:
        again = await import_file(runtime.ingestor, export, profile)
        assert runtime.store.count_requests(profile.source) == again.accepted

    events = events_of(await topic_reader(REQUEST_EVENTS.name, f"{profile.source}:"))
    ids = Counter(e.event_id for e in events)
    assert len(events) == 2 * again.accepted
    assert set(ids.values()) == {2}, "each event was re-sent with the same id, none skipped"


async def test_import_restart_and_reimport_on_postgresql(
    postgres_database: str,
    kafka_settings: KafkaSettings,
    demo_rows: list[dict[str, str]],
    profile: ColumnProfile,
    tmp_path: Path,
    topic_reader: Reader,
) -> None:
    export = write_rows(tmp_path / "export.csv", demo_rows[:30])
    settings = IngestorSettings(database_url=postgres_database)
    async with running(settings, kafka_settings) as runtime:
        first = await import_file(runtime.ingestor, export, profile)
    async with running(settings, kafka_settings) as runtime:
        again = await import_file(runtime.ingestor, export, profile)
        counts = await asyncio.to_thread(runtime.store.reject_counts)
    assert sum(first.events.values()) == first.accepted > 20
    assert again.events == Counter() and again.unchanged == again.accepted
    assert counts == {(profile.source, k): 2 * v for k, v in first.rejects.items()}
    events = await topic_reader(REQUEST_EVENTS.name, f"{profile.source}:")
    assert len(events) == first.accepted
