"""Read-only figures about the ledger, for operators, health checks and tests."""

from __future__ import annotations

import sqlalchemy as sa

from connect311_notifier.ledger_schema import LedgerDatabase, commands, emails
from connect311_notifier.policy import Channel, EmailKind, EmailStatus, Route

__all__ = ["LedgerStatus"]


class LedgerStatus:
    """How many outbox rows are in each state, and how many digest items wait for their digest."""

    def __init__(self, db: LedgerDatabase) -> None:
        self.db = db

    def status_counts(self, channel: Channel | None = None) -> dict[EmailStatus, int]:
        """Outbox rows per delivery status (only the states that have rows).

        The outbox holds webhooks too (kind 'webhook'): `channel` counts only emails or only
        webhooks, so an operator never reads a webhook as an email; None counts every row.
        """
        query = sa.select(emails.c.status, sa.func.count()).group_by(emails.c.status)
        if channel is Channel.WEBHOOK:
            query = query.where(emails.c.kind == EmailKind.WEBHOOK.value)
        elif channel is Channel.EMAIL:
            query = query.where(emails.c.kind != EmailKind.WEBHOOK.value)
        with self.db.engine.connect() as conn:
            rows = conn.execute(query).all()
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
