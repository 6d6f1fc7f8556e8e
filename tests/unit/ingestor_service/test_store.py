"""The durable store on SQLite (default) and PostgreSQL: states, cursors, reject counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_ingestor.changes import decide
from connect311_ingestor.store import IngestorStore

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def request(rid: str, **changes: object) -> ServiceRequest:
    fields: dict[str, object] = {
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
    return ServiceRequest.model_validate(fields)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/ingestor.db"
    else:
        yield request.getfixturevalue("postgres_database")


def test_states_survive_a_new_store_over_the_same_database(database_url: str) -> None:
    store = IngestorStore.from_url(database_url)
    states = []
    for i in range(1200):  # more than one IN (...) chunk
        state = decide(None, request(str(i)), backfill=False, now=T0).state
        assert state is not None
        states.append(state)
    store.save_states(states)
    store.close()

    reopened = IngestorStore.from_url(database_url)
    try:
        found = reopened.load_states([s.service_request_id for s in states] + ["city:missing"])
        assert len(found) == 1200
        assert found["city:7"] == states[7]
        assert reopened.count_requests("city") == 1200
        assert reopened.count_requests("elsewhere") == 0
        # Upsert: a newer state replaces the old one.
        newer = decide(
            states[7], request("7", status_notes="crew sent"), backfill=False, now=T0
        ).state
        assert newer is not None
        reopened.save_states([newer])
        assert reopened.load_states(["city:7"])["city:7"] == newer
    finally:
        reopened.close()


def test_cursors_and_reject_counts(database_url: str) -> None:
    store = IngestorStore.from_url(database_url)
    try:
        assert store.get_cursor("city") is None
        store.set_cursor("city", {"requests_until": "2024-03-01T00:00:00Z", "caught_up": False})
        store.set_cursor("city", {"requests_until": "2024-03-02T00:00:00Z", "caught_up": True})
        assert store.get_cursor("city") == {
            "requests_until": "2024-03-02T00:00:00Z",
            "caught_up": True,
        }
        store.add_reject_counts({("city", "invalid_date"): 2, ("city", "too_large"): 1})
        store.add_reject_counts({("city", "invalid_date"): 3})
        assert store.reject_counts() == {("city", "invalid_date"): 5, ("city", "too_large"): 1}
        store.ping()
    finally:
        store.close()
