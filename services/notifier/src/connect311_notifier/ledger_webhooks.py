"""Each subscription's webhook state, and every webhook delivery step with it, in one commit.

A webhook row goes through the outbox states as an email does (see EmailStatus); what is
added is per subscription: whether its URL (and secret version) was verified (passed the
handshake, or, for Slack and Teams, took its first alert: the map API is told of it), how
many attempts in a row failed, and whether the notifier turned it off. A
step and the state it changes are committed together, so a crash never leaves a delivery
recorded without its failure count, nor a webhook turned off without its owner's email.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connect311_contracts.notifications import recipient_key
from connect311_notifier.ledger_outcomes import ERROR_CHARS
from connect311_notifier.ledger_queue import ClaimedEmail
from connect311_notifier.ledger_schema import LedgerDatabase, emails, webhooks
from connect311_notifier.policy import EmailKind, EmailStatus

__all__ = ["HookState", "Webhooks"]

w = webhooks.c


@dataclass(frozen=True)
class HookState:
    """What the notifier knows about one subscription's current URL and secret version."""

    verified: bool = False
    failures: int = 0
    disabled: bool = False


def _row(email_id: int, status: EmailStatus, error: str | None, **more: Any) -> sa.Update:
    """One attempt counted on the outbox row, which is now in `status`."""
    values: dict[str, Any] = {"status": status.value, "attempts": emails.c.attempts + 1, **more}
    if error is not None:
        values["last_error"] = error[:ERROR_CHARS]
    return emails.update().where(emails.c.id == email_id).values(**values)


def _put(conn: Connection, subscription_id: str, key: str, now: float, **values: Any) -> None:
    """Update the subscription's state for this URL; a new URL (or none yet) starts afresh."""
    if values.get("last_error"):
        values["last_error"] = values["last_error"][:ERROR_CHARS]
    updated = conn.execute(
        webhooks.update()
        .where(w.subscription_id == subscription_id, w.url_key == key)
        .values(updated_at=now, **values)
    )
    if updated.rowcount:
        return
    fresh = {"verified_at": None, "failures": 0, "disabled_at": None, "last_error": None}
    conn.execute(webhooks.delete().where(w.subscription_id == subscription_id))
    conn.execute(
        webhooks.insert().values(
            subscription_id=subscription_id, url_key=key, updated_at=now, **(fresh | values)
        )
    )


class Webhooks:
    """The webhook loop's reads and writes (the outbox queue itself is ledger_queue's)."""

    def __init__(self, db: LedgerDatabase) -> None:
        self.db = db

    def state(self, subscription_id: str, key: str) -> HookState:
        """The state of this subscription's webhook at this URL key (fresh if another)."""
        return self.states([(subscription_id, key)])[(subscription_id, key)]

    def states(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], HookState]:
        """Several (subscription, URL key) states in one query (a claimed batch's)."""
        ids = sorted({sub for sub, _ in wanted})
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    w.subscription_id, w.url_key, w.verified_at, w.failures, w.disabled_at
                ).where(w.subscription_id.in_(ids))
            ).all()
        found = {
            (r.subscription_id, r.url_key): HookState(
                r.verified_at is not None, int(r.failures), r.disabled_at is not None
            )
            for r in rows
        }
        return {pair: found.get(pair, HookState()) for pair in wanted}

    def verified(self, subscription_id: str, key: str, now: float) -> None:
        """The receiver answered the handshake (deliveries may start), or a chat app's
        webhook took its first alert; the map API was told first (WebhookVerified)."""
        with self.db.transaction() as conn:
            _put(conn, subscription_id, key, now, verified_at=now)

    def sent(self, email: ClaimedEmail, key: str, now: float) -> None:
        """Delivered (2xx): never sent again, and the failures in a row start over."""
        with self.db.transaction() as conn:
            conn.execute(_row(email.id, EmailStatus.SENT, None, sent_at=now))
            conn.execute(
                webhooks.update()
                .where(w.subscription_id == email.subscription_id, w.failures > 0)
                .values(failures=0, updated_at=now)
            )

    def failed(
        self,
        email: ClaimedEmail,
        key: str,
        error: str,
        failures: int,
        now: float,
        retry_at: float | None,
    ) -> None:
        """A failed attempt: retried at `retry_at`, or dead (None); `failures` in a row now."""
        if retry_at is None:
            step = _row(email.id, EmailStatus.DEAD, error)
        else:
            step = _row(
                email.id,
                EmailStatus.PENDING,
                error,
                next_attempt_at=retry_at,
                claimed_by=None,
                claimed_at=None,
            )
        with self.db.transaction() as conn:
            conn.execute(step)
            _put(conn, email.subscription_id, key, now, failures=failures, last_error=error)

    def dead(self, email: ClaimedEmail, error: str) -> None:
        """Given up on without it counting against the webhook (already turned off)."""
        with self.db.transaction() as conn:
            conn.execute(_row(email.id, EmailStatus.DEAD, error))

    def turn_off(
        self, email: ClaimedEmail, key: str, error: str, failures: int, why: str, now: float
    ) -> None:
        """This attempt was the last straw (`why`: 'gone' or 'failing'): the row is dead, the
        webhook off, and its owner's email queued, all in one commit (so exactly once)."""
        (command,) = email.commands
        owner = command.subscription.email
        with self.db.transaction() as conn:
            conn.execute(_row(email.id, EmailStatus.DEAD, error))
            off = {"failures": failures, "last_error": error, "disabled_at": now}
            _put(conn, email.subscription_id, key, now, **off)
            conn.execute(
                emails.insert().values(
                    kind=EmailKind.WEBHOOK_DISABLED.value,
                    notice=why,
                    subscription_id=email.subscription_id,
                    recipient_key=recipient_key(owner),
                    to_addr=owner,
                    status=EmailStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    message_id=uuid.uuid4().hex,
                    created_at=now,
                    source_ts=now,
                    command_id=email.command_id,
                )
            )
