"""A reject is recorded once per (source, record, content): re-importing the same file, or
reading the same bad record again, neither re-publishes nor re-counts it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from connect311_contracts.rejects import RejectReason
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.records import Rejected
from connect311_ingestor.scrub import OPEN311_REQUEST
from connect311_ingestor.sources.files import import_file
from connect311_ingestor.store import IngestorStore
from connect311_ingestor.store_tables import reject_seen
from tests.support.ingestor_rejects import recording_ingestor, rejects_counted

NYC = Path(__file__).resolve().parents[3].parent / "shared/data/city311/nyc"
SAMPLE = NYC / "nyc311_2023-02-28_sample4999.csv"


@pytest.fixture
def store(tmp_path: Path) -> IngestorStore:
    return IngestorStore.from_url(f"sqlite:///{tmp_path}/ingestor.db")


def seen_rows(store: IngestorStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(reject_seen)).scalar_one())


@pytest.mark.skipif(not SAMPLE.is_file(), reason="../shared/data/city311/nyc is absent")
async def test_importing_the_real_nyc_file_twice_counts_its_rejects_once(
    store: IngestorStore,
) -> None:
    ingestor, publisher = recording_ingestor(store)
    profile = get_profile("nyc")
    first = await import_file(ingestor, SAMPLE, profile)
    rejected = sum(first.rejects.values())
    assert rejected >= 87 and first.new_rejects == rejected  # 87 rows have no coordinates
    assert len(publisher.rejects) == rejected
    counted = sum(store.reject_counts().values())
    assert counted == rejected == seen_rows(store)
    metric = rejects_counted(ingestor, "nyc311", "missing_coordinates")
    assert metric == first.rejects["missing_coordinates"] == 87

    again = await import_file(ingestor, SAMPLE, profile)

    # The file still says how many of its rows were rejected, but none is new.
    assert again.rejects == first.rejects and again.new_rejects == 0
    assert len(publisher.rejects) == rejected, "no reject published twice"
    assert sum(store.reject_counts().values()) == counted == seen_rows(store)
    assert rejects_counted(ingestor, "nyc311", "missing_coordinates") == metric
    assert again.events == {}, "nothing changed, nothing published"


async def test_a_changed_record_is_a_new_reject_and_the_same_one_at_another_place_is_not(
    store: IngestorStore,
) -> None:
    ingestor, publisher = recording_ingestor(store)
    record = {"service_request_id": "9", "lat": "999", "long": "1", "status": "open"}

    def bad(where: str, **change: str) -> Rejected:
        data = {**record, **change}
        return Rejected(
            RejectReason.INVALID_COORDINATES, "lat", "", where, record=data, allow=OPEN311_REQUEST
        )

    first, _ = await ingestor.ingest([bad("page 1, record 3")], source="feed")
    # A re-polled window: same record, another page position; and twice in one batch.
    again, _ = await ingestor.ingest(
        [bad("page 2, record 1"), bad("page 2, record 1")], source="feed"
    )
    changed, _ = await ingestor.ingest([bad("page 2, record 1", lat="998")], source="feed")
    assert (first.new_rejects, again.new_rejects, changed.new_rejects) == (1, 0, 1)
    assert sum(again.rejects.values()) == 2
    assert len(publisher.rejects) == 2
    assert store.reject_counts() == {("feed", "invalid_coordinates"): 2}
    assert rejects_counted(ingestor, "feed", "invalid_coordinates") == 2


async def test_records_without_an_id_are_told_apart_by_where_they_were_read(
    store: IngestorStore,
) -> None:
    ingestor, publisher = recording_ingestor(store)
    rows = [
        Rejected(RejectReason.INVALID_CSV, "wrong field count", "", f"f.csv:row {n}")
        for n in (1, 2)
    ]
    summary, _ = await ingestor.ingest(rows, source="file")
    assert summary.new_rejects == 2 and len(publisher.rejects) == 2


async def test_a_parsed_record_without_an_id_in_a_re_polled_window_counts_once(
    store: IngestorStore,
) -> None:
    """Its location holds the window's times, so it must be named by its content."""
    ingestor, publisher = recording_ingestor(store)
    record = {"lat": "37.7", "long": "-122.4", "status": "open", "service_code": "PT"}

    def bad(window: str, **change: str) -> Rejected:
        where = f"https://city/requests.json {window} page 1, record 4"
        return Rejected(
            RejectReason.MISSING_FIELD,
            "no service_request_id",
            "",
            where,
            record={**record, **change},
            allow=OPEN311_REQUEST,
        )

    first, _ = await ingestor.ingest([bad("2024-05-01T00:00Z..2024-05-02T00:00Z")], source="o")
    overlap, _ = await ingestor.ingest([bad("2024-05-01T23:50Z..2024-05-02T23:50Z")], source="o")
    other, _ = await ingestor.ingest([bad("2024-05-02T23:50Z..x", lat="37.8")], source="o")

    assert (first.new_rejects, overlap.new_rejects, other.new_rejects) == (1, 0, 1)
    assert sum(overlap.rejects.values()) == 1, "the run still says what it read"
    assert len(publisher.rejects) == 2
    assert store.reject_counts() == {("o", "missing_field"): 2}
