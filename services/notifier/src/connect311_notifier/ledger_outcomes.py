"""Recording what happened to an email at SMTP: sending, sent, retry later, or dead (bounce)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connect311_notifier.ledger_arrays import BinaryArray
from connect311_notifier.ledger_schema import LedgerDatabase, bounces, emails
from connect311_notifier.policy import EmailStatus

__all__ = ["ERROR_CHARS", "Outcomes"]

ERROR_CHARS = 2000
"""How much of an SMTP error the ledger keeps (enough for the server's whole reply)."""

# Hot statements built once: SQLAlchemy then reuses their cache keys and compiled forms.
_MARK_SENDING = (
    emails.update()
    .where(emails.c.id == sa.bindparam("b_id"))
    .values(status=EmailStatus.SENDING.value, claimed_at=sa.bindparam("b_at"))
)
_MARK_SENT = (
    emails.update()
    .where(emails.c.id == sa.bindparam("b_id"))
    .values(
        status=EmailStatus.SENT.value, sent_at=sa.bindparam("b_at"), attempts=emails.c.attempts + 1
    )
)

# PostgreSQL: any number of sent emails and of next ones 'sending' in one statement of one
# text (see ledger_arrays), one round trip: the sender commits this once per email at the
# service's default (NOTIFIER_SMTP_RECORD_EVERY=1), where each round trip counted.
_MARK_SENT_AND_SENDING = sa.text(
    "WITH sent AS (UPDATE notifier_emails SET status = :sent, sent_at = batch.at,"
    " attempts = notifier_emails.attempts + 1"
    " FROM unnest(CAST(:ids AS INTEGER[]), CAST(:ats AS DOUBLE PRECISION[])) AS batch(id, at)"
    " WHERE notifier_emails.id = batch.id RETURNING 1)"
    " UPDATE notifier_emails SET status = :sending, claimed_at = :now"
    " WHERE id = ANY(CAST(:next AS INTEGER[]))"
)


def _count_attempt(
    conn: Connection, email_id: int, status: EmailStatus, error: str, **more: Any
) -> None:
    """A failed attempt: counted, its error kept, the email now in `status`."""
    conn.execute(
        emails.update()
        .where(emails.c.id == email_id)
        .values(
            status=status.value,
            attempts=emails.c.attempts + 1,
            last_error=error[:ERROR_CHARS],
            **more,
        )
    )


class Outcomes:
    """Each step of one delivery, committed as it happens (the sender decides which)."""

    def __init__(self, db: LedgerDatabase) -> None:
        self.db = db

    def mark_sending(self, email_id: int, now: float) -> None:
        """Committed just before SMTP: from here until mark_sent is the crash window."""
        with self.db.transaction() as conn:
            conn.execute(_MARK_SENDING, {"b_id": email_id, "b_at": now})

    def mark_sent(self, email_id: int, now: float, then_sending: int | None = None) -> None:
        """SMTP accepted it: never send it again; in the same commit, `then_sending` is next.

        One commit per email instead of two: the next email becomes 'sending' together with
        this one becoming 'sent', so the crash window (accepted, not yet recorded) is the
        same single commit as before.
        """
        with self.db.transaction() as conn:
            conn.execute(_MARK_SENT, {"b_id": email_id, "b_at": now})
            if then_sending is not None:
                conn.execute(_MARK_SENDING, {"b_id": then_sending, "b_at": now})

    def mark_sent_many(
        self, sent: list[tuple[int, float]], then_sending: list[int], now: float
    ) -> None:
        """Record a lane's accepted emails (id, when) as sent and mark its next ones
        'sending', in one commit: one commit per chunk instead of one per email.

        The crash window is then the chunk: emails marked 'sending' here and accepted by SMTP
        before the next such commit are sent again after a kill -9, with their Message-ID.
        """
        if not sent and not then_sending:
            return
        with self.db.transaction() as conn:
            if conn.dialect.name == "postgresql":
                values = {
                    "sent": EmailStatus.SENT.value,
                    "ids": BinaryArray(i for i, _ in sent),
                    "ats": BinaryArray(float(at) for _, at in sent),
                    "sending": EmailStatus.SENDING.value,
                    "now": now,
                    "next": BinaryArray(then_sending),
                }
                conn.execute(_MARK_SENT_AND_SENDING, values)
                return
            if sent:
                conn.execute(_MARK_SENT, [{"b_id": i, "b_at": at} for i, at in sent])
            if then_sending:
                conn.execute(
                    emails.update()
                    .where(emails.c.id.in_(then_sending))
                    .values(status=EmailStatus.SENDING.value, claimed_at=now)
                )

    def mark_retry(self, email_id: int, error: str, next_at: float) -> None:
        """A temporary failure: try again at `next_at`, others go on meanwhile."""
        with self.db.transaction() as conn:
            _count_attempt(
                conn,
                email_id,
                EmailStatus.PENDING,
                error,
                next_attempt_at=next_at,
                claimed_by=None,
                claimed_at=None,
            )

    def hard_bounces(self, subscription_id: str) -> int:
        """How many hard bounces this subscription's address has had."""
        with self.db.engine.connect() as conn:
            count = conn.execute(
                sa.select(bounces.c.hard_count).where(bounces.c.subscription_id == subscription_id)
            ).scalar()
        return int(count or 0)

    def mark_dead(
        self, email_id: int, error: str, subscription_id: str, bounce: bool, now: float
    ) -> None:
        """A permanent failure: never retried; a hard bounce is counted for the subscription."""
        reason = error[:ERROR_CHARS]
        with self.db.transaction() as conn:
            _count_attempt(conn, email_id, EmailStatus.DEAD, reason)
            if not bounce:
                return
            updated = conn.execute(
                bounces.update()
                .where(bounces.c.subscription_id == subscription_id)
                .values(hard_count=bounces.c.hard_count + 1, last_reason=reason, updated_at=now)
            )
            if updated.rowcount == 0:
                conn.execute(
                    bounces.insert().values(
                        subscription_id=subscription_id,
                        hard_count=1,
                        last_reason=reason,
                        updated_at=now,
                    )
                )
