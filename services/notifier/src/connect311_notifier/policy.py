"""Pure delivery policy: what to do with one notification command (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from connect311_contracts.notifications import (
    ConfirmationRequested,
    DepartmentDigestRequested,
    NotificationCommand,
    SubscriberMatched,
)
from connect311_contracts.subscriptions import Delivery, SubscriptionStatus


class Route(StrEnum):
    """Where a command goes: its own email now, the next digest, or nowhere (with a reason)."""

    INSTANT = "instant"
    DIGEST = "digest"
    SKIP = "skip"


class EmailKind(StrEnum):
    """The kinds of message the notifier sends (rows of its outbox)."""

    CONFIRMATION = "confirmation"
    ALERT = "alert"
    FOLLOW = "follow"
    DIGEST = "digest"
    WEBHOOK = "webhook"
    """Not an email: one signed POST per (subscription, event), sent by the webhook loop."""
    WEBHOOK_DISABLED = "webhook_disabled"
    """The email telling a webhook's owner that the notifier turned the webhook off."""
    DEPARTMENT_DIGEST = "department_digest"
    """A department's daily overdue and oldest-open digest (one a day, from the map API)."""


class Channel(StrEnum):
    """Which send loop an outbox row belongs to: SMTP's pauses and pacing never hold webhooks."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class EmailStatus(StrEnum):
    """An email's place in the outbox: pending -> claimed -> sending -> sent | dead.

    Stored as its value, so the ledger's rows read the same as before there was an enum.
    """

    PENDING = "pending"
    """Waiting in the queue (new, given back, or due for a retry at next_attempt_at)."""
    CLAIMED = "claimed"
    """Taken by one instance's sender; it never reached SMTP yet."""
    SENDING = "sending"
    """Handed to SMTP (the crash window until it is recorded as sent)."""
    SENT = "sent"
    """SMTP accepted it: never sent again."""
    DEAD = "dead"
    """Given up on (permanent failure, bounce, or too many attempts): dead-lettered."""


IN_FLIGHT = (EmailStatus.CLAIMED, EmailStatus.SENDING)
"""Held by an instance (its lease): given back by release, recover or a lease running out."""
UNFINISHED = (EmailStatus.PENDING, *IN_FLIGHT)
"""Not yet sent nor given up on: a recipient's later emails wait behind these."""


@dataclass(frozen=True)
class RecipientState:
    """What the ledger knows about a recipient when a command arrives."""

    instant_last_hour: int
    hard_bounces: int


@dataclass(frozen=True)
class Limits:
    """Policy knobs from settings."""

    instant_per_hour: int
    hard_bounce_threshold: int


@dataclass(frozen=True)
class Decision:
    """The route for one command, the email kind or digest period, and why.

    `notice`: something the email must tell its reader once (see CAP_REACHED).
    """

    route: Route
    reason: str
    kind: EmailKind | None = None
    period: Delivery | None = None
    notice: str | None = None


CAP_REACHED = "cap_reached"
"""The email that reaches the hourly cap says that further alerts will be grouped."""
CHOSEN_DIGEST = "chosen_digest"
"""The subscription asks for an hourly/daily/weekly summary."""
RATE_LIMITED = "rate_limited"
"""An instant alert folded into an hourly summary: the person reached the hourly cap."""
MERGED = "merged_into_one_email"
"""A match folded into the email of the same person's other match for the same event."""
EMAIL_ALERTS_OFF = "email_alerts_off"
"""The subscription's alerts go to its webhook only."""
WEBHOOK = "webhook"
WEBHOOK_DISABLED = "webhook_disabled"
"""Turned off (by the notifier after repeated failures or a 410, or in the subscription)."""


def dedup_key(command: NotificationCommand) -> tuple[str, str, str]:
    """(subscription, request, event): the same key means the same email, sent once."""
    if isinstance(command, ConfirmationRequested):
        return (command.subscription.subscription_id, "confirmation", command.event_id)
    if isinstance(command, DepartmentDigestRequested):
        # The event id is derived from (subscription, day): one email per day, whoever sent it.
        day = f"department_digest:{command.day.isoformat()}"
        return (command.subscription.subscription_id, day, command.event_id)
    return (
        command.subscription.subscription_id,
        command.request_event.request.service_request_id,
        command.request_event.event_id,
    )


def decide(
    command: NotificationCommand, state: RecipientState, limits: Limits, now: datetime
) -> Decision:
    """Route one command: double opt-in, bounces, digest choice and the per-recipient limit."""
    if state.hard_bounces >= limits.hard_bounce_threshold:
        return Decision(Route.SKIP, "address_disabled_after_hard_bounces")
    if isinstance(command, ConfirmationRequested):
        return _confirmation(command, now)
    if isinstance(command, DepartmentDigestRequested):
        return _department_digest(command)
    return _matched(command, state, limits)


def _department_digest(command: DepartmentDigestRequested) -> Decision:
    """Sent when it arrives (the map API sends it at the digest hour); never capped."""
    if command.subscription.status is not SubscriptionStatus.ACTIVE:
        return Decision(Route.SKIP, f"subscription_{command.subscription.status}")
    return Decision(Route.INSTANT, "department_digest", kind=EmailKind.DEPARTMENT_DIGEST)


def _confirmation(command: ConfirmationRequested, now: datetime) -> Decision:
    if command.subscription.status is not SubscriptionStatus.PENDING:
        return Decision(Route.SKIP, f"subscription_{command.subscription.status}")
    if parse_expiry(command.expires_at) <= now:
        return Decision(Route.SKIP, "confirmation_expired")
    return Decision(Route.INSTANT, "confirmation", kind=EmailKind.CONFIRMATION)


def parse_expiry(text: str) -> datetime:
    """A confirmation's ISO-8601 expiry as an aware UTC time (naive means UTC, per contract)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _matched(command: SubscriberMatched, state: RecipientState, limits: Limits) -> Decision:
    subscription = command.subscription
    # Double opt-in: a pending (or ended) subscription gets nothing but its confirmation.
    if subscription.status is not SubscriptionStatus.ACTIVE:
        return Decision(Route.SKIP, f"subscription_{subscription.status}")
    if command.request_event.backfill:
        return Decision(Route.SKIP, "backfill")
    if not subscription.email_alerts:
        return Decision(Route.SKIP, EMAIL_ALERTS_OFF)
    if subscription.delivery is not Delivery.INSTANT:
        return Decision(Route.DIGEST, CHOSEN_DIGEST, period=subscription.delivery)
    if state.instant_last_hour >= limits.instant_per_hour:
        return Decision(Route.DIGEST, RATE_LIMITED, period=Delivery.HOURLY)
    kind = EmailKind.FOLLOW if subscription.target.kind == "follow" else EmailKind.ALERT
    # The last instant email before the cap tells the person, once, what happens next.
    last = state.instant_last_hour + 1 >= limits.instant_per_hour
    return Decision(Route.INSTANT, "instant", kind=kind, notice=CAP_REACHED if last else None)


def decide_webhook(command: NotificationCommand, turned_off: bool) -> Decision | None:
    """Route one command to its subscription's webhook, or None when it has none.

    A webhook gets every matched event as it happens: no digest, no hourly cap, no merging
    with the person's other subscriptions (each has its own endpoint). Confirmations are
    email only. `turned_off`: the notifier disabled this URL and secret (its own record, in
    force before the map API's updated subscription comes back round).
    """
    if not isinstance(command, SubscriberMatched):
        return None
    subscription = command.subscription
    if subscription.webhook is None:
        return None
    if subscription.status is not SubscriptionStatus.ACTIVE:
        return Decision(Route.SKIP, f"subscription_{subscription.status}")
    if command.request_event.backfill:
        return Decision(Route.SKIP, "backfill")
    if turned_off or not subscription.webhook.enabled:
        return Decision(Route.SKIP, WEBHOOK_DISABLED)
    return Decision(Route.INSTANT, WEBHOOK, kind=EmailKind.WEBHOOK)


def backoff_s(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Exponential back-off with 'equal jitter': half fixed, half random (`jitter` in [0, 1])."""
    # The exponent stops at 63: a session lost mid-message is retried for as long as it
    # takes, and past ~1024 attempts 2.0 ** attempt would overflow (and crash the lane).
    ceiling = min(max_s, base_s * 2.0 ** min(max(0, attempt), 63))
    return ceiling / 2 + ceiling / 2 * jitter
