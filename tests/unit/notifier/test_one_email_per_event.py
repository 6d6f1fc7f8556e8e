"""One email per event per person, listing every reason; and saying what the cap does.

Each email here is rendered by the sender from what the ledger claimed, serialized to bytes
and parsed back with the email package, as a mail client would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from unittest.mock import MagicMock

import pytest
import sqlalchemy as sa

from connect311_contracts.notifications import (
    AlsoMatched,
    NotificationCommand,
    SubscriberMatched,
    recipient_key,
)
from connect311_contracts.subscriptions import Delivery
from connect311_contracts.tokens import TokenPurpose, read_subscription_token
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import ClaimedEmail, Incoming, Ledger, create_engine
from connect311_notifier.links import LinkBuilder
from connect311_notifier.policy import CAP_REACHED, MERGED, EmailKind, Route
from connect311_notifier.render import Renderer
from connect311_notifier.sender import Sender
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import event, matched, request, subscription

NOW = time.time()
EMAIL = "owner@example.org"
BASE = "https://alerts.example.city"
CAP = 3
SECRET = "test-secret"
SETTINGS = NotifierSettings(instant_per_hour=CAP, display_timezone="America/New_York")
PLAN = make_planner(SETTINGS, lambda: datetime.fromtimestamp(NOW, UTC))  # the tests' clock


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    engine = create_engine(f"sqlite:///{tmp_path / 'notifier.db'}")
    ledger = Ledger(engine)
    ledger.create_schema()
    yield ledger
    engine.dispose()


@pytest.fixture
def sender(ledger: Ledger) -> Sender:
    renderer = Renderer.create(SETTINGS, LinkBuilder(BASE, SECRET))
    return Sender(SETTINGS, ledger, MagicMock(), renderer, MagicMock(), MagicMock())


def incoming(command: NotificationCommand) -> Incoming:
    return Incoming(command, recipient_key(command.subscription.email), NOW - 1)


def follow_and_shop(
    shop_delivery: Delivery = Delivery.INSTANT, source_id: str = "56922334"
) -> tuple[SubscriberMatched, SubscriberMatched]:
    """A followed request that is also within 500 m of Shop: the two matches, one event."""
    ev = event(request(source_id), "updated")
    follow = subscription(email=EMAIL, follow=ev.request.service_request_id, label=None)
    shop = subscription(email=EMAIL, label="Shop", delivery=shop_delivery)
    return (
        matched(follow, ev, distance_m=None, rule=f"you follow request {source_id}"),
        matched(shop, ev, distance_m=312, rule="within 500 m of Shop (312 m away)"),
    )


def merged(lead: SubscriberMatched, *others: SubscriberMatched) -> SubscriberMatched:
    """What the matcher now sends: one command for the person, every match in it."""
    also = tuple(
        AlsoMatched(
            subscription=o.subscription, distance_m=o.distance_m, matched_rule=o.matched_rule
        )
        for o in others
    )
    return lead.model_copy(update={"also": also})


def read(sender: Sender, email: ClaimedEmail) -> tuple[EmailMessage, str, str]:
    """The message as a mail client sees it: headers, plain text and HTML."""
    parsed = message_from_bytes(sender.render(email).as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    return parsed, plain.get_content(), html.get_content()


def stops(body: str) -> list[str]:
    """The subscriptions whose one-click unsubscribe links a body carries, in order."""
    tokens = re.findall(r"/api/subscriptions/unsubscribe\?token=([\w.\-]+)", body)
    return [read_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, t, 3600) for t in tokens]


def instant_emails(ledger: Ledger) -> list[ClaimedEmail]:
    return [e for e in ledger.claim("me", NOW + 1, 100) if e.kind is not EmailKind.DIGEST]


def test_a_followed_request_in_an_area_alert_is_one_email_listing_both_reasons(
    ledger: Ledger, sender: Sender
) -> None:
    follow, shop = follow_and_shop()
    [result] = ledger.record([incoming(merged(follow, shop))], PLAN, NOW)
    assert not result.duplicate and [d.reason for d in result.more] == [MERGED]

    [email] = instant_emails(ledger)
    message, text, html = read(sender, email)
    assert message["Subject"] == "Update: Pothole is now Open"  # the followed request leads
    assert "Why you got this (one email for 2 of your alerts):" in text
    assert "- You follow this request.\n" in text
    assert "- It is within 500 m of Shop (312 m away).\n" in text
    assert "<li>You follow this request.</li>" in html and "within 500 m of Shop" in html
    # Each subscription keeps its own stop link; List-Unsubscribe is the lead's (one-click).
    follow_id, shop_id = follow.subscription.subscription_id, shop.subscription.subscription_id
    assert stops(message["List-Unsubscribe"].strip("<>")) == [follow_id]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert stops(text) == [follow_id, shop_id] == stops(html)
    assert "Unsubscribe from Shop: " in text
    assert f"Unsubscribe from request {follow.request_event.request.service_request_id}:" in text
    assert "Manage your subscriptions: " in text
    assert html.count("Unsubscribe from") == 2


def test_redelivery_and_replay_of_the_merged_command_send_nothing_more(ledger: Ledger) -> None:
    follow, shop = follow_and_shop()
    command = merged(follow, shop)
    ledger.record([incoming(command)], PLAN, NOW)
    again = ledger.record([incoming(command), incoming(command)], PLAN, NOW + 5)
    # An older matcher's separate commands for the same matches are duplicates too.
    older = ledger.record([incoming(follow), incoming(shop)], PLAN, NOW + 6)
    assert all(r.duplicate for r in again + older)
    assert ledger.status_counts() == {"pending": 1}
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM notifier_commands")).scalar_one()
    assert rows == 2  # one row per subscription, both on the one email


def test_separate_commands_from_an_older_matcher_in_one_batch_still_make_one_email(
    ledger: Ledger, sender: Sender
) -> None:
    follow, shop = follow_and_shop()
    ledger.record([incoming(shop), incoming(follow)], PLAN, NOW)
    [email] = instant_emails(ledger)
    assert len(email.commands) == 2
    _, text, _ = read(sender, email)
    assert "You follow this request" in text and "within 500 m of Shop" in text


def test_other_events_and_other_people_still_get_their_own_emails(ledger: Ledger) -> None:
    follow, shop = follow_and_shop()
    other_event, _ = follow_and_shop(source_id="777")
    someone_else = matched(subscription(), follow.request_event)
    ledger.record(
        [incoming(merged(follow, shop)), incoming(other_event), incoming(someone_else)], PLAN, NOW
    )
    assert ledger.status_counts() == {"pending": 3}


def test_a_digest_subscription_keeps_its_item_while_the_instant_one_emails_now(
    ledger: Ledger, sender: Sender
) -> None:
    follow, shop = follow_and_shop(shop_delivery=Delivery.DAILY)
    [result] = ledger.record([incoming(merged(follow, shop))], PLAN, NOW)
    assert result.decision is not None and result.decision.route is Route.INSTANT
    assert [d.route for d in result.more] == [Route.DIGEST]
    [email] = instant_emails(ledger)
    _, text, _ = read(sender, email)
    assert "Why you got this: you follow request" in text and "Shop" not in text
    assert ledger.digest_queue_size() == 1


def test_one_event_for_two_subscriptions_counts_once_towards_the_cap(ledger: Ledger) -> None:
    events = [follow_and_shop(source_id=f"c{i}") for i in range(CAP)]
    results = ledger.record([incoming(merged(f, s)) for f, s in events], PLAN, NOW)
    routes = [d.route for r in results for d in (r.decision, *r.more) if d is not None]
    assert routes == [Route.INSTANT] * (2 * CAP)  # 3 emails, not 6 counted
    assert ledger.status_counts() == {"pending": CAP}


def test_the_email_reaching_the_cap_says_once_what_happens_next(
    ledger: Ledger, sender: Sender
) -> None:
    sub = subscription(email=EMAIL, label="Shop")
    commands = [matched(sub, event(request())) for _ in range(CAP + 2)]
    ledger.record([incoming(c) for c in commands], PLAN, NOW)
    emails = instant_emails(ledger)
    assert [e.notice for e in emails] == [None] * (CAP - 1) + [CAP_REACHED]
    texts = [read(sender, e)[1] for e in emails]
    notice = f"You are getting many alerts ({CAP} within an hour), so we are grouping"
    assert [notice in t for t in texts] == [False] * (CAP - 1) + [True]
    clock = texts[-1].split("next summary at ")[1].split(" (city time)")[0]
    hour, rest = clock.split(":")
    assert 1 <= int(hour) <= 12 and rest[3:5] in ("AM", "PM") and rest[6:] in ("EDT", "EST")


def test_a_folded_digest_says_why_and_a_chosen_one_says_the_choice(
    ledger: Ledger, sender: Sender
) -> None:
    shop = subscription(email=EMAIL, label="Shop")
    hourly = subscription(label="Park", delivery=Delivery.HOURLY)
    ledger.record([incoming(matched(shop, event(request()))) for _ in range(CAP + 2)], PLAN, NOW)
    ledger.record([incoming(matched(hourly, event(request())))], PLAN, NOW)
    later = NOW + 3601
    ledger.flush_digests(later)
    digests = {
        e.subscription_id: e for e in ledger.claim("me", later, 100) if e.kind is EmailKind.DIGEST
    }
    folded, folded_text, folded_html = read(sender, digests[shop.subscription_id])
    assert folded["Subject"] == "Your grouped 311 alerts: 2 requests for Shop"
    assert 'You are getting many alerts for "Shop", so we grouped them' in folded_text
    why = f"more than {CAP} alerts arrived within an hour, so we grouped them"
    assert why in folded_text and why in folded_html
    assert "digest" not in folded_text.split("--")[0].lower()  # never "sends a hourly digest"

    chosen, chosen_text, chosen_html = read(sender, digests[hourly.subscription_id])
    assert chosen["Subject"].startswith("Your hourly 311 digest")
    assert 'Why you got this: you chose an hourly summary for "Park".' in chosen_text
    assert "you chose an hourly summary for &ldquo;Park&rdquo;" in chosen_html
    assert "a hourly" not in chosen_text + chosen_html and why not in chosen_text


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_a_ledger_made_before_the_notice_column_gains_it(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    Ledger(engine).create_schema()
    with engine.begin() as conn:  # as the table was before this change
        conn.execute(sa.text("ALTER TABLE notifier_emails DROP COLUMN notice"))
    Ledger(engine).create_schema()
    columns = {c["name"] for c in sa.inspect(engine).get_columns("notifier_emails")}
    assert "notice" in columns
    engine.dispose()
