"""End to end under scale-out and crashes: every alert arrives exactly once."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace

import httpx

from connect311_local.broker import free_port
from tests.e2e.system.conftest import Stack, readable, request_record

CENTRE = (27.7731, -82.6400)


def _subscribe_circle(stack: Stack) -> str:
    email = f"scale-{uuid.uuid4().hex[:8]}@example.org"
    stack.subscribe(
        {
            "email": email,
            "label": "Shop",
            "delivery": "instant",
            "target": {"kind": "circle", "lat": CENTRE[0], "long": CENTRE[1], "radius_m": 1000},
        }
    )
    return email


def _push_batch(stack: Stack, tag: str, numbers: range) -> None:
    stack.push(
        *(
            request_record(
                f"{tag}-{i}",
                CENTRE[0] + 0.0001 * (i % 50),
                CENTRE[1],
                description=f"report {tag}-{i}.",
            )
            for i in numbers
        )
    )


def _alert_counts(
    stack: Stack, email: str, tag: str, expected: int, timeout_s: float = 60
) -> Counter[str]:
    pattern = re.compile(rf"report ({tag}-\d+)\.")
    deadline = time.monotonic() + timeout_s
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        counts = Counter(
            found for m in stack.mail_to(email) for found in set(pattern.findall(readable(m)))
        )
        if len(counts) >= expected:
            break
        time.sleep(0.2)
    time.sleep(3.0)  # late duplicates would land now
    mentions = (set(pattern.findall(readable(m))) for m in stack.mail_to(email))
    return Counter(found for found_in_one in mentions for found in found_in_one)


def test_two_matchers_in_one_group_match_every_event_exactly_once(stack: Stack) -> None:
    email, tag = _subscribe_circle(stack), uuid.uuid4().hex[:6]
    second = replace(
        stack.specs["matcher"],
        name="matcher-2",
        env={**stack.specs["matcher"].env, "MATCHER_HTTP_PORT": str(free_port())},
        health_url=None,
    )
    stack.start(second)
    time.sleep(4.0)  # the group rebalances over both matchers
    _push_batch(stack, tag, range(40))
    counts = _alert_counts(stack, email, tag, 40)
    assert len(counts) == 40, (
        f"missing alerts: {sorted(set(f'{tag}-{i}' for i in range(40)) - set(counts))}"
    )
    assert set(counts.values()) == {1}, f"duplicates: {[k for k, v in counts.items() if v > 1]}"


def test_services_killed_mid_stream_lose_and_duplicate_nothing(stack: Stack) -> None:
    email, tag = _subscribe_circle(stack), uuid.uuid4().hex[:6]
    _push_batch(stack, tag, range(0, 20))
    stack.restart("notifier", kill=True)
    _push_batch(stack, tag, range(20, 40))
    stack.restart("matcher", kill=True)
    _push_batch(stack, tag, range(40, 60))
    stack.restart("map-api", kill=True)
    _push_batch(stack, tag, range(60, 80))
    counts = _alert_counts(stack, email, tag, 80, timeout_s=90)
    lost = {f"{tag}-{i}" for i in range(80)} - set(counts)
    assert not lost, f"lost: {sorted(lost)}"
    assert set(counts.values()) == {1}, f"duplicated: {[k for k, v in counts.items() if v > 1]}"


class _RetryingFeed(threading.Thread):
    """A city system pushing one request at a time, re-sending any push left unanswered."""

    def __init__(self, stack: Stack, tag: str, numbers: range) -> None:
        super().__init__(daemon=True)
        self.stack, self.tag, self.numbers = stack, tag, numbers
        self.sent = 0
        self.retries = 0

    def run(self) -> None:
        for i in self.numbers:
            record = request_record(
                f"{self.tag}-{i}",
                CENTRE[0] + 0.0001 * (i % 50),
                CENTRE[1],
                description=f"report {self.tag}-{i}.",
            )
            while True:
                try:
                    self.stack.push(record)
                    break
                except (httpx.HTTPError, AssertionError):  # killed or restarting: send again
                    self.retries += 1
                    time.sleep(0.2)
            self.sent += 1
            time.sleep(0.02)


def test_an_ingestor_killed_while_requests_flow_loses_and_duplicates_nothing(
    stack: Stack,
) -> None:
    email, tag = _subscribe_circle(stack), uuid.uuid4().hex[:6]
    feed = _RetryingFeed(stack, tag, range(40))
    feed.start()
    deadline = time.monotonic() + 30
    while feed.sent < 10:
        assert time.monotonic() < deadline, "the feed never got going"
        time.sleep(0.01)
    stack.restart("ingestor", kill=True)  # mid-stream: a push may be cut off half-way
    feed.join(timeout=120)
    assert not feed.is_alive() and feed.sent == 40
    counts = _alert_counts(stack, email, tag, 40)
    lost = {f"{tag}-{i}" for i in range(40)} - set(counts)
    assert not lost, f"lost: {sorted(lost)}"
    assert set(counts.values()) == {1}, f"duplicated: {[k for k, v in counts.items() if v > 1]}"
    assert feed.retries > 0, "the ingestor was never seen down: the kill did not interrupt"
