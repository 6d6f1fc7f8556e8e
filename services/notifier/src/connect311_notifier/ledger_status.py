"""Read-only figures about the ledger, for operators, health checks and tests."""

from __future__ import annotations

import sqlalchemy as sa

from connect311_notifier.ledger_schema import LedgerDatabase, commands, emails
from connect311_notifier.policy import EmailStatus, Route

__all__ = ["LedgerStatus"]


class LedgerStatus:
    """How many emails are in each state, and how many digest items wait for their digest."""

    def __init__(self, db: LedgerDatabase) -> None:
        self.db = db

    def status_counts(self) -> dict[EmailStatus, int]:
        """Emails per delivery status (only the states that have emails)."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(emails.c.status, sa.func.count()).group_by(emails.c.status)
            ).all()
        return {EmailStatus(status): int(count) for status, count in rows}

    def digest_queue_size(self) -> int:
        """Digest items waiting for their digest (in the buffer: no email yet)."""
        with self.db.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        commands.c.route == Route.DIGEST.value, commands.c.email_id.is_(None)
                    )
                ).scalar_one()
            )
