"""The durable ledger (SQLAlchemy 2 Core): every command once, every email's delivery state.

One table of commands keyed by (subscription_id, service_request_id, event_id) makes a
redelivered or replayed command a no-op; one table of emails is the outbox the sender drains
(pending -> claimed -> sending -> sent | dead); digest items wait in the commands table until due.

A command naming several subscriptions of one person (`SubscriberMatched.also`) is recorded
as one row per subscription, each de-duplicated on its own, and its instant ones share one
email: one email per event per person, listing every reason.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from connect311_contracts.notifications import (
    NOTIFICATION_ADAPTER,
    NotificationCommand,
    SubscriberMatched,
    recipient_key,
)
from connect311_notifier.policy import (
    MERGED,
    Decision,
    EmailKind,
    RecipientState,
    Route,
    dedup_key,
)

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
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("message_id", sa.String(200), nullable=False, unique=True),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("source_ts", sa.Double, nullable=False),
    sa.Column("sent_at", sa.Double),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_at", sa.Double),
    # Added later (see Ledger.create_schema): what the email must also tell, e.g. the cap.
    sa.Column("notice", sa.String(40)),
    sa.Index("ix_notifier_emails_due", "status", "next_attempt_at"),
    sa.Index("ix_notifier_emails_recipient", "recipient_key", "created_at"),
    # The queue in order, and each recipient's unfinished emails (see _claimable).
    sa.Index("ix_notifier_emails_queue", "status", "id"),
    sa.Index("ix_notifier_emails_recipient_queue", "recipient_key", "status", "id"),
)

commands = sa.Table(
    "notifier_commands",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.String(100), nullable=False),
    sa.Column("service_request_id", sa.String(300), nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("recipient_key", sa.String(64), nullable=False),
    sa.Column("route", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(100), nullable=False),
    sa.Column("period", sa.String(20)),
    sa.Column("due_at", sa.Double),
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

INSTANT_KINDS = (EmailKind.ALERT.value, EmailKind.FOLLOW.value)
UNFINISHED = ("pending", "claimed", "sending")
CLAIM_LOCK = 0x0C311E
"""PostgreSQL advisory lock key: one claim at a time across instances (see Ledger.claim)."""
SCHEMA_LOCK = 0x0C311D

# Hot statements built once: SQLAlchemy then reuses their cache keys and compiled forms.
_SEEN = sa.select(commands.c.id).where(
    commands.c.subscription_id == sa.bindparam("b_sub"),
    commands.c.service_request_id == sa.bindparam("b_request"),
    commands.c.event_id == sa.bindparam("b_event"),
)
_HARD_BOUNCES = sa.select(bounces.c.hard_count).where(
    bounces.c.subscription_id == sa.bindparam("b_sub")
)
_INSERT_EMAIL = emails.insert()
_INSERT_COMMAND = commands.insert()
_MARK_SENDING = (
    emails.update()
    .where(emails.c.id == sa.bindparam("b_id"))
    .values(status="sending", claimed_at=sa.bindparam("b_at"))
)
_MARK_SENT = (
    emails.update()
    .where(emails.c.id == sa.bindparam("b_id"))
    .values(status="sent", sent_at=sa.bindparam("b_at"), attempts=emails.c.attempts + 1)
)


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
    other new parts' (each counted by the consumer).
    """

    duplicate: bool
    decision: Decision | None
    more: tuple[Decision, ...] = ()


@dataclass(frozen=True)
class ClaimedEmail:
    """An email the sender now owns: its row and the commands it carries."""

    id: int
    kind: EmailKind
    subscription_id: str
    recipient_key: str
    to_addr: str
    period: str | None
    attempts: int
    message_id: str
    source_ts: float
    commands: list[NotificationCommand]
    notice: str | None = None
    reasons: frozenset[str] = frozenset()
    """The routing reasons of its commands: a digest chosen, or alerts folded at the cap."""


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


_EARLIER = emails.alias("earlier")


def _earlier_email(*conditions: sa.ColumnElement[bool]) -> sa.Exists:
    """Whether an earlier email of the same recipient meets the conditions."""
    return sa.exists().where(
        _EARLIER.c.recipient_key == emails.c.recipient_key,
        _EARLIER.c.id < emails.c.id,
        *conditions,
    )


def _claimable(now: float, limit: int) -> sa.Select[int]:
    """Due emails whose recipient has nothing earlier in flight or waiting for a retry.

    In id order, so when one of a recipient's emails is taken, all its earlier due ones are
    too: a recipient's emails leave in the order the ledger queued them, and a retry holds
    back everything queued after it for that recipient (and nobody else).
    """
    held_back = _earlier_email(
        sa.or_(
            _EARLIER.c.status.in_(("claimed", "sending")),
            sa.and_(_EARLIER.c.status == "pending", _EARLIER.c.next_attempt_at > now),
        )
    )
    return (
        sa.select(emails.c.id)
        .where(emails.c.status == "pending", emails.c.next_attempt_at <= now, ~held_back)
        .order_by(emails.c.id)
        .limit(limit)
        .with_for_update(of=emails, skip_locked=True)
    )


def create_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, busy timeout) or PostgreSQL, from a SQLAlchemy URL."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL + NORMAL survives a killed process (not a power cut) and lets reads run
            # beside the one writer.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Ledger:
    """All durable state of the notifier, behind short transactional methods."""

    def __init__(self, engine: Engine, instant_cap: int | None = None) -> None:
        self.engine = engine
        # The policy only asks "at least instant_per_hour?", so counting stops there: a
        # recipient with thousands of emails this hour costs no more than one with a few.
        self.instant_cap = instant_cap
        # SQLite has one writer; its busy handler sleeps in coarse steps when two threads
        # collide, so writers here queue on a lock instead (PostgreSQL locks rows itself).
        self._write_lock = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
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
            for index in emails.indexes:
                index.create(conn, checkfirst=True)

    def record(self, batch: list[Incoming], plan: Planner, now: float) -> list[Recorded]:
        """Record a batch of commands in one transaction; duplicates are no-ops."""
        batch_state = _BatchState()
        with self._transaction() as conn:
            return [self._record_item(conn, item, plan, now, batch_state) for item in batch]

    def _record_item(
        self, conn: Connection, item: Incoming, plan: Planner, now: float, state: _BatchState
    ) -> Recorded:
        """One command; a command for several subscriptions is recorded part by part."""
        if not isinstance(item.command, SubscriberMatched) or not item.command.also:
            return self._record_one(conn, item, plan, now, state)
        decisions = []
        for part in item.command.parts():
            key = recipient_key(part.subscription.email)
            one = self._record_one(conn, Incoming(part, key, item.source_ts), plan, now, state)
            if one.decision is not None:
                decisions.append(one.decision)
        if not decisions:
            return Recorded(duplicate=True, decision=None)
        return Recorded(duplicate=False, decision=decisions[0], more=tuple(decisions[1:]))

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
        conn.execute(
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
        return Recorded(duplicate=False, decision=decision)

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
        return self._insert_email(
            conn, decision.kind, item, item.command.subscription.email, None, now, decision.notice
        )

    def _insert_email(
        self,
        conn: Connection,
        kind: EmailKind,
        item: Incoming,
        to_addr: str,
        period: str | None,
        now: float,
        notice: str | None = None,
    ) -> int:
        result = conn.execute(
            _INSERT_EMAIL,
            {
                "kind": kind.value,
                "notice": notice,
                "subscription_id": item.command.subscription.subscription_id,
                "recipient_key": item.recipient_key,
                "to_addr": to_addr,
                "period": period,
                "status": "pending",
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

    def flush_digests(self, now: float) -> int:
        """Turn due digest items into one pending email per (subscription, period)."""
        with self._transaction() as conn:
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
                email_id = self._insert_email(
                    conn, EmailKind.DIGEST, item, latest.subscription.email, period, now
                )
                conn.execute(
                    commands.update()
                    .where(commands.c.id.in_([m.id for m in members]))
                    .values(email_id=email_id)
                )
            return len(groups)

    def recover(self, instance: str | None, lease_s: float, now: float) -> tuple[int, int]:
        """Put back rows a crash left (ours, or anyone's past the lease): (claimed, sending).

        'claimed' rows never reached SMTP; 'sending' rows may have been accepted just before
        the crash (the remaining window): both are sent again, with their stored Message-ID.
        With no instance, only rows whose lease ran out (their instance stopped renewing).
        """
        orphaned = emails.c.claimed_at < now - lease_s
        if instance is not None:
            orphaned = sa.or_(emails.c.claimed_by == instance, orphaned)
        counts = []
        with self._transaction() as conn:
            for status in ("claimed", "sending"):
                result = conn.execute(
                    emails.update()
                    .where(emails.c.status == status, orphaned)
                    .values(status="pending", claimed_by=None, claimed_at=None)
                )
                counts.append(int(result.rowcount))
        return counts[0], counts[1]

    def renew(self, instance: str, now: float) -> int:
        """Renew this instance's lease on the rows it holds, so no other takes them over."""
        with self._transaction() as conn:
            result = conn.execute(
                emails.update()
                .where(emails.c.claimed_by == instance, emails.c.status.in_(("claimed", "sending")))
                .values(claimed_at=now)
            )
        return int(result.rowcount)

    def claim(self, instance: str, now: float, limit: int) -> list[ClaimedEmail]:
        """Take up to `limit` due emails for this instance ('claimed') and load them.

        Per recipient in queue order, never past an earlier email in flight or waiting for
        a retry (see _claimable). Instances sharing a PostgreSQL ledger claim one at a time:
        two concurrent claims could each see the other's rows still 'pending' and take a
        recipient's earlier and later emails apart.
        """
        ids = self._take(instance, now, limit)
        return self._load(ids) if ids else []

    def _take(self, instance: str, now: float, limit: int) -> list[int]:
        # Short on purpose: other instances wait for this lock (loading happens after).
        with self._transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK)))
            ids = list(conn.execute(_claimable(now, limit)).scalars())
            if ids:
                conn.execute(
                    emails.update()
                    .where(emails.c.id.in_(ids))
                    .values(status="claimed", claimed_by=instance, claimed_at=now)
                )
        return ids

    def _load(self, ids: list[int]) -> list[ClaimedEmail]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(emails).where(emails.c.id.in_(ids)).order_by(emails.c.id)
            ).all()
            payloads: dict[int, list[NotificationCommand]] = {i: [] for i in ids}
            reasons: dict[int, set[str]] = {i: set() for i in ids}
            for email_id, payload, reason in conn.execute(
                sa.select(commands.c.email_id, commands.c.payload, commands.c.reason)
                .where(commands.c.email_id.in_(ids))
                .order_by(commands.c.id)
            ):
                payloads[email_id].append(NOTIFICATION_ADAPTER.validate_json(payload))
                reasons[email_id].add(reason)
        return [
            ClaimedEmail(
                id=r.id,
                kind=EmailKind(r.kind),
                subscription_id=r.subscription_id,
                recipient_key=r.recipient_key,
                to_addr=r.to_addr,
                period=r.period,
                attempts=r.attempts,
                message_id=r.message_id,
                source_ts=r.source_ts,
                commands=payloads[r.id],
                notice=r.notice,
                reasons=frozenset(reasons[r.id]),
            )
            for r in rows
        ]

    def mark_sending(self, email_id: int, now: float) -> None:
        """Committed just before SMTP: from here until mark_sent is the crash window."""
        with self._transaction() as conn:
            conn.execute(_MARK_SENDING, {"b_id": email_id, "b_at": now})

    def release(self, ids: list[int]) -> None:
        """Give back emails that never reached SMTP (graceful shutdown, or queued behind a retry).

        The caller knows: 'claimed' ones, and the one already marked 'sending' in the commit
        that recorded its predecessor as sent.
        """
        if ids:
            with self._transaction() as conn:
                conn.execute(
                    emails.update()
                    .where(emails.c.id.in_(ids), emails.c.status.in_(("claimed", "sending")))
                    .values(status="pending", claimed_by=None, claimed_at=None)
                )

    def mark_sent(self, email_id: int, now: float, then_sending: int | None = None) -> None:
        """SMTP accepted it: never send it again; in the same commit, `then_sending` is next.

        One commit per email instead of two: the next email becomes 'sending' together with
        this one becoming 'sent', so the crash window (accepted, not yet recorded) is the
        same single commit as before.
        """
        with self._transaction() as conn:
            conn.execute(_MARK_SENT, {"b_id": email_id, "b_at": now})
            if then_sending is not None:
                conn.execute(_MARK_SENDING, {"b_id": then_sending, "b_at": now})

    def mark_retry(self, email_id: int, error: str, next_at: float) -> None:
        """A temporary failure: try again at `next_at`, others go on meanwhile."""
        with self._transaction() as conn:
            conn.execute(
                emails.update()
                .where(emails.c.id == email_id)
                .values(
                    status="pending",
                    attempts=emails.c.attempts + 1,
                    next_attempt_at=next_at,
                    last_error=error[:2000],
                    claimed_by=None,
                    claimed_at=None,
                )
            )

    def hard_bounces(self, subscription_id: str) -> int:
        """How many hard bounces this subscription's address has had."""
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.select(bounces.c.hard_count).where(bounces.c.subscription_id == subscription_id)
            ).scalar()
        return int(count or 0)

    def mark_dead(
        self, email_id: int, error: str, subscription_id: str, bounce: bool, now: float
    ) -> None:
        """A permanent failure: never retried; a hard bounce is counted for the subscription."""
        with self._transaction() as conn:
            conn.execute(
                emails.update()
                .where(emails.c.id == email_id)
                .values(status="dead", attempts=emails.c.attempts + 1, last_error=error[:2000])
            )
            if not bounce:
                return
            updated = conn.execute(
                bounces.update()
                .where(bounces.c.subscription_id == subscription_id)
                .values(
                    hard_count=bounces.c.hard_count + 1, last_reason=error[:2000], updated_at=now
                )
            )
            if updated.rowcount == 0:
                conn.execute(
                    bounces.insert().values(
                        subscription_id=subscription_id,
                        hard_count=1,
                        last_reason=error[:2000],
                        updated_at=now,
                    )
                )

    def digest_queue_size(self) -> int:
        """Digest items waiting for their digest."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        commands.c.route == Route.DIGEST.value, commands.c.email_id.is_(None)
                    )
                ).scalar_one()
            )

    def next_due(self) -> float | None:
        """When the earliest pending email or digest is due (to sleep until then)."""
        # Only each recipient's first unfinished email counts: those queued behind it are
        # due already but wait for it (and would otherwise make the sender spin).
        first = ~_earlier_email(_EARLIER.c.status.in_(UNFINISHED))
        with self.engine.connect() as conn:
            email_due = conn.execute(
                sa.select(sa.func.min(emails.c.next_attempt_at)).where(
                    emails.c.status == "pending", first
                )
            ).scalar()
            digest_due = conn.execute(
                sa.select(sa.func.min(commands.c.due_at)).where(
                    commands.c.route == Route.DIGEST.value, commands.c.email_id.is_(None)
                )
            ).scalar()
        dues = [d for d in (email_due, digest_due) if d is not None]
        return min(dues) if dues else None

    def status_counts(self) -> dict[str, int]:
        """Emails per delivery status (for tests and operators)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(emails.c.status, sa.func.count()).group_by(emails.c.status)
            ).all()
        return {status: int(count) for status, count in rows}
