"""End to end: an overdue request reaches the subscribers who asked, exactly once, also when
the ingestor (which holds the overdue clock) is killed before the due time and started
again after it; a request closed before its due time never does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from tests.e2e.system.conftest import Stack, readable, request_record, running_stack

CENTRE = (27.7731, -82.6400)
TARGET = timedelta(hours=1)  # the service level of the test category (LEVELS below)
LEVELS = '[service_code]\n"OVERDUE-E2E" = { hours = 1 }\n'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system, its ingestor sweeping for overdue requests twice a second."""
    state = tmp_path_factory.mktemp("overdue-stack")
    levels = state / "service-levels.toml"
    levels.write_text(LEVELS)
    extra = {
        "NOTIFIER_INSTANT_PER_HOUR": "1000",
        "INGESTOR_SERVICE_LEVELS_FILE": str(levels),
        "INGESTOR_OVERDUE_CHECK_S": "0.5",
    }
    with running_stack(state, extra) as running:
        yield running


def due_in(seconds: float, name: str, tag: str) -> dict[str, object]:
    """A request of the test category made so that its one-hour target ends `seconds` from
    now: the clock is controlled by when the request was made, not by waiting an hour."""
    made = datetime.now(UTC) - TARGET + timedelta(seconds=seconds)
    return request_record(
        f"{name}-{tag}",
        CENTRE[0] + 0.001,
        CENTRE[1],
        service_code="OVERDUE-E2E",
        service_name=f"Overdue test {name}",
        description=f"{name} {tag}",
        requested_datetime=made.isoformat(),
        updated_datetime=made.isoformat(),
    )


def in_(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def overdue_mail(stack: Stack, email: str) -> list[EmailMessage]:
    return [m for m in stack.mail_to(email) if "overdue" in str(m["Subject"])]


def test_an_overdue_request_alerts_once_across_an_ingestor_restart(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:6]
    area, follower = f"area-{tag}@example.org", f"follower-{tag}@example.org"
    stack.subscribe(
        {
            "email": area,
            "delivery": "instant",
            "target": {"kind": "circle", "lat": CENTRE[0], "long": CENTRE[1], "radius_m": 500},
            "filters": {"event_kinds": ["overdue"]},
        }
    )
    # Closed before its due time: never overdue, though the time passes while this runs.
    closed = due_in(2, "closed", tag)
    stack.push(closed)
    stack.push({**closed, "status": "closed", "status_notes": "Filled in time"})
    # The city's own date, a day away, then moved to a second from now.
    first = {**due_in(3_600, "first", tag), "expected_datetime": in_(86_400)}
    stack.push(first)
    stack.wait_for_request(f"push:first-{tag}")
    stack.subscribe(
        {
            "email": follower,
            "delivery": "instant",
            "target": {"kind": "follow", "service_request_id": f"push:first-{tag}"},
        }
    )
    stack.push({**first, "expected_datetime": in_(1), "updated_datetime": in_(0)})
    alert = stack.wait_for_mail(lambda m: area in str(m["To"]) and f"first {tag}" in readable(m))
    assert str(alert["Subject"]).startswith(
        "Overdue test first at 100 Central Ave is now overdue: the city expected it done by "
    )
    stack.wait_for_mail(lambda m: follower in str(m["To"]) and "overdue" in str(m["Subject"]))

    # The clock holder dies before the second request's due time and starts again only
    # after it: the restarted sweep publishes that one, and nothing published before again.
    second = due_in(1.5, "second", tag)
    stack.push(second)
    ingestor = next(r for r in stack.supervisor.running if r.spec.name == "ingestor")
    ingestor.process.kill()
    ingestor.process.wait(timeout=30)
    due = datetime.fromisoformat(str(second["requested_datetime"])) + TARGET
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.3)
    stack.start(stack.specs["ingestor"])
    late = stack.wait_for_mail(lambda m: area in str(m["To"]) and f"second {tag}" in readable(m))
    assert "is now overdue: the city's target was 1 hour (due " in str(late["Subject"])

    time.sleep(3.0)  # a duplicate (a re-published event, a second sweep) would land now
    to_area = sorted(str(m["Subject"]) for m in overdue_mail(stack, area))
    assert to_area == sorted([str(alert["Subject"]), str(late["Subject"])])
    assert [m["Subject"] for m in overdue_mail(stack, follower)] == [alert["Subject"]]
    assert not [m for m in stack.sink.messages if f"closed {tag}" in readable(m)]
