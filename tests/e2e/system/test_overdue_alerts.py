"""End to end: an overdue request reaches the subscribers who asked, exactly once, also when
the ingestor (which holds the overdue clock) is killed before the due time and started
again after it; a request closed before its due time never does. A department's daily
digest arrives once, listing its overdue and oldest open requests as the city's data says,
also when the map API publishes the same day again after a restart."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from playwright.sync_api import Playwright

from tests.e2e.system.conftest import Stack, readable, request_record, running_stack
from tests.e2e.web.conftest import CHROMIUM, CHROMIUM_ARGS, screenshot

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
        "MAP_API_SERVICE_LEVELS_FILE": str(levels),
        "MAP_API_DEPARTMENT_DIGEST_CHECK_S": "0.5",
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


def _ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def _dedup_count(stack: Stack) -> float:
    url = f"http://127.0.0.1:{stack.ports.notifier_port}/metrics"
    lines = httpx.get(url, timeout=5).text.splitlines()
    prefix = 'notifier_commands_deduplicated_total{kind="department_digest"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def test_a_department_digest_arrives_once_with_its_overdue_and_oldest_requests(
    stack: Stack, playwright: Playwright
) -> None:
    tag = uuid.uuid4().hex[:6]
    agency, email = f"Digest Works {tag}", f"dept-{tag}@example.org"
    far = (CENTRE[0] + 0.05, CENTRE[1])  # no place alert of the other test hears of these

    def record(name: str, **fields: object) -> dict[str, object]:
        base = request_record(f"{name}-{tag}", *far, agency_responsible=agency)
        return {**base, "service_name": f"Digest {name}", "service_code": "DIGEST-E2E", **fields}

    # What the digest must say, worked out from what the city sent (the independent count):
    # late by the city's own date (3 days), late against the 1-hour target (2.5 hours),
    # open for 10 days with no due date, due in 2 days; a closed one and another
    # department's overdue one are left out.
    records = [
        record(
            "bydate",
            requested_datetime=_ago(days=5, hours=1),
            expected_datetime=_ago(days=3, hours=1),
        ),
        record("bytarget", service_code="OVERDUE-E2E", requested_datetime=_ago(hours=3.5)),
        record("oldest", requested_datetime=_ago(days=10, hours=1)),
        record(
            "notyet", requested_datetime=_ago(days=1, hours=1), expected_datetime=in_(2 * 86_400)
        ),
        record("closed", status="closed", requested_datetime=_ago(days=20)),
        {**record("other", expected_datetime=_ago(days=2)), "agency_responsible": "Elsewhere"},
    ]
    stack.push(*records)
    for r in records:
        stack.wait_for_request(f"push:{r['service_request_id']}")
    stack.subscribe(
        {
            "email": email,
            "delivery": "daily",
            "target": {"kind": "department_digest", "agency": agency},
        },
        matcher=False,
    )
    # The day's digest goes out once the subscription is active (then daily at 7:00 AM).
    digest = stack.wait_for_mail(
        lambda m: email in str(m["To"]) and "daily digest" in str(m["Subject"])
    )
    assert str(digest["Subject"]).startswith(f"{agency}: 2 overdue, 4 open (daily digest, ")
    text = readable(digest)
    overdue = text[text.index("== Overdue (2), most late first ==") : text.index("== Oldest open")]
    oldest = text[text.index("== Oldest open (4 open), oldest first ==") :]
    assert [f"push:{n}-{tag}" in overdue for n in ("bydate", "bytarget", "oldest", "notyet")] == [
        True,
        True,
        False,
        False,
    ]
    assert overdue.index(f"bydate-{tag}") < overdue.index(f"bytarget-{tag}")  # most late first
    assert "3 days overdue: the city expected it done by " in overdue
    assert "2 hours overdue: the target was 1 hour (due " in overdue
    order = [oldest.index(f"push:{n}-{tag}") for n in ("oldest", "bydate", "notyet", "bytarget")]
    assert order == sorted(order)  # oldest first
    for words in ("open for 10 days", "open for 5 days", "open for 1 day", "open for 3 hours"):
        assert words in oldest
    assert f"closed-{tag}" not in text and f"other-{tag}" not in text
    assert f"/requests/push%3Aoldest-{tag}" in text
    assert "/stats/departments?agency=Digest+Works+" in text
    # The map API's own list agrees: the same overdue requests of that department.
    listed = httpx.get(
        f"{stack.map_api}/api/requests", params={"agency": agency, "overdue": "true"}, timeout=10
    ).json()
    assert sorted(f["properties"]["service_request_id"] for f in listed["features"]) == sorted(
        [f"push:bydate-{tag}", f"push:bytarget-{tag}"]
    )

    # The map API forgets it published today's digest and restarts: it publishes the same
    # day's digest again (same event id), and the notifier's ledger drops it.
    database = stack.specs["map-api"].env["MAP_API_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM department_digests")
    before = _dedup_count(stack)
    stack.restart("map-api")
    deadline = time.monotonic() + 30
    while _dedup_count(stack) <= before:
        assert time.monotonic() < deadline, "the restarted map API never sent the digest again"
        time.sleep(0.2)
    assert [m["Subject"] for m in stack.mail_to(email) if "daily digest" in str(m["Subject"])] == [
        digest["Subject"]
    ]
    _screenshot(playwright, digest)


def _screenshot(playwright: Playwright, message: EmailMessage) -> None:
    """The HTML email as a mail app would show it, for the issue's note."""
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        page = browser.new_page(viewport={"width": 720, "height": 900})
        page.set_content(str(html.get_content()))  # type: ignore[attr-defined]
        assert page.get_by_role("heading", name="Overdue (2), most late first").is_visible()
        screenshot(page, "department-digest-email")
    finally:
        browser.close()
