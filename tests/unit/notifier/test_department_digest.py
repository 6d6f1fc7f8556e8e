"""A department's daily digest in the notifier: routed as its own email, kept once per
(subscription, day) by the ledger, rendered in English and Spanish with how late each
request is, what the city promised, how old the oldest are, and the links."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connect311_contracts.digests import DepartmentDigestRequested, DigestEntry, digest_event_id
from connect311_contracts.service_levels import Target
from connect311_contracts.subscriptions import (
    Delivery,
    DepartmentDigestTarget,
    Subscription,
    SubscriptionStatus,
)
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.policy import EmailKind, Limits, RecipientState, Route, decide, dedup_key
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.test_render import parts, reparse

NOW = datetime(2024, 5, 6, 11, 0, tzinfo=UTC)  # 7:00 AM EDT
DAY = date(2024, 5, 6)
STATE = RecipientState(instant_last_hour=0, hard_bounces=0)
LIMITS = Limits(instant_per_hour=1, hard_bounce_threshold=3)


def digest_sub(
    language: str = "en", status: SubscriptionStatus = SubscriptionStatus.ACTIVE
) -> Subscription:
    return Subscription(
        subscription_id="dept-1",
        email="streets@example.city",
        target=DepartmentDigestTarget(agency="Streets"),
        delivery=Delivery.DAILY,
        status=status,
        created_at=NOW - timedelta(days=3),
        confirmed_at=NOW - timedelta(days=2),
        language=language,
    )


def entry(rid: str, days_old: float, late_s: int | None, target: Target | None) -> DigestEntry:
    made = NOW - timedelta(days=days_old)
    due = None if late_s is None else NOW - timedelta(seconds=late_s)
    return DigestEntry(
        service_request_id=rid,
        service_name="Pothole",
        address="100 Central Ave",
        requested_datetime=made,
        age_s=int(days_old * 86_400),
        due_datetime=due,
        due_source=None if due is None else ("service_level" if target else "feed"),
        target=target,
        overdue_by_s=late_s,
    )


def command(sub: Subscription, day: date = DAY) -> DepartmentDigestRequested:
    late = entry("push:late", 9, 3 * 86_400 + 60, Target(days=5))
    feed = entry("push:feed", 2, 2 * 3_600, None)
    young = entry("push:young", 1, None, None)
    return DepartmentDigestRequested(
        event_id=digest_event_id(sub.subscription_id, day),
        subscription=sub,
        agency="Streets",
        day=day,
        as_of=NOW,
        open_count=30,
        overdue_count=2,
        overdue=(late, feed),
        oldest_open=(late, feed, young),
    )


def test_a_digest_is_its_own_email_and_never_for_an_ended_subscription() -> None:
    decision = decide(command(digest_sub()), STATE, LIMITS, NOW)
    assert (decision.route, decision.kind) == (Route.INSTANT, EmailKind.DEPARTMENT_DIGEST)
    # The hourly cap is for alerts: a digest is sent even when the person reached it.
    busy = RecipientState(instant_last_hour=99, hard_bounces=0)
    assert decide(command(digest_sub()), busy, LIMITS, NOW).route is Route.INSTANT
    ended = command(digest_sub(status=SubscriptionStatus.UNSUBSCRIBED))
    assert decide(ended, STATE, LIMITS, NOW).route is Route.SKIP


def test_one_email_per_subscription_and_day_however_often_it_arrives(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = Ledger(engine)
    ledger.create_schema()
    plan = make_planner(NotifierSettings(), lambda: NOW)
    first = command(digest_sub())
    # Two replicas of the map API count a second apart: different content, the same id.
    again = first.model_copy(update={"as_of": NOW + timedelta(seconds=1)})
    tomorrow = command(digest_sub(), DAY + timedelta(days=1))
    key = "k"
    recorded = ledger.record([Incoming(first, key, 0.0)], plan, NOW.timestamp())
    assert not recorded[0].duplicate
    assert ledger.record([Incoming(again, key, 0.0)], plan, NOW.timestamp())[0].duplicate
    assert not ledger.record([Incoming(tomorrow, key, 0.0)], plan, NOW.timestamp())[0].duplicate
    claimed = ledger.claim("test", NOW.timestamp() + 1, 10)
    assert [(e.kind, e.commands[0].day) for e in claimed] == [  # type: ignore[union-attr]
        (EmailKind.DEPARTMENT_DIGEST, DAY),
        (EmailKind.DEPARTMENT_DIGEST, DAY + timedelta(days=1)),
    ]
    assert dedup_key(first) == dedup_key(again) != dedup_key(tomorrow)
    engine.dispose()


@pytest.fixture
def renderer() -> Renderer:
    settings = NotifierSettings(from_address="alerts@example.city")
    return Renderer.create(settings, LinkBuilder("https://alerts.example.city", "secret"))


def test_the_english_digest_says_how_late_against_what_and_how_old(renderer: Renderer) -> None:
    msg = reparse(renderer.department_digest(command(digest_sub()), "<d1@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"] == "Streets: 2 overdue, 30 open (daily digest, Monday 6 May 2024)"
    assert "3 days overdue: the target was 5 days (due Fri 3 May)" in text
    assert "2 hours overdue: the city expected it done by Mon 6 May, 5:00 AM EDT" in text
    assert "open for 9 days" in text and "open for 1 day" in text
    # Lists in the map API's order: most late first, then the oldest.
    assert text.index("push:late") < text.index("push:feed")
    oldest = text[text.index("== Oldest open") :]
    assert oldest.index("push:late") < oldest.index("push:feed") < oldest.index("push:young")
    assert "...and 27 more open: see the department page." in text
    assert "https://alerts.example.city/requests/push%3Alate" in text
    assert 'href="https://alerts.example.city/stats/departments?agency=Streets"' in html
    assert "Manage your subscriptions" in html and msg["List-Unsubscribe"]


def test_the_spanish_digest(renderer: Renderer) -> None:
    sub = digest_sub(language="es")
    msg = reparse(renderer.department_digest(command(sub), "<d2@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"].startswith("Streets: 2 vencidas, 30 abiertas (resumen diario, lunes 6")
    assert "3 días de retraso: el plazo era de 5 días" in text
    assert "abierta desde hace 9 días" in text
    assert "stats/departments?agency=Streets&amp;lang=es" in html
    assert "overdue" not in text.replace("push:", "")
    assert "2 vencidas, 30 abiertas" in text and "(30 abiertas)" in html
    assert "...y 27 abiertas más: vea la página del departamento." in text


def test_the_spanish_digest_words_agree_with_one(renderer: Renderer) -> None:
    # One more than listed of each, then a department with a single open, overdue request.
    sub = digest_sub(language="es")
    one_more = command(sub).model_copy(update={"open_count": 4, "overdue_count": 3})
    text, html = parts(reparse(renderer.department_digest(one_more, "<d3@example.city>", NOW)))
    assert "...y 1 vencida más: vea la página del departamento." in text
    assert "&hellip;y 1 abierta más: vea la página del departamento." in html
    late = command(sub).overdue[0]
    single = command(sub).model_copy(
        update={"open_count": 1, "overdue_count": 1, "overdue": (late,), "oldest_open": (late,)}
    )
    msg = reparse(renderer.department_digest(single, "<d4@example.city>", NOW))
    text, html = parts(msg)
    assert msg["Subject"].startswith("Streets: 1 vencida, 1 abierta (resumen diario, lunes 6")
    assert "1 vencida, 1 abierta" in text
    assert "<strong>1 vencida</strong> &middot; 1 abierta" in html
    assert "Abiertas más antiguas (1 abierta), la más antigua primero" in text
