"""Recording incoming commands: each once, routed, and digest items buffered until due.

A command naming several subscriptions of one person (`SubscriberMatched.also`) is recorded
as one row per subscription, each de-duplicated on its own, and its instant ones share one
email: one email per event per person, listing every reason.

A subscription with a webhook also gets one webhook row per command, queued in the same
transaction (so the command's de-duplication covers it too), keyed by the subscription
rather than the address: no merging, no hourly cap, its own order and retries.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connect311_contracts.notifications import (
    NOTIFICATION_ADAPTER,
    NotificationCommand,
    SubscriberMatched,
    recipient_key,
)
from connect311_contracts.webhooks import url_key
from connect311_notifier.ledger_schema import (
    INSTANT_KINDS,
    LedgerDatabase,
    bounces,
    commands,
    emails,
    webhooks,
)
from connect311_notifier.policy import (
    MERGED,
    Decision,
    EmailKind,
    EmailStatus,
    RecipientState,
    Route,
    decide_webhook,
    dedup_key,
)
from connect311_notifier.webhook_payload import webhook_id

__all__ = ["Incoming", "Intake", "Planner", "Recorded", "hook_recipient_key"]

# Hot statements built once: SQLAlchemy then reuses their cache keys and compiled forms.
_SEEN = sa.select(commands.c.id).where(
    commands.c.subscription_id == sa.bindparam("b_sub"),
    commands.c.service_request_id == sa.bindparam("b_request"),
    commands.c.event_id == sa.bindparam("b_event"),
)
_HARD_BOUNCES = sa.select(bounces.c.hard_count).where(
    bounces.c.subscription_id == sa.bindparam("b_sub")
)
_HOOK_TURNED_OFF = sa.select(webhooks.c.subscription_id).where(
    webhooks.c.subscription_id == sa.bindparam("b_sub"),
    webhooks.c.url_key == sa.bindparam("b_key"),
    webhooks.c.disabled_at.is_not(None),
)
_INSERT_EMAIL = emails.insert()
_INSERT_COMMAND = commands.insert()


def hook_recipient_key(subscription_id: str) -> str:
    """The queue key of a subscription's webhooks: each subscription's in order, its retries
    holding back only its own later webhooks (never anyone's emails)."""
    return hashlib.sha256(f"webhook\x1f{subscription_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Incoming:
    """A decoded command with its Kafka key and record time (for the latency histogram)."""

    command: NotificationCommand
    recipient_key: str
    source_ts: float


@dataclass(frozen=True)
class Recorded:
    """What the ledger did with one command: its decision, or that it was a duplicate.

    A command for several subscriptions: `decision` is its first new part's, `more` the
    other new parts' (each counted by the consumer). `hooks`: what each new part's webhook
    got (none for subscriptions without one).
    """

    duplicate: bool
    decision: Decision | None
    more: tuple[Decision, ...] = ()
    hooks: tuple[Decision, ...] = ()


@dataclass
class _BatchState:
    """What one recorded batch tracks per recipient (its transaction is the only writer)."""

    instant: dict[str, int] = field(default_factory=dict)
    """Instant emails per recipient in the last hour, counted once and then kept up to date."""
    before_event: dict[tuple[str, str], int] = field(default_factory=dict)
    """(recipient, event) -> that count before the event's email."""
    email_for_event: dict[tuple[str, str], int] = field(default_factory=dict)
    """(recipient, event) -> the instant email its matches share."""


Planner = Callable[[NotificationCommand, RecipientState], tuple[Decision, float | None]]
"""Decides a command's route (and a digest item's due time) from the recipient's state."""


class Intake:
    """Commands into the ledger (once each), and due digest items into their emails."""

    def __init__(self, db: LedgerDatabase, instant_cap: int | None = None) -> None:
        self.db = db
        # The policy only asks "at least instant_per_hour?", so counting stops there: a
        # recipient with thousands of emails this hour costs no more than one with a few.
        self.instant_cap = instant_cap

    def record(self, batch: list[Incoming], plan: Planner, now: float) -> list[Recorded]:
        """Record a batch of commands in one transaction; duplicates are no-ops."""
        batch_state = _BatchState()
        with self.db.transaction() as conn:
            return [self._record_item(conn, item, plan, now, batch_state) for item in batch]

    def _record_item(
        self, conn: Connection, item: Incoming, plan: Planner, now: float, state: _BatchState
    ) -> Recorded:
        """One command; a command for several subscriptions is recorded part by part."""
        if not isinstance(item.command, SubscriberMatched) or not item.command.also:
            return self._record_one(conn, item, plan, now, state)
        decisions: list[Decision] = []
        hooks: list[Decision] = []
        for part in item.command.parts():
            key = recipient_key(part.subscription.email)
            one = self._record_one(conn, Incoming(part, key, item.source_ts), plan, now, state)
            if one.decision is not None:
                decisions.append(one.decision)
            hooks += one.hooks
        if not decisions:
            return Recorded(duplicate=True, decision=None)
        return Recorded(
            duplicate=False,
            decision=decisions[0],
            more=tuple(decisions[1:]),
            hooks=tuple(hooks),
        )

    def _record_one(
        self, conn: Connection, item: Incoming, plan: Planner, now: float, batch: _BatchState
    ) -> Recorded:
        sub_id, request_id, event_id = dedup_key(item.command)
        seen = conn.execute(
            _SEEN, {"b_sub": sub_id, "b_request": request_id, "b_event": event_id}
        ).first()
        if seen is not None:
            return Recorded(duplicate=True, decision=None)
        key = item.recipient_key
        if key not in batch.instant:
            batch.instant[key] = self._instant_last_hour(conn, key, now)
        # Every match of one person for one event sees the count from before that event's
        # email, so the cap never splits one event's reasons between an email and a digest.
        together = (key, event_id)
        count = batch.before_event.setdefault(together, batch.instant[key])
        hard = conn.execute(_HARD_BOUNCES, {"b_sub": sub_id}).scalar()
        state = RecipientState(instant_last_hour=count, hard_bounces=int(hard or 0))
        decision, due_at = plan(item.command, state)
        email_id = None
        instant = decision.route is Route.INSTANT and decision.kind is not None
        if instant and decision.kind is not None and decision.kind.value in INSTANT_KINDS:
            email_id = batch.email_for_event.get(together)
            if email_id is not None:  # the same person's email for this event: one more reason
                decision = Decision(Route.INSTANT, MERGED, kind=decision.kind)
            else:
                email_id = self._new_email(conn, decision, item, now)
                batch.email_for_event[together] = email_id
                batch.instant[key] += 1
        elif instant and decision.kind is not None:
            email_id = self._new_email(conn, decision, item, now)
        inserted = conn.execute(
            _INSERT_COMMAND,
            {
                "subscription_id": sub_id,
                "service_request_id": request_id,
                "event_id": event_id,
                "recipient_key": item.recipient_key,
                "route": decision.route.value,
                "reason": decision.reason[:100],
                "period": decision.period.value if decision.period else None,
                "due_at": due_at,
                "email_id": email_id,
                "payload": item.command.model_dump_json(),
                "received_at": now,
                "source_ts": item.source_ts,
            },
        )
        command_id = inserted.inserted_primary_key
        assert command_id is not None
        hook = self._record_hook(conn, item, int(command_id[0]), now)
        return Recorded(duplicate=False, decision=decision, hooks=(hook,) if hook else ())

    def _record_hook(
        self, conn: Connection, item: Incoming, command_id: int, now: float
    ) -> Decision | None:
        """The command's webhook, queued unless turned off; None without a webhook."""
        command = item.command
        channel = command.subscription.webhook
        if channel is None:
            return None
        sub_id = command.subscription.subscription_id
        off = conn.execute(_HOOK_TURNED_OFF, {"b_sub": sub_id, "b_key": url_key(channel)})
        decision = decide_webhook(command, turned_off=off.first() is not None)
        if decision is None or decision.route is not Route.INSTANT:
            return decision
        assert isinstance(command, SubscriberMatched)  # decide_webhook routes only these
        conn.execute(
            _INSERT_EMAIL,
            {
                "kind": EmailKind.WEBHOOK.value,
                "subscription_id": sub_id,
                "recipient_key": hook_recipient_key(sub_id),
                # The host only: a chat app's webhook URL is itself a secret (the full URL
                # is read from the command when sending).
                "to_addr": (urlsplit(channel.url).hostname or "")[:320],
                "status": EmailStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "message_id": webhook_id(command),
                "created_at": now,
                "source_ts": item.source_ts,
                "command_id": command_id,
            },
        )
        return decision

    def _instant_last_hour(self, conn: Connection, recipient_key: str, now: float) -> int:
        recent = sa.select(emails.c.id).where(
            emails.c.recipient_key == recipient_key,
            emails.c.kind.in_(INSTANT_KINDS),
            emails.c.created_at > now - 3600,
        )
        if self.instant_cap is not None:
            recent = recent.limit(self.instant_cap)
        count = conn.execute(sa.select(sa.func.count()).select_from(recent.subquery()))
        return int(count.scalar_one())

    def _new_email(self, conn: Connection, decision: Decision, item: Incoming, now: float) -> int:
        assert decision.kind is not None
        return _insert_email(
            conn, decision.kind, item, item.command.subscription.email, None, now, decision.notice
        )

    def flush_digests(self, now: float) -> int:
        """Turn due digest items into one pending email per (subscription, period)."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                sa.select(
                    commands.c.id,
                    commands.c.subscription_id,
                    commands.c.period,
                    commands.c.recipient_key,
                    commands.c.payload,
                    commands.c.source_ts,
                )
                .where(
                    commands.c.route == Route.DIGEST.value,
                    commands.c.email_id.is_(None),
                    commands.c.due_at <= now,
                )
                .order_by(commands.c.id)
                .with_for_update(skip_locked=True)
            ).all()
            groups: dict[tuple[str, str], list[Any]] = {}
            for row in rows:
                groups.setdefault((row.subscription_id, row.period), []).append(row)
            for (_sub, period), members in groups.items():
                latest = NOTIFICATION_ADAPTER.validate_json(members[-1].payload)
                item = Incoming(latest, members[0].recipient_key, min(m.source_ts for m in members))
                email_id = _insert_email(
                    conn, EmailKind.DIGEST, item, latest.subscription.email, period, now
                )
                conn.execute(
                    commands.update()
                    .where(commands.c.id.in_([m.id for m in members]))
                    .values(email_id=email_id)
                )
            return len(groups)


def _insert_email(
    conn: Connection,
    kind: EmailKind,
    item: Incoming,
    to_addr: str,
    period: str | None,
    now: float,
    notice: str | None = None,
) -> int:
    """A new email at the end of the queue, due now, with its Message-ID fixed for good."""
    result = conn.execute(
        _INSERT_EMAIL,
        {
            "kind": kind.value,
            "notice": notice,
            "subscription_id": item.command.subscription.subscription_id,
            "recipient_key": item.recipient_key,
            "to_addr": to_addr,
            "period": period,
            "status": EmailStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "message_id": uuid.uuid4().hex,
            "created_at": now,
            "source_ts": item.source_ts,
        },
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
