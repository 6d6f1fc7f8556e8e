"""The state consumer's batch handler on a real database (Kafka itself: integration test)."""

from __future__ import annotations

from aiokafka import ConsumerRecord
from sqlalchemy import func, select

from connect311_bus.kafka import encode
from connect311_contracts.settings import KafkaSettings
from connect311_map_api.consumers import StateConsumer
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.tables import dead_letters, requests
from connect311_map_api.live import Broadcaster
from connect311_map_api.metrics import Metrics
from tests.unit.map_api.factories import RecordingPublisher, event, record, snapshot


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return record("requests.events.v1", offset, value)


async def test_bad_messages_are_dead_lettered_and_the_rest_applied(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    publisher = RecordingPublisher()
    hub = Broadcaster()
    handler = StateConsumer(
        KafkaSettings(),
        "g",
        engine=engine,
        publisher=publisher,
        metrics=Metrics(),
        broadcaster=hub,
    )
    good = event("opened", snapshot("ok1"))
    nul = event("opened", snapshot("nul1", description="bad \x00 byte"))
    records = [_record(0, encode(good)), _record(1, b"[]"), _record(2, encode(nul))]
    async with hub.subscribe() as stream:
        await handler._handle(records)
        streamed = [stream.get_nowait()["id"] for _ in range(stream.qsize())]
    with engine.connect() as conn:
        stored = set(conn.scalars(select(requests.c.service_request_id)))
        letters = conn.execute(select(func.count()).select_from(dead_letters)).scalar()
    if engine.dialect.name == "postgresql":  # PostgreSQL refuses NUL bytes in text
        assert stored == {"test:ok1"} and letters == 2
        assert [letter.offset for letter in publisher.letters] == [1, 2]
        assert "database refused" in publisher.letters[1].reason
    else:  # SQLite stores it as given
        assert stored == {"test:ok1", "test:nul1"} and letters == 1
    assert "test:ok1" in streamed
    engine.dispose()
