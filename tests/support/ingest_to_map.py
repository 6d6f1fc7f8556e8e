"""The ingestor's pipeline feeding the map API's state store, both on SQLite, no broker: what
the ingestor would publish is applied to the map API's tables as its consumer would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from connect311_contracts.events import RequestEvent
from connect311_contracts.rejects import RecordRejected
from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.pipeline import Ingestor
from connect311_ingestor.store import IngestorStore
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.queries import one_request, timeline
from connect311_map_api.db.state_store import apply_events


class EventsOnly:
    """Keeps what would have been published; these pipelines expect no rejects."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []

    async def publish_events(self, events: Sequence[RequestEvent]) -> None:
        self.events += events

    async def publish_rejects(self, rejects: Sequence[RecordRejected]) -> None:
        assert not rejects


class IngestToMap:
    """Ingestor (SQLite) -> events -> map API state store (SQLite), one batch at a time."""

    def __init__(self, where: Path, now: datetime) -> None:
        self.publisher = EventsOnly()
        store = IngestorStore.from_url(f"sqlite:///{where}/ingestor.db")
        self.ingestor = Ingestor(store, self.publisher, IngestMetrics(), clock=lambda: now)  # type: ignore[arg-type]
        self.map_db = make_engine(f"sqlite:///{where}/map.db")
        create_schema(self.map_db)

    def ingest(self, results: Sequence[Any], source: str) -> list[RequestEvent]:
        """Ingest parse results; the events published, applied to the map API."""
        before = len(self.publisher.events)
        asyncio.run(self.ingestor.ingest(list(results), source=source))
        return self._apply(before)

    def updates(self, updates: Sequence[Any], source: str) -> list[RequestEvent]:
        """Ingest Open311 request updates; the events published, applied to the map API."""
        before = len(self.publisher.events)
        asyncio.run(self.ingestor.ingest_updates(list(updates), source=source))
        return self._apply(before)

    def _apply(self, before: int) -> list[RequestEvent]:
        new = self.publisher.events[before:]
        with self.map_db.begin() as conn:
            apply_events(conn, new)
        return new

    def timeline(self, srid: str) -> list[Any]:
        """The map API's history rows of one request, in timeline order."""
        with self.map_db.connect() as conn:
            return list(timeline(conn, srid))

    def current(self, srid: str) -> tuple[str, str | None]:
        """The map API's current status and status notes of one request."""
        with self.map_db.connect() as conn:
            row = one_request(conn, srid)
        assert row is not None
        return row.status, row.status_notes
