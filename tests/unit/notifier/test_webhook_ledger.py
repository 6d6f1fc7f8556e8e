"""Webhooks in the ledger: queued once per (subscription, event) beside the emails, claimed by
their own loop only, and each webhook's state (failures in a row, turned off, its owner's
email) committed with the delivery step that changes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from connect311_contracts.notifications import AlsoMatched, NotificationCommand, recipient_key
from connect311_contracts.subscriptions import Delivery, SubscriptionStatus
from connect311_contracts.webhooks import url_key
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine, emails
from connect311_notifier.ledger_intake import hook_recipient_key
from connect311_notifier.policy import Channel, EmailKind, Route
from connect311_notifier.settings import NotifierSettings
from connect311_notifier.webhook_payload import webhook_id
from tests.unit.notifier.factories import event, matched, request, subscription, with_webhook

NOW = time.time()
PLAN = make_planner(NotifierSettings(instant_per_hour=2), lambda: datetime.fromtimestamp(NOW, UTC))
URL = "https://hooks.example.com/in/secret-path"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notifier.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    ledger = Ledger(engine)
    ledger.create_schema()
    yield ledger
    engine.dispose()


def record(ledger: Ledger, *commands: NotificationCommand, at: float = NOW) -> list:
    batch = [Incoming(c, recipient_key(c.subscription.email), at - 1) for c in commands]
    return ledger.record(batch, PLAN, at)


def rows(ledger: Ledger) -> list[sa.Row]:
    with ledger.engine.connect() as conn:
        return list(conn.execute(sa.select(emails).order_by(emails.c.id)))


def test_a_webhook_is_queued_beside_the_email_once_per_event(ledger: Ledger) -> None:
    command = matched(with_webhook(subscription(), URL))
    (first,) = record(ledger, command)
    assert [(h.route, h.reason) for h in first.hooks] == [(Route.INSTANT, "webhook")]
    assert record(ledger, command)[0].duplicate  # a replay queues nothing more
    alert, hook = rows(ledger)
    assert (alert.kind, hook.kind) == ("alert", "webhook")
    assert hook.message_id == webhook_id(command)  # the webhook-id, fixed for every attempt
    assert hook.to_addr == "hooks.example.com"  # the host: the URL's path may be a secret
    assert hook.recipient_key == hook_recipient_key(command.subscription.subscription_id)


def test_webhook_only_alerts_skip_the_email_cap_and_digest(ledger: Ledger) -> None:
    sub = with_webhook(subscription(delivery=Delivery.DAILY), URL, email_alerts=False)
    results = record(ledger, *(matched(sub) for _ in range(5)))
    assert {r.decision.reason for r in results} == {"email_alerts_off"}
    assert [r.hooks[0].route for r in results] == [Route.INSTANT] * 5  # no cap, no digest
    assert [r.kind for r in rows(ledger)] == ["webhook"] * 5
    assert ledger.digest_queue_size() == 0


def test_each_subscription_of_a_merged_command_gets_its_own_webhook(ledger: Ledger) -> None:
    mine = subscription(email="ann@example.org")
    other = with_webhook(subscription(email="ann@example.org"), URL + "2")
    command = matched(with_webhook(mine, URL)).model_copy(
        update={"also": (AlsoMatched(subscription=other, matched_rule="also"),)}
    )
    (result,) = record(ledger, command)
    assert len(result.hooks) == 2
    kinds = [(r.kind, r.subscription_id) for r in rows(ledger)]
    assert kinds.count(("alert", mine.subscription_id)) == 1  # one email for the person
    assert {s for k, s in kinds if k == "webhook"} == {
        mine.subscription_id,
        other.subscription_id,
    }


def test_skipped_webhooks_are_counted_with_a_reason(ledger: Ledger) -> None:
    pending = with_webhook(subscription(status=SubscriptionStatus.PENDING), URL)
    off = with_webhook(subscription(), URL)
    off = off.model_copy(update={"webhook": off.webhook.model_copy(update={"enabled": False})})  # type: ignore[union-attr]
    backfill = matched(with_webhook(subscription(), URL), event(request(), backfill=True))
    results = record(ledger, matched(pending), matched(off), backfill, matched(subscription()))
    assert [[(h.route, h.reason) for h in r.hooks] for r in results] == [
        [(Route.SKIP, "subscription_pending")],
        [(Route.SKIP, "webhook_disabled")],
        [(Route.SKIP, "backfill")],
        [],  # no webhook: nothing to say
    ]
    assert all(r.kind != "webhook" for r in rows(ledger))


def test_each_loop_claims_only_its_own_rows(ledger: Ledger) -> None:
    record(ledger, matched(with_webhook(subscription(), URL)))
    (email,) = ledger.claim("me", NOW, 10)
    assert email.kind is EmailKind.ALERT
    assert ledger.next_due(Channel.WEBHOOK) == NOW
    (hook,) = ledger.claim("me", NOW, 10, Channel.WEBHOOK)
    assert hook.kind is EmailKind.WEBHOOK and hook.command_id is not None
    assert [c.event_id for c in hook.commands] == [c.event_id for c in email.commands]
    ledger.mark_sending(hook.id, NOW)
    ledger.mark_sending(email.id, NOW)
    # A restarted webhook loop puts back its own row, never the email loop's in flight.
    assert ledger.recover("me", 60, NOW, Channel.WEBHOOK) == (0, 1)
    assert ledger.claim("other", NOW, 10) == []
    assert [h.id for h in ledger.claim("other", NOW, 10, Channel.WEBHOOK)] == [hook.id]


def test_failures_in_a_row_reset_on_delivery_and_start_afresh_for_a_new_url(
    ledger: Ledger,
) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    key = url_key(sub.webhook)  # type: ignore[arg-type]
    record(ledger, matched(sub), matched(sub))
    first, second = ledger.claim("me", NOW, 10, Channel.WEBHOOK)
    hooks = ledger.webhooks
    hooks.failed(first, key, "HTTP 500", 1, NOW, retry_at=NOW + 5)
    assert hooks.state(sub.subscription_id, key).failures == 1
    assert ledger.claim("me", NOW + 1, 10, Channel.WEBHOOK) == []  # its later one waits too
    hooks.verified(sub.subscription_id, key, NOW)
    hooks.sent(second, key, NOW)
    state = hooks.state(sub.subscription_id, key)
    assert state.verified and state.failures == 0 and not state.disabled
    assert hooks.state(sub.subscription_id, "another-url-key").verified is False


def test_turning_off_dead_letters_the_row_and_queues_the_owners_email_once(
    ledger: Ledger,
) -> None:
    sub = with_webhook(subscription(), URL, email_alerts=False)
    key = url_key(sub.webhook)  # type: ignore[arg-type]
    command = matched(sub)
    record(ledger, command)
    (hook,) = ledger.claim("me", NOW, 10, Channel.WEBHOOK)
    ledger.webhooks.turn_off(hook, key, "HTTP 500", 20, "failing", NOW)
    assert ledger.webhooks.state(sub.subscription_id, key).disabled
    (notice,) = ledger.claim("me", NOW, 10)
    assert notice.kind is EmailKind.WEBHOOK_DISABLED and notice.notice == "failing"
    assert notice.to_addr == sub.email and notice.recipient_key == recipient_key(sub.email)
    assert [c.event_id for c in notice.commands] == [command.event_id]
    # Later events for that URL and secret are skipped until the owner changes either.
    (later,) = record(ledger, matched(sub))
    assert [(h.route, h.reason) for h in later.hooks] == [(Route.SKIP, "webhook_disabled")]
    rotated = sub.model_copy(
        update={"webhook": sub.webhook.model_copy(update={"secret_version": 2})}  # type: ignore[union-attr]
    )
    (again,) = record(ledger, matched(rotated))
    assert again.hooks[0].route is Route.INSTANT
    statuses = [(r.kind, r.status) for r in rows(ledger)]
    assert statuses == [
        ("webhook", "dead"),
        ("webhook_disabled", "claimed"),
        ("webhook", "pending"),
    ]
