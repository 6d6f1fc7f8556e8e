"""The ledger's tables, and the one handle every part of the ledger writes through.

`notifier_commands` holds every command seen, keyed by (subscription, request, event), so a
redelivered or replayed one is a no-op; `notifier_emails` is the outbox the senders drain
(see EmailStatus): emails, and webhooks (kind 'webhook', its own send loop, see Channel);
`notifier_bounces` counts hard bounces per subscription; `notifier_webhooks` holds each
subscription's webhook state (verified, consecutive failures, turned off).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from connect311_notifier.policy import EmailKind

__all__ = [
    "CLAIM_LOCK",
    "INSTANT_KINDS",
    "SCHEMA_LOCK",
    "LedgerDatabase",
    "bounces",
    "commands",
    "emails",
    "metadata",
    "webhooks",
]

metadata = sa.MetaData()

emails = sa.Table(
    "notifier_emails",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("subscription_id", sa.String(100), nullable=False),
    sa.Column("recipient_key", sa.String(64), nullable=False),
    sa.Column("to_addr", sa.String(320), nullable=False),
    sa.Column("period", sa.String(20)),
    sa.Column("status", sa.String(20), nullable=False),  # an EmailStatus value
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("message_id", sa.String(200), nullable=False, unique=True),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("source_ts", sa.Double, nullable=False),
    sa.Column("sent_at", sa.Double),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_at", sa.Double),
    # Added later (see LedgerDatabase.create_schema): what the email must also tell, e.g. the cap.
    sa.Column("notice", sa.String(40)),
    # Added later: the command a webhook (or a webhook's turned-off email) is about. An email
    # finds its commands through commands.email_id instead (a digest carries many).
    sa.Column("command_id", sa.Integer),
    sa.Index("ix_notifier_emails_due", "status", "next_attempt_at"),
    sa.Index("ix_notifier_emails_recipient", "recipient_key", "created_at"),
    # The queue in order, and each recipient's unfinished emails (see ledger_queue).
    sa.Index("ix_notifier_emails_queue", "status", "id"),
    sa.Index("ix_notifier_emails_recipient_queue", "recipient_key", "status", "id"),
    # A recipient's emails waiting for a retry: one probe per claim candidate (ledger_queue).
    sa.Index("ix_notifier_emails_recipient_due", "recipient_key", "status", "next_attempt_at"),
    # The webhook loop's queue in order (the email loop walks ix_notifier_emails_queue).
    sa.Index("ix_notifier_emails_kind_queue", "kind", "status", "id"),
)

commands = sa.Table(
    "notifier_commands",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.String(100), nullable=False),
    sa.Column("service_request_id", sa.String(300), nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("recipient_key", sa.String(64), nullable=False),
    sa.Column("route", sa.String(20), nullable=False),  # a Route value
    sa.Column("reason", sa.String(100), nullable=False),
    sa.Column("period", sa.String(20)),
    sa.Column("due_at", sa.Double),
    # NULL on a digest item: still in the digest buffer; set once folded into its email.
    sa.Column("email_id", sa.Integer, sa.ForeignKey("notifier_emails.id")),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.Double, nullable=False),
    sa.Column("source_ts", sa.Double, nullable=False),
    sa.UniqueConstraint("subscription_id", "service_request_id", "event_id", name="uq_command"),
    sa.Index("ix_notifier_commands_digest", "route", "email_id", "due_at"),
    sa.Index("ix_notifier_commands_email", "email_id"),
)

bounces = sa.Table(
    "notifier_bounces",
    metadata,
    sa.Column("subscription_id", sa.String(100), primary_key=True),
    sa.Column("hard_count", sa.Integer, nullable=False),
    sa.Column("last_reason", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

webhooks = sa.Table(
    "notifier_webhooks",
    metadata,
    sa.Column("subscription_id", sa.String(100), primary_key=True),
    # Which URL and secret version the rest is about (webhooks.url_key): a new one starts afresh.
    sa.Column("url_key", sa.String(64), nullable=False),
    sa.Column("verified_at", sa.Double),
    # Failed attempts in a row (reset by a delivery): at the threshold it is turned off.
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("disabled_at", sa.Double),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.Double, nullable=False),
)

INSTANT_KINDS = (EmailKind.ALERT.value, EmailKind.FOLLOW.value)
CLAIM_LOCK = 0x0C311E
"""PostgreSQL advisory lock key: one claim at a time across instances (see ledger_queue)."""
SCHEMA_LOCK = 0x0C311D


class LedgerDatabase:
    """The engine, and the one way to write: a short transaction, serialized on SQLite."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer; its busy handler sleeps in coarse steps when two threads
        # collide, so writers here queue on a lock instead (PostgreSQL locks rows itself).
        # Shared by every part of the ledger, since they all write the same file.
        self._write_lock = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (committed on exit, rolled back on an exception)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def create_schema(self) -> None:
        """Create the tables if they do not exist, and indexes added since they were made."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Instances starting together would otherwise race to create the same tables.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
            metadata.create_all(conn)
            columns = {c["name"] for c in sa.inspect(conn).get_columns(emails.name)}
            if "notice" not in columns:  # a ledger made before the column existed
                conn.execute(sa.text(f"ALTER TABLE {emails.name} ADD COLUMN notice VARCHAR(40)"))
            if "command_id" not in columns:
                conn.execute(sa.text(f"ALTER TABLE {emails.name} ADD COLUMN command_id INTEGER"))
            for index in emails.indexes:
                index.create(conn, checkfirst=True)
