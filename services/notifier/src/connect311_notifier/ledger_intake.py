"""Recording incoming commands: each once, routed, and digest items buffered until due.

A command naming several subscriptions of one person (`SubscriberMatched.also`) is recorded
as one row per subscription, each de-duplicated on its own, and its instant ones share one
email: one email per event per person, listing every reason.

A subscription with a webhook also gets one webhook row per command, queued in the same
transaction (so the command's de-duplication covers it too), keyed by the subscription
rather than the address: no merging, no hourly cap, its own order and retries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connect311_contracts.notifications import NOTIFICATION_ADAPTER, NotificationCommand
from connect311_notifier.ledger_batch import BatchRecorder, Planner, hook_recipient_key
from connect311_notifier.ledger_schema import LedgerDatabase, commands, emails
from connect311_notifier.policy import Decision, EmailKind, EmailStatus, Route

__all__ = ["Incoming", "Intake", "Planner", "Recorded", "hook_recipient_key"]

_INSERT_EMAIL = emails.insert()


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


def _recorded(decisions: list[Decision], hooks: list[Decision]) -> Recorded:
    if not decisions:
        return Recorded(duplicate=True, decision=None)
    return Recorded(
        duplicate=False, decision=decisions[0], more=tuple(decisions[1:]), hooks=tuple(hooks)
    )


class Intake:
    """Commands into the ledger (once each), and due digest items into their emails."""

    def __init__(self, db: LedgerDatabase, instant_cap: int | None = None) -> None:
        self.db = db
        # The policy only asks "at least instant_per_hour?": counts are capped there.
        self.instant_cap = instant_cap

    def record(self, batch: list[Incoming], plan: Planner, now: float) -> list[Recorded]:
        """Record a batch of commands in one transaction; duplicates are no-ops.

        A few set-based statements per batch (see ledger_batch), each command planned in
        batch order as if recorded one by one.
        """
        with self.db.transaction() as conn:
            outcomes = BatchRecorder(conn, plan, now, self.instant_cap).record(batch)
        return [_recorded(decisions, hooks) for decisions, hooks in outcomes]

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
