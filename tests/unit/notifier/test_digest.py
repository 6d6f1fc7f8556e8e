"""A digest folds many events into one readable email, grouped new / updated / closed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

from connect311_contracts.notifications import SubscriberMatched
from connect311_contracts.request import RequestStatus
from connect311_contracts.subscriptions import Delivery
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.views import digest_view
from tests.unit.notifier.factories import T0, event, matched, request, subscription

LINKS = LinkBuilder("https://map.example", "secret")
TZ = ZoneInfo("America/New_York")


def history(n_requests: int, seed: int) -> tuple[list[SubscriberMatched], dict[str, str]]:
    """Random event histories per request, and the group each request must land in."""
    rng = random.Random(seed)
    sub = subscription(delivery=Delivery.DAILY)
    commands: list[SubscriberMatched] = []
    expected: dict[str, str] = {}
    for i in range(n_requests):
        sid = f"r{seed}-{i}"
        opened_now = rng.random() < 0.4
        steps = ["opened"] if opened_now else []
        steps += rng.choices(["updated", "closed"], k=rng.randint(0 if opened_now else 1, 3))
        for j, kind in enumerate(steps):
            status = RequestStatus.CLOSED if kind == "closed" else RequestStatus.IN_PROGRESS
            if kind == "opened":
                status = RequestStatus.OPEN
            when = T0 + timedelta(minutes=i * 7 + j)
            ev = event(request(sid, status=status, notes=f"step {j}"), kind, occurred_at=when)
            commands.append(matched(sub, ev))
        last = steps[-1]
        expected[f"stpete:{sid}"] = (
            "new" if opened_now else ("closed" if last == "closed" else "updated")
        )
    rng.shuffle(commands)  # arrival order must not matter
    return commands, expected


def test_digest_groups_each_request_once_in_its_latest_state() -> None:
    commands, expected = history(60, seed=7)
    view = digest_view(commands, LINKS, TZ, max_items=500)
    got = {
        item.service_request_id: group
        for group, items in (("new", view.new), ("updated", view.updated), ("closed", view.closed))
        for item in items
    }
    assert got == expected
    assert view.events == len(commands) and view.total == 60 and view.omitted == 0
    for items in (view.new, view.updated, view.closed):
        times = [i.occurred_at for i in items]
        assert times == sorted(times, reverse=True)  # newest first


def test_digest_email_of_200_requests_is_one_readable_message() -> None:
    commands, expected = history(200, seed=3)
    renderer = Renderer.create(NotifierSettings(), LINKS)
    msg = renderer.digest(commands, "daily", "<d@example>", datetime.now(UTC))
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    counts = {g: sum(1 for v in expected.values() if v == g) for g in ("new", "updated", "closed")}
    assert f"200 request(s): {counts['new']} new, {counts['updated']} updated" in text
    for sid in expected:
        url = LINKS.request_url(sid)
        assert text.count(url + "\n") == 1  # one line per request, not per event
        assert html.count(f'href="{url}"') == 1
    assert f"New ({counts['new']})" in html and f"Closed ({counts['closed']})" in html
    assert len(msg.as_bytes()) < 400_000  # readable: a few hundred bytes a request
    assert "200 request(s)" in parsed["Subject"]


def test_digest_caps_items_and_says_how_many_more() -> None:
    commands, _ = history(30, seed=11)
    view = digest_view(commands, LINKS, TZ, max_items=10)
    assert view.total == 10 and view.omitted == 20
