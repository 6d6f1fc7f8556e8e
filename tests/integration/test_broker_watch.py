"""The shared broker watch against real brokers stopped and started on one port."""

from __future__ import annotations

from pathlib import Path

import pytest

from connect311_bus.broker_watch import BrokerState, BrokerWatch
from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings
from connect311_local.broker import LocalBroker, free_port, start_broker


class Restorer:
    """Counts recoveries; fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.calls = 0
        self.failures = failures

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("could not re-publish yet")


def restart(old: LocalBroker, tmp_path: Path, cluster_id: str | None = None) -> LocalBroker:
    old.stop()
    return start_broker(old.port, tmp_path / f"{free_port()}.log", cluster_id=cluster_id)


async def test_a_restart_is_noticed_even_when_someone_else_recreated_the_topics_first(
    tmp_path: Path,
) -> None:
    broker = start_broker(free_port(), tmp_path / "first.log")
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    restore = Restorer()
    watch = BrokerWatch(kafka, restore, interval_s=60)
    try:
        await ensure_topics(kafka)
        assert await watch.check() is BrokerState.OK
        # Down and up again between two checks, and every topic back before the next one:
        # only the cluster id tells this broker from the one that held the state.
        broker = restart(broker, tmp_path)
        await ensure_topics(kafka)
        assert await watch.check() is BrokerState.RECOVERED
        assert restore.calls == 1
        assert await watch.check() is BrokerState.OK
        assert restore.calls == 1
    finally:
        broker.stop()


async def test_an_outage_of_a_broker_that_kept_its_log_is_not_a_loss(tmp_path: Path) -> None:
    broker = start_broker(free_port(), tmp_path / "first.log", cluster_id="kept-its-log")
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    restore = Restorer()
    watch = BrokerWatch(kafka, restore, interval_s=60, timeout_s=1.0)
    try:
        await ensure_topics(kafka)
        assert await watch.check() is BrokerState.OK
        broker.stop()
        assert await watch.check() is BrokerState.DOWN
        # Same cluster, every topic there: what real Kafka looks like after a rolling restart.
        broker = start_broker(broker.port, tmp_path / "second.log", cluster_id="kept-its-log")
        await ensure_topics(kafka)
        assert await watch.check() is BrokerState.OK
        assert restore.calls == 0
    finally:
        broker.stop()


async def test_missing_topics_are_recreated_and_a_failed_restore_is_retried(
    tmp_path: Path,
) -> None:
    broker = start_broker(free_port(), tmp_path / "first.log")
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    restore = Restorer(failures=1)
    watch = BrokerWatch(kafka, restore, interval_s=60)
    try:
        with pytest.raises(RuntimeError):
            await watch.check()  # no topics yet: re-created, then the restore fails
        assert restore.calls == 1
        # The topics are back now, but the state is not: the next check must try again.
        assert await watch.check() is BrokerState.RECOVERED
        assert restore.calls == 2
        assert await watch.check() is BrokerState.OK
    finally:
        broker.stop()
