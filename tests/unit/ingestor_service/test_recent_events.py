"""The window of recently published events kept for re-publishing after a broker loss."""

from __future__ import annotations

from datetime import timedelta

from connect311_ingestor.store import IngestorStore
from connect311_ingestor.store_tables import recent_event
from tests.unit.ingestor_service.test_store import database_url

__all__ = ["database_url"]


def test_recent_events_keep_order_ignore_repeats_and_expire(database_url: str) -> None:
    store = IngestorStore.from_url(database_url)
    try:
        hour = timedelta(hours=1)
        store.remember_events({"e1": '{"n": 1}', "e2": '{"n": 2}'}, hour)
        store.remember_events({"e2": '{"n": 2}', "e3": '{"n": 3}'}, hour)  # e2 re-published
        assert store.recent_events(hour) == ['{"n": 1}', '{"n": 2}', '{"n": 3}']
        with store.engine.begin() as conn:  # e1 was published two hours ago
            conn.execute(
                recent_event.update()
                .where(recent_event.c.event_id == "e1")
                .values(published_at=recent_event.c.published_at - 2 * hour)
            )
        assert store.recent_events(hour) == ['{"n": 2}', '{"n": 3}']
        store.remember_events({}, hour)  # every write prunes what fell out of the window
        with store.engine.connect() as conn:
            left = conn.execute(recent_event.select().order_by(recent_event.c.seq)).all()
        assert [row.event_id for row in left] == ["e2", "e3"]
    finally:
        store.close()
