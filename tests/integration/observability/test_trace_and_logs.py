"""One trace id from ingest to email, in Kafka headers, the email and every service's JSON log.

The whole system runs as real processes (broker, SMTP server, four services) with
LOG_FORMAT=json, as in containers; `connect311 status` is read against the same processes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from typer.testing import CliRunner

from connect311_bus.kafka import consumer
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import NOTIFICATIONS, REQUEST_EVENTS, SUBSCRIPTIONS
from connect311_local import cli as local_cli
from tests.e2e.system.conftest import Stack, request_record, running_stack

CITY_HALL = (27.7731, -82.6400)  # St. Petersburg, FL
INSIDE = (27.7749, -82.6400)  # ~200 m north
SERVICES = ("ingestor", "matcher", "notifier", "map-api")


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system with every service logging JSON lines."""
    extra = {"NOTIFIER_INSTANT_PER_HOUR": "1000", "LOG_FORMAT": "json"}
    with running_stack(tmp_path_factory.mktemp("observability"), extra) as running:
        yield running


def _log_lines(stack: Stack, service: str) -> list[str]:
    return (stack.supervisor.log_dir / f"{service}.log").read_text(errors="replace").splitlines()


def _json_entries(stack: Stack, service: str) -> list[dict[str, Any]]:
    """Every JSON line of a service's output (startup banners printed by the CLIs are text)."""
    return [json.loads(line) for line in _log_lines(stack, service) if line.startswith("{")]


def _wait_for_entry(
    stack: Stack, service: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in _json_entries(stack, service):
            if predicate(entry):
                return entry
        time.sleep(0.1)
    raise AssertionError(f"no matching JSON log line from {service} within {timeout_s} s")


async def _find_record(
    bootstrap: str, topic: str, predicate: Callable[[ConsumerRecord[bytes, bytes]], bool]
) -> ConsumerRecord[bytes, bytes]:
    """The first record of a topic (read from the beginning) that satisfies the predicate."""
    reader = consumer(KafkaSettings(bootstrap_servers=bootstrap), None)
    await reader.start()
    try:
        await reader.topics()
        tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                for record in records:
                    if predicate(record):
                        return record
        raise AssertionError(f"no matching record on {topic}")
    finally:
        await reader.stop()


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    return next((v.decode() for k, v in record.headers if k == name), None)


async def test_one_trace_id_from_ingest_to_email_and_no_address_in_any_log(
    json_stack: Stack,
) -> None:
    stack, email, tag = (
        json_stack,
        f"trace-{uuid.uuid4().hex[:8]}@example.org",
        uuid.uuid4().hex[:6],
    )
    stack.subscribe(
        {
            "email": email,
            "label": "Home",
            "delivery": "instant",
            "target": {
                "kind": "circle",
                "lat": CITY_HALL[0],
                "long": CITY_HALL[1],
                "radius_m": 500,
            },
        }
    )
    srid = f"push:trace-{tag}"
    stack.push(request_record(f"trace-{tag}", *INSIDE))

    event_record = await _find_record(
        stack.broker.bootstrap_servers, REQUEST_EVENTS.name, lambda r: r.key == srid.encode()
    )
    event = json.loads(event_record.value or b"{}")
    trace_id = _header(event_record, "trace_id")
    assert trace_id, "the ingestor published the event without a trace_id header"
    assert event["trace_id"] == trace_id

    alert = stack.wait_for_mail(
        lambda m: email in str(m["To"]) and m["X-Connect311-Trace"] == trace_id
    )
    assert "Pothole" in str(alert["Subject"])

    notification_record = await _find_record(
        stack.broker.bootstrap_servers,
        NOTIFICATIONS.name,
        lambda r: (
            json.loads(r.value or b"{}").get("request_event", {}).get("event_id")
            == event["event_id"]
        ),
    )
    notification = json.loads(notification_record.value or b"{}")
    assert _header(notification_record, "trace_id") == trace_id
    assert notification["trace_id"] == trace_id

    published = _wait_for_entry(stack, "ingestor", lambda e: e.get("event_id") == event["event_id"])
    matched = _wait_for_entry(stack, "matcher", lambda e: e.get("event_id") == event["event_id"])
    sent = _wait_for_entry(
        stack, "notifier", lambda e: e.get("event_id") == notification["event_id"]
    )
    for entry, service in ((published, "ingestor"), (matched, "matcher"), (sent, "notifier")):
        assert entry["trace_id"] == trace_id, entry
        assert entry["service"] == service
        assert {"timestamp", "level", "logger", "message"} <= entry.keys()
    assert srid in published["message"]
    assert (matched["topic"], matched["partition"], matched["offset"]) == (
        REQUEST_EVENTS.name,
        event_record.partition,
        event_record.offset,
    )
    assert sent["message"].startswith("sent alert email")

    # The address went through sign-up, confirmation, matching and delivery: never into a log.
    for service in SERVICES:
        lines = _log_lines(stack, service)
        assert any(line.startswith("{") for line in lines), f"{service} logged no JSON line"
        for line in lines:
            assert email not in line and quote(email) not in line, f"{service}: {line}"


def test_status_shows_health_and_consumer_lag(
    json_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = json_stack.ports
    env = {
        "CONNECT311_LOCAL_BROKER_PORT": str(ports.broker_port),
        "CONNECT311_LOCAL_MAP_API_PORT": str(ports.map_api_port),
        "CONNECT311_LOCAL_INGESTOR_PORT": str(ports.ingestor_port),
        "CONNECT311_LOCAL_MATCHER_PORT": str(ports.matcher_port),
        "CONNECT311_LOCAL_NOTIFIER_PORT": str(ports.notifier_port),
    }
    monkeypatch.setattr(local_cli.console, "width", 250)  # one table row per line
    result = CliRunner().invoke(local_cli.app, ["status"], env=env)
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for line in result.output.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 5
    }
    for name in ("map-api", "ingestor", "matcher", "notifier", "broker"):
        assert rows[name][1] == "up", rows
    # Every consumer has read what there is (the services are idle); the ingestor consumes nothing.
    assert rows["matcher"][2] == f"{REQUEST_EVENTS.name} 0, {SUBSCRIPTIONS.name} 0", rows
    assert rows["notifier"][2] == f"{NOTIFICATIONS.name} 0", rows
    assert f"{REQUEST_EVENTS.name} 0" in rows["map-api"][2], rows
    assert rows["ingestor"][2] == "-", rows
