"""The relay policy: one outage however many lanes notice it, capped probes, drain figure."""

from __future__ import annotations

import pytest

from connect311_notifier.relay import Recovery, Relay


def test_an_outage_starts_once_however_many_lanes_notice_it() -> None:
    relay = Relay(probe_base_s=0.5, probe_max_s=10.0)
    assert relay.reachable
    assert relay.lost(100.0, "refused") is True
    assert relay.lost(100.1, "refused again") is False  # a second lane: same outage
    assert not relay.reachable and relay.down_since == 100.0 and relay.reason == "refused again"


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_probes_double_from_the_base_and_never_wait_past_the_cap(jitter: float) -> None:
    relay = Relay(probe_base_s=0.5, probe_max_s=10.0)
    relay.lost(0.0, "refused")
    waits = []
    for _ in range(12):
        waits.append(relay.probe_in(jitter))
        relay.probe_failed("refused")
    assert all(wait <= 10.0 for wait in waits)
    assert waits[0] <= 0.5 and waits[-1] == 5.0 + 5.0 * jitter
    assert waits == sorted(waits)
    # A minute down means a probe at least every 10 s: at least 6 of them.
    elapsed, probes = 0.0, 0
    relay = Relay(probe_base_s=0.5, probe_max_s=10.0)
    relay.lost(0.0, "refused")
    while elapsed < 60.0:
        elapsed += relay.probe_in(jitter)
        relay.probe_failed("refused")
        probes += 1
    assert probes >= 6


def test_an_answer_ends_the_outage_and_starts_timing_the_backlog() -> None:
    relay = Relay(probe_base_s=0.5, probe_max_s=10.0)
    assert relay.answered(5.0) is None  # nothing was down: nothing to report
    relay.lost(10.0, "refused")
    relay.probe_failed("refused")
    relay.probe_failed("refused")
    assert relay.drained(20.0) is None  # still down: no backlog figure yet
    assert relay.answered(70.0) == Recovery(down_s=60.0, failed_probes=2)
    assert relay.reachable and relay.failed_probes == 0
    for _ in range(3):
        relay.sent()
    assert relay.drained(72.5) == (2.5, 3)
    assert relay.drained(80.0) is None  # reported once
    relay.sent()  # outside a backlog: not counted
    assert relay.sent_since_resumed == 0


def test_a_new_outage_restarts_the_probe_back_off() -> None:
    relay = Relay(probe_base_s=0.5, probe_max_s=10.0)
    relay.lost(0.0, "refused")
    for _ in range(10):
        relay.probe_failed("refused")
    relay.answered(60.0)
    relay.lost(61.0, "refused")
    assert relay.probe_in(1.0) == 0.5
