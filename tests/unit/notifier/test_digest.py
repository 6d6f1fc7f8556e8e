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
    assert f"200 requests: {counts['new']} new, {counts['updated']} updated" in text
    for sid in expected:
        url = LINKS.request_url(sid)
        assert text.count(url + "\n") == 1  # one line per request, not per event
        assert html.count(f'href="{url}"') == 1
    assert f"New ({counts['new']})" in html and f"Closed ({counts['closed']})" in html
    assert len(msg.as_bytes()) < 400_000  # readable: a few hundred bytes a request
    assert "200 requests" in parsed["Subject"]


def test_digest_caps_items_and_says_how_many_more() -> None:
    commands, _ = history(30, seed=11)
    view = digest_view(commands, LINKS, TZ, max_items=10)
    assert view.total == 10 and view.omitted == 20


STATUS_OF = {
    "opened": RequestStatus.OPEN,
    "updated": RequestStatus.IN_PROGRESS,
    "closed": RequestStatus.CLOSED,
}


def rendered_digest(
    kinds: list[str], lang: str, changes_each: int = 1, max_items: int = 10
) -> tuple[str, str, str]:
    """Subject, text and HTML of a daily digest with one request per kind in `kinds`, each
    changed `changes_each` times, in `lang`."""
    sub = subscription(delivery=Delivery.DAILY).model_copy(update={"language": lang})
    commands = [
        matched(
            sub,
            event(
                request(f"w{i}", status=STATUS_OF[kind]),
                kind,
                occurred_at=T0 + timedelta(minutes=i * 10 + j),
            ),
        )
        for i, kind in enumerate(kinds)
        for j in range(changes_each)
    ]
    renderer = Renderer.create(NotifierSettings(max_digest_items=max_items), LINKS)
    msg = renderer.digest(commands, "daily", "<w@example>", datetime.now(UTC))
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return str(parsed["Subject"]), text, html


def test_digest_words_agree_with_their_counts_in_english() -> None:
    subject, text, html = rendered_digest(["updated"], "en")
    assert subject == "Your daily 311 digest: 1 request for Home"
    assert "1 request: 0 new, 1 updated, 0 closed (1 change in all)." in text
    assert "1 request &middot; 0 new &middot; 1 updated &middot; 0 closed" in html
    subject, text, html = rendered_digest(["opened", "updated", "closed"], "en", changes_each=2)
    assert subject == "Your daily 311 digest: 3 requests for Home"
    assert "3 requests: 1 new, 1 updated, 1 closed (6 changes in all)." in text
    assert "3 requests &middot; 1 new &middot; 1 updated &middot; 1 closed" in html
    assert "(s)" not in subject + text + html
    # Past the cap (10 listed), the rest is counted with the right word too.
    _, text, html = rendered_digest(["updated"] * 11, "en")
    assert "...and 1 more request: see the map." in text
    assert "&hellip;and 1 more request: see the map." in html
    _, text, html = rendered_digest(["updated"] * 12, "en")
    assert "...and 2 more requests: see the map." in text
    assert "&hellip;and 2 more requests: see the map." in html


def test_digest_words_agree_with_their_counts_in_spanish() -> None:
    subject, text, html = rendered_digest(["opened", "updated", "closed"], "es")
    assert subject == "Su resumen 311 diario: 3 solicitudes para Home"
    assert "3 solicitudes: 1 nueva, 1 actualizada, 1 cerrada (3 cambios en total)." in text
    assert "3 solicitudes &middot; 1 nueva &middot; 1 actualizada &middot; 1 cerrada" in html
    kinds = ["opened"] * 2 + ["updated"] * 2 + ["closed"] * 2
    subject, text, html = rendered_digest(kinds, "es", max_items=500)
    assert "6 solicitudes: 2 nuevas, 2 actualizadas, 2 cerradas (6 cambios en total)." in text
    assert "6 solicitudes &middot; 2 nuevas &middot; 2 actualizadas &middot; 2 cerradas" in html
    subject, text, html = rendered_digest(["updated"], "es")
    assert subject == "Su resumen 311 diario: 1 solicitud para Home"
    assert "1 solicitud: 0 nuevas, 1 actualizada, 0 cerradas (1 cambio en total)." in text
    assert "(s)" not in subject + text + html and "(es)" not in subject + text + html
    _, text, html = rendered_digest(["updated"] * 11, "es")
    assert "...y 1 solicitud más: vea el mapa." in text
    assert "&hellip;y 1 solicitud más: vea el mapa." in html
    _, text, html = rendered_digest(["updated"] * 12, "es")
    assert "...y 2 solicitudes más: vea el mapa." in text
