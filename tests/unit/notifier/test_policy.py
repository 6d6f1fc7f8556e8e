"""The pure delivery policy: double opt-in, digests, rate limit, bounces, back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from connect311_contracts.subscriptions import Delivery, SubscriptionStatus
from connect311_notifier.policy import (
    EmailKind,
    Limits,
    RecipientState,
    Route,
    backoff_s,
    decide,
    dedup_key,
)
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription

LIMITS = Limits(instant_per_hour=3, hard_bounce_threshold=2)
FRESH = RecipientState(instant_last_hour=0, hard_bounces=0)
NOW = datetime.now(UTC)


def test_pending_subscription_gets_only_its_confirmation() -> None:
    pending = subscription(status=SubscriptionStatus.PENDING)
    assert decide(matched(pending), FRESH, LIMITS, NOW).route is Route.SKIP
    decision = decide(confirmation(pending), FRESH, LIMITS, NOW)
    assert (decision.route, decision.kind) == (Route.INSTANT, EmailKind.CONFIRMATION)


def test_confirmation_for_an_active_or_expired_subscription_is_not_sent() -> None:
    active = decide(confirmation(subscription()), FRESH, LIMITS, NOW)
    assert (active.route, active.reason) == (Route.SKIP, "subscription_active")
    # Judged at the current time: the module-level NOW may be minutes older in a long run.
    late = confirmation(expires_in=timedelta(minutes=-1))
    expired = decide(late, FRESH, LIMITS, datetime.now(UTC))
    assert (expired.route, expired.reason) == (Route.SKIP, "confirmation_expired")


def test_unsubscribed_and_backfill_are_skipped_with_reasons() -> None:
    gone = decide(matched(subscription(status=SubscriptionStatus.UNSUBSCRIBED)), FRESH, LIMITS, NOW)
    assert gone.reason == "subscription_unsubscribed"
    old = matched(ev=event(request(), backfill=True))
    assert decide(old, FRESH, LIMITS, NOW).reason == "backfill"


def test_digest_subscribers_get_their_period() -> None:
    decision = decide(matched(subscription(delivery=Delivery.WEEKLY)), FRESH, LIMITS, NOW)
    assert (decision.route, decision.period) == (Route.DIGEST, Delivery.WEEKLY)


def test_instant_past_the_hourly_limit_folds_into_an_hourly_digest() -> None:
    under = decide(matched(), RecipientState(2, 0), LIMITS, NOW)
    over = decide(matched(), RecipientState(3, 0), LIMITS, NOW)
    assert (under.route, under.kind) == (Route.INSTANT, EmailKind.ALERT)
    assert (over.route, over.period, over.reason) == (Route.DIGEST, Delivery.HOURLY, "rate_limited")


def test_follow_subscription_gets_follow_updates() -> None:
    req = request()
    sub = subscription(follow=req.service_request_id)
    assert decide(matched(sub, event(req)), FRESH, LIMITS, NOW).kind is EmailKind.FOLLOW


def test_hard_bounced_address_gets_nothing() -> None:
    bounced = RecipientState(0, hard_bounces=2)
    assert decide(matched(), bounced, LIMITS, NOW).route is Route.SKIP
    assert decide(confirmation(), bounced, LIMITS, NOW).route is Route.SKIP


def test_dedup_key_is_subscription_request_event() -> None:
    command = matched()
    req = command.request_event.request
    assert dedup_key(command) == (
        command.subscription.subscription_id,
        req.service_request_id,
        command.request_event.event_id,
    )
    confirm = confirmation()
    assert dedup_key(confirm)[1:] == ("confirmation", confirm.event_id)


@given(
    attempt=st.integers(0, 40),
    base=st.floats(0.01, 10),
    cap=st.floats(1, 3600),
    jitter=st.floats(0, 1),
)
def test_backoff_is_exponential_capped_and_jittered(
    attempt: int, base: float, cap: float, jitter: float
) -> None:
    ceiling = min(cap, base * 2.0**attempt)
    delay = backoff_s(attempt, base, cap, jitter)
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9
    assert backoff_s(attempt + 1, base, cap, jitter) >= delay - 1e-9
