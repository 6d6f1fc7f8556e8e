"""Helpers for the reject tests: a publisher that records instead of sending, and a dump of
every ingestor table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect, text

from connect311_contracts.events import RequestEvent
from connect311_contracts.rejects import RecordRejected
from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.pipeline import Ingestor
from connect311_ingestor.store import IngestorStore


class RecordingPublisher:
    """Keeps what the ingestor would have published, as the JSON that would go on the wire."""

    def __init__(self) -> None:
        self.events: list[RequestEvent] = []
        self.rejects: list[RecordRejected] = []

    async def publish_events(self, events: Sequence[RequestEvent]) -> None:
        self.events += events

    async def publish_rejects(self, rejects: Sequence[RecordRejected]) -> None:
        self.rejects += rejects

    def wire(self) -> str:
        """Every published message as its JSON value."""
        return "\n".join(m.model_dump_json() for m in [*self.events, *self.rejects])


def recording_ingestor(store: IngestorStore) -> tuple[Ingestor, RecordingPublisher]:
    """An ingestor on `store` that records what it publishes."""
    publisher = RecordingPublisher()
    return Ingestor(store, publisher, IngestMetrics()), publisher  # type: ignore[arg-type]


def dump_tables(store: IngestorStore) -> str:
    """Every row of every table in the ingestor's database, as text."""
    lines: list[str] = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):  # its own table names
                lines.append(f"{table}: {tuple(row)!r}")
    return "\n".join(lines)


def rejects_counted(ingestor: Ingestor, source: str, reason: str) -> float:
    """The ingestor_rejects metric for one source and reason (0 when never counted)."""
    value: Any = ingestor.metrics.registry.get_sample_value(
        "ingestor_records_rejected_total", {"source": source, "reason": reason}
    )
    return float(value or 0.0)
