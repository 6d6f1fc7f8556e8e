"""One command the policy cannot handle is dead-lettered; the rest of its batch is recorded."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from aiokafka import ConsumerRecord

from connect311_bus.kafka import encode, producer
from connect311_contracts.notifications import NotificationCommand, recipient_key
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import DEAD_LETTERS, NOTIFICATIONS
from connect311_notifier.consumer import CommandConsumer
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.metrics import Metrics
from connect311_notifier.policy import Decision, RecipientState
from connect311_notifier.settings import NotifierSettings
from tests.integration.notifier.conftest import read_topic
from tests.unit.notifier.factories import matched


def record(command: NotificationCommand, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = encode(command)
    key = recipient_key(command.subscription.email).encode()
    return ConsumerRecord(
        NOTIFICATIONS.name, 0, offset, int(time.time() * 1000), 0, key, value, None, 0, 0, []
    )


async def test_a_command_that_breaks_the_policy_is_isolated(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = NotifierSettings(database_url=f"sqlite:///{tmp_path / 'n.db'}")
    ledger = Ledger(create_engine(settings.database_url))
    ledger.create_schema()
    prod = producer(kafka_settings, "test-isolation")
    await prod.start()
    commands = [matched() for _ in range(3)]
    broken = commands[1]
    offset = 10_000_000 + uuid.uuid4().int % 1_000_000  # identifies this test's dead letter
    consumer = CommandConsumer(settings, None, prod, ledger, Metrics(), lambda: None)  # type: ignore[arg-type]
    real_plan = consumer.plan

    def plan(command: NotificationCommand, state: RecipientState) -> tuple[Decision, float | None]:
        if command.event_id == broken.event_id:
            raise ValueError("a case the policy never expected")
        return real_plan(command, state)

    consumer.plan = plan
    try:
        pairs = [
            (record(c, offset + i), Incoming(c, recipient_key(c.subscription.email), time.time()))
            for i, c in enumerate(commands)
        ]
        await consumer._record(pairs)
    finally:
        await prod.stop()

    assert ledger.status_counts() == {"pending": 2}  # the other two are recorded
    letters = await read_topic(
        kafka_settings, DEAD_LETTERS.name, lambda r: json.loads(r.value).get("offset") == offset + 1
    )
    letter = json.loads(letters[0].value)
    assert letter["reason"] == "ValueError: a case the policy never expected"
    assert json.loads(letter["raw"])["event_id"] == broken.event_id
    ledger.engine.dispose()
