"""Consumer lag: computed from a real consumer, exposed per service, read back by `status`."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import generate_latest
from typer.testing import CliRunner

from connect311_bus.kafka import consumer, consumer_lag, ensure_topics, producer
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import TopicSpec
from connect311_local import cli as local_cli
from connect311_local.broker import free_port
from connect311_local.cli import consumer_lag as parse_lag
from connect311_local.cli import format_lag
from connect311_map_api.metrics import Metrics as MapApiMetrics
from connect311_matcher.metrics import MatcherMetrics
from connect311_notifier.metrics import Metrics as NotifierMetrics


async def test_lag_is_high_water_mark_minus_position(kafka_settings: KafkaSettings) -> None:
    topic = f"obs-lag-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_settings, [TopicSpec(topic, 1, "n", "test")])
    writer = producer(kafka_settings, "obs-lag")
    await writer.start()
    try:
        for n in range(5):
            await writer.send_and_wait(topic, f"m{n}".encode())
    finally:
        await writer.stop()
    reader = consumer(kafka_settings, None)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        assert await consumer_lag(reader) == 0  # nothing fetched yet: position unknown, left out
        first = await _fetch(reader, tp, 2)
        assert len(first) == 2
        assert await consumer_lag(reader) == 3
        rest = await _fetch(reader, tp, 10, until=3)
        assert [r.value for r in first + rest] == [f"m{n}".encode() for n in range(5)]
        assert await consumer_lag(reader) == 0
    finally:
        await reader.stop()


async def _fetch(
    reader: AIOKafkaConsumer, tp: TopicPartition, max_records: int, until: int = 1
) -> list[ConsumerRecord[bytes, bytes]]:
    """Fetch up to max_records, polling until at least `until` arrived (or a deadline)."""
    got: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + 15
    while len(got) < until and time.monotonic() < deadline:
        batch = await reader.getmany(tp, timeout_ms=200, max_records=max_records - len(got))
        got += batch.get(tp, [])
    return got


def test_status_reads_the_lag_gauges_every_service_exposes() -> None:
    matcher, notifier, map_api = MatcherMetrics(), NotifierMetrics(), MapApiMetrics()
    matcher.consumer_lag.labels("requests.events.v1").set(7)
    matcher.consumer_lag.labels("subscriptions.v1").set(0)
    matcher.events_in.labels("matched").inc(40)  # other metrics are ignored
    notifier.consumer_lag.labels("notifications.v1").set(12)
    map_api.consumer_lag.labels("requests.events.v1").set(3)
    map_api.consumer_lag.labels("subscriptions.feedback.v1").set(0)

    assert parse_lag(generate_latest(matcher.registry).decode()) == {
        "requests.events.v1": 7,
        "subscriptions.v1": 0,
    }
    assert parse_lag(generate_latest(notifier.registry).decode()) == {"notifications.v1": 12}
    assert parse_lag(generate_latest(map_api.registry).decode()) == {
        "requests.events.v1": 3,
        "subscriptions.feedback.v1": 0,
    }


def test_lag_of_two_gauges_on_one_topic_is_summed_and_no_gauge_means_no_consumer() -> None:
    page = (
        "# TYPE a_consumer_lag gauge\n"
        'a_consumer_lag{topic="t"} 2.0\n'
        "# TYPE b_consumer_lag gauge\n"
        'b_consumer_lag{topic="t"} 5.0\n'
        "# TYPE c_consumer_lag_other gauge\n"
        'c_consumer_lag_other{topic="t"} 100.0\n'
    )
    assert parse_lag(page) == {"t": 7}
    assert parse_lag("# TYPE x_total counter\nx_total 3.0\n") == {}


def test_lag_formatting() -> None:
    assert format_lag({"b.v1": 3.0, "a.v1": 0.0}) == "a.v1 0, b.v1 3"
    assert format_lag({}) == "-"


def test_status_with_nothing_running_says_down_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ("BROKER", "MAP_API", "INGESTOR", "MATCHER", "NOTIFIER")
    env = {f"CONNECT311_LOCAL_{name}_PORT": str(free_port()) for name in names}
    monkeypatch.setattr(local_cli.console, "width", 250)
    result = CliRunner().invoke(local_cli.app, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("down") == 5
    assert "connect311 up" in result.output
