"""Overdue alerts say how late and what the city promised, in English and in Spanish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connect311_contracts.events import EventKind, RequestOverdue
from connect311_contracts.service_levels import Target
from connect311_contracts.subscriptions import Subscription, SubscriptionFilters
from connect311_notifier.describe import describe_alert
from connect311_notifier.i18n import language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.render import Renderer
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.wording import local_lateness
from tests.unit.notifier.factories import matched, request, subscription
from tests.unit.notifier.test_render import parts, reparse

DUE = datetime(2024, 12, 2, 14, 0, tzinfo=UTC)  # Monday 2 December, 9:00 AM in New York
NOW = DUE + timedelta(days=3, hours=2)
DAY = 86_400


@pytest.fixture
def renderer() -> Renderer:
    settings = NotifierSettings(from_address="alerts@example.city")
    return Renderer.create(settings, LinkBuilder("https://alerts.example.city", "secret"))


FIVE_DAYS = Target(days=5)


def overdue(late_s: int, target: Target | None = FIVE_DAYS) -> RequestOverdue:
    req = request()
    return RequestOverdue(
        request=req,
        service_request_id=req.service_request_id,
        due_datetime=DUE,
        due_source="service_level" if target else "feed",
        target=target,
        overdue_by_s=late_s,
    )


def spanish(sub: Subscription) -> Subscription:
    return sub.model_copy(update={"language": "es"})


def test_an_overdue_alert_says_how_late_and_the_target(renderer: Renderer) -> None:
    command = matched(ev=overdue(3 * DAY + 3_000))
    msg = reparse(renderer.alert(command, False, "<o1@example.city>", NOW))
    text, html = parts(msg)
    sentence = (
        "Pothole at 100 Central Ave is 3 days overdue: the city's target was 5 days (due Mon 2 Dec)"
    )
    assert msg["Subject"] == sentence
    assert sentence in text and sentence.replace("'", "&#39;") in html
    assert text.startswith("Overdue: Pothole")  # the kind of alert, as for other changes
    assert "When: Mon 02 Dec 2024, 09:00 EST" in text  # the due time passing is the news


def test_just_overdue_against_the_feeds_own_date_names_the_time(renderer: Renderer) -> None:
    sub = subscription(follow="stpete:1", label=None)
    command = matched(sub, overdue(40, target=None), distance_m=None)
    msg = reparse(renderer.alert(command, True, "<o2@example.city>", NOW))
    text, _ = parts(msg)
    sentence = (
        "Pothole at 100 Central Ave is now overdue: the city expected it done by "
        "Mon 2 Dec, 9:00 AM EST"
    )
    assert msg["Subject"] == sentence and sentence in text


def test_a_spanish_overdue_alert_and_digest(renderer: Renderer) -> None:
    business = Target(days=3, business_days=True)
    command = matched(spanish(subscription(label="Casa")), overdue(5 * 3_600, business))
    msg = reparse(renderer.alert(command, False, "<o3@example.city>", NOW))
    text, html = parts(msg)
    sentence = (
        "Pothole en 100 Central Ave lleva 5 horas fuera de plazo: la ciudad se fijó un plazo "
        "de 3 días hábiles (vencía el lun 2 de dic)"
    )
    assert msg["Subject"] == sentence
    assert sentence in text and sentence in html and "Fuera de plazo: Pothole" in text
    assert "overdue" not in text.lower()
    hours = matched(spanish(subscription()), overdue(30, Target(hours=1.5)))
    digest = reparse(renderer.digest([hours], "daily", "<o4@example.city>", NOW))
    text, html = parts(digest)
    sentence = (
        "Pothole en 100 Central Ave ya está fuera de plazo: la ciudad se fijó un plazo de "
        "1.5 horas (vencía el lun 2 de dic, 9:00 a.m. EST)"
    )
    assert sentence in text and sentence in html


@pytest.mark.parametrize(
    ("seconds", "english", "spanish_words"),
    [
        (59, None, None),
        (60, "1 minute", "1 minuto"),
        (3 * 3_600 + 59 * 60, "3 hours", "3 horas"),
        (DAY, "1 day", "1 día"),
        (45 * DAY, "45 days", "45 días"),
    ],
)
def test_lateness_in_the_largest_whole_unit(
    seconds: int, english: str | None, spanish_words: str | None
) -> None:
    assert local_lateness(seconds) == english
    assert local_lateness(seconds, language("es")) == spanish_words


def test_the_confirmation_names_overdue_among_the_kinds() -> None:
    kinds: Any = (EventKind.CLOSED, EventKind.OVERDUE)
    sub = subscription().model_copy(update={"filters": SubscriptionFilters(event_kinds=kinds)})
    assert describe_alert(sub).endswith("(changes: closed, overdue)")
    assert describe_alert(spanish(sub), language("es")).endswith("fuera de plazo)")
