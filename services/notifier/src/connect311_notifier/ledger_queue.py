"""Claiming the outbox: due emails handed out per recipient in order, leases, recovery.

An email an instance holds (IN_FLIGHT) carries its instance and a lease time; rows left by a
crash, or by an instance that stopped renewing, go back to 'pending' and are sent again with
their stored Message-ID.

Webhooks are rows of the same outbox with the same life cycle, but each send loop claims,
waits for and recovers only its own channel's rows (see Channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from connect311_contracts.notifications import NOTIFICATION_ADAPTER, NotificationCommand
from connect311_notifier.ledger_arrays import among
from connect311_notifier.ledger_schema import CLAIM_LOCK, LedgerDatabase, commands, emails
from connect311_notifier.policy import (
    IN_FLIGHT,
    UNFINISHED,
    Channel,
    EmailKind,
    EmailStatus,
    Route,
)

__all__ = ["ClaimedEmail", "Queue"]

_PENDING = EmailStatus.PENDING.value
_IN_FLIGHT = tuple(s.value for s in IN_FLIGHT)
_EARLIER = emails.alias("earlier")
_WEBHOOK = EmailKind.WEBHOOK.value


def _of(channel: Channel | None) -> sa.ColumnElement[bool]:
    """The rows of one send loop (None: every row)."""
    if channel is Channel.WEBHOOK:
        return emails.c.kind == _WEBHOOK
    if channel is Channel.EMAIL:
        return emails.c.kind != _WEBHOOK
    return sa.true()


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
    command_id: int | None = None
    """A webhook's command (its only one), or the one a turned-off notice is about."""


def _earlier_email(*conditions: sa.ColumnElement[bool]) -> sa.Exists:
    """Whether an earlier email of the same recipient meets the conditions."""
    return sa.exists().where(
        _EARLIER.c.recipient_key == emails.c.recipient_key,
        *conditions,
        _EARLIER.c.id < emails.c.id,
    )


def _held_back(now: float) -> sa.ColumnElement[bool]:
    """Whether an earlier email of the same recipient is in flight or waiting for a retry.

    Two lookups, each on the recipient's own index entries, not one OR inside one: with the
    OR, the database read every earlier email of the recipient for each candidate, so
    claiming from one recipient's queue of n emails cost O(n^2) (1.9 s for 50 at 4,000
    queued). In flight: a probe of ix_notifier_emails_recipient_queue (recipient, status,
    id). Retrying: ix_notifier_emails_recipient_due (recipient, status, next_attempt_at),
    whose range holds only that recipient's retries (without it SQLite may pick the global
    due index and read everyone's retries per candidate).
    """
    in_flight = _earlier_email(_EARLIER.c.status.in_(_IN_FLIGHT))
    retrying = _earlier_email(_EARLIER.c.status == _PENDING, _EARLIER.c.next_attempt_at > now)
    return sa.or_(in_flight, retrying)


def _claimable(now: float, limit: int, channel: Channel = Channel.EMAIL) -> sa.Select[int]:
    """Due emails whose recipient has nothing earlier in flight or waiting for a retry.

    In id order, so when one of a recipient's emails is taken, all its earlier due ones are
    too: a recipient's emails leave in the order the ledger queued them, and a retry holds
    back everything queued after it for that recipient (and nobody else).
    """
    # `+ 0` keeps the database walking the queue index (status, id) in order and stopping
    # after `limit` rows; on the due index it read and sorted every due email first.
    # Webhooks walk (kind, status, id) the same way.
    due = emails.c.next_attempt_at + 0 <= now
    return (
        sa.select(emails.c.id)
        .where(emails.c.status == _PENDING, _of(channel), due, ~_held_back(now))
        .order_by(emails.c.id)
        .limit(limit)
        .with_for_update(of=emails, skip_locked=True)
    )


_CLAIM_START = sa.select(
    # Instances sharing the ledger claim one at a time (see Queue.claim).
    sa.func.pg_advisory_xact_lock(CLAIM_LOCK),
    # The claim's plan must walk the queue index in id order and stop at the limit, which
    # PostgreSQL chose only once it had statistics: on a table not yet analyzed (a fresh
    # ledger under its first burst; psycopg prepares the statement after five runs) it read
    # every pending row, probed each one's earlier emails and sorted them: 37-48 ms a claim
    # of 200 at 8,000 pending, quiet (~1 s under load), against 9-20 ms walking the index.
    # With sorting ruled out for this transaction only (set_config(..., true) is SET LOCAL)
    # the ordered index walk is the plan whatever the statistics say.
    sa.func.set_config("enable_sort", "off", True),
)


def _unlocked(*conditions: sa.ColumnElement[bool]) -> sa.Select[tuple[int]]:
    """The rows meeting the conditions that no other transaction is writing right now.

    Renewing and recovering leases update many rows at once while the send lanes mark
    theirs one chunk at a time: waiting for a lane's row locks (taken in another order)
    deadlocked them on PostgreSQL and crashed the sender. A row a lane is writing is being
    given a fresh state anyway (sending, sent, retry, released), so skipping it is safe.
    """
    return sa.select(emails.c.id).where(*conditions).with_for_update(skip_locked=True)


class Queue:
    """Hands due emails to an instance, and takes back what it cannot or did not finish."""

    def __init__(self, db: LedgerDatabase) -> None:
        self.db = db

    def claim(
        self, instance: str, now: float, limit: int, channel: Channel = Channel.EMAIL
    ) -> list[ClaimedEmail]:
        """Take up to `limit` due rows of one channel for this instance ('claimed'), loaded.

        Per recipient in queue order, never past an earlier email in flight or waiting for
        a retry (see _claimable). Instances sharing a PostgreSQL ledger claim one at a time:
        two concurrent claims could each see the other's rows still 'pending' and take a
        recipient's earlier and later emails apart.
        """
        ids = self._take(instance, now, limit, channel)
        return self._load(ids) if ids else []

    def _take(self, instance: str, now: float, limit: int, channel: Channel) -> list[int]:
        # Short on purpose: other instances wait for this lock (loading happens after).
        with self.db.transaction() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(_CLAIM_START)
            ids = list(conn.execute(_claimable(now, limit, channel)).scalars())
            if ids:
                conn.execute(
                    emails.update()
                    .where(among(emails.c.id, ids, postgres))
                    .values(status=EmailStatus.CLAIMED.value, claimed_by=instance, claimed_at=now)
                )
        return ids

    def _load(self, ids: list[int]) -> list[ClaimedEmail]:
        with self.db.engine.connect() as conn:
            arrays = conn.dialect.name == "postgresql"  # one statement text (ledger_arrays)
            rows = conn.execute(
                sa.select(emails).where(among(emails.c.id, ids, arrays)).order_by(emails.c.id)
            ).all()
            payloads: dict[int, list[NotificationCommand]] = {i: [] for i in ids}
            reasons: dict[int, set[str]] = {i: set() for i in ids}
            for email_id, payload, reason in conn.execute(
                sa.select(commands.c.email_id, commands.c.payload, commands.c.reason)
                .where(among(commands.c.email_id, ids, arrays))
                .order_by(commands.c.id)
            ):
                payloads[email_id].append(NOTIFICATION_ADAPTER.validate_json(payload))
                reasons[email_id].add(reason)
            # A webhook row (or a turned-off notice) names its one command directly.
            about = {r.command_id: r.id for r in rows if r.command_id is not None}
            if about:
                for command_id, payload in conn.execute(
                    sa.select(commands.c.id, commands.c.payload).where(
                        among(commands.c.id, about, arrays)
                    )
                ):
                    payloads[about[command_id]] = [NOTIFICATION_ADAPTER.validate_json(payload)]
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
                command_id=r.command_id,
            )
            for r in rows
        ]

    def recover(
        self, instance: str | None, lease_s: float, now: float, channel: Channel | None = None
    ) -> tuple[int, int]:
        """Put back rows a crash left (ours, or anyone's past the lease): (claimed, sending).

        'claimed' rows never reached SMTP; 'sending' rows may have been accepted just before
        the crash (the remaining window): both are sent again, with their stored Message-ID.
        With no instance, only rows whose lease ran out (their instance stopped renewing).
        With a channel, only that send loop's rows: the other loop may be sending its own.
        """
        orphaned = emails.c.claimed_at < now - lease_s
        if instance is not None:
            orphaned = sa.or_(emails.c.claimed_by == instance, orphaned)
        counts = []
        with self.db.transaction() as conn:
            for status in IN_FLIGHT:
                rows = _unlocked(emails.c.status == status.value, orphaned, _of(channel))
                result = conn.execute(
                    emails.update()
                    .where(emails.c.id.in_(rows))
                    .values(status=_PENDING, claimed_by=None, claimed_at=None)
                )
                counts.append(int(result.rowcount))
        return counts[0], counts[1]

    def renew(self, instance: str, now: float) -> int:
        """Renew this instance's lease on the rows it holds, so no other takes them over."""
        ours = _unlocked(emails.c.claimed_by == instance, emails.c.status.in_(_IN_FLIGHT))
        with self.db.transaction() as conn:
            result = conn.execute(
                emails.update().where(emails.c.id.in_(ours)).values(claimed_at=now)
            )
        return int(result.rowcount)

    def release(self, ids: list[int]) -> None:
        """Give back emails that never reached SMTP (graceful shutdown, or queued behind a retry).

        The caller knows: 'claimed' ones, and the one already marked 'sending' in the commit
        that recorded its predecessor as sent.
        """
        if ids:
            with self.db.transaction() as conn:
                conn.execute(
                    emails.update()
                    .where(emails.c.id.in_(ids), emails.c.status.in_(_IN_FLIGHT))
                    .values(status=_PENDING, claimed_by=None, claimed_at=None)
                )

    def next_due(self, channel: Channel = Channel.EMAIL) -> float | None:
        """When the channel's earliest pending row (or, for email, digest) is due."""
        # Only each recipient's first unfinished email counts: those queued behind it are
        # due already but wait for it (and would otherwise make the sender spin).
        first = ~_earlier_email(_EARLIER.c.status.in_([s.value for s in UNFINISHED]))
        with self.db.engine.connect() as conn:
            email_due = conn.execute(
                sa.select(sa.func.min(emails.c.next_attempt_at)).where(
                    emails.c.status == _PENDING, _of(channel), first
                )
            ).scalar()
            if channel is Channel.WEBHOOK:
                return float(email_due) if email_due is not None else None
            digest_due = conn.execute(
                sa.select(sa.func.min(commands.c.due_at)).where(
                    commands.c.route == Route.DIGEST.value, commands.c.email_id.is_(None)
                )
            ).scalar()
        dues = [d for d in (email_due, digest_due) if d is not None]
        return min(dues) if dues else None
