"""The durable ledger (SQLAlchemy 2 Core): every command once, every email's delivery state.

One table of commands keyed by (subscription_id, service_request_id, event_id) makes a
redelivered or replayed command a no-op; one table of emails is the outbox the sender drains
(pending -> claimed -> sending -> sent | dead, see EmailStatus); digest items wait in the
commands table until due.

Its parts, one job each, share one database handle (and so one SQLite writer):
`ledger_intake` records commands and folds due digests, `ledger_queue` hands out and takes
back emails (claims, leases, recovery), `ledger_outcomes` records each delivery step, and
`ledger_status` counts, `ledger_webhooks` keeps each webhook's state with its delivery
steps. `Ledger` puts them behind one object for the service's wiring.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from connect311_bus.engine import make_engine
from connect311_notifier.ledger_intake import Incoming, Intake, Planner, Recorded
from connect311_notifier.ledger_outcomes import Outcomes
from connect311_notifier.ledger_queue import ClaimedEmail, Queue
from connect311_notifier.ledger_schema import LedgerDatabase, bounces, commands, emails
from connect311_notifier.ledger_status import LedgerStatus
from connect311_notifier.ledger_webhooks import HookState, Webhooks

__all__ = [
    "ClaimedEmail",
    "HookState",
    "Incoming",
    "Ledger",
    "Planner",
    "Recorded",
    "bounces",
    "commands",
    "create_engine",
    "emails",
]


def create_engine(url: str) -> Engine:
    """The ledger's engine: the shared factory (SQLite WAL and busy timeout, or PostgreSQL)."""
    return make_engine(url)


class Ledger:
    """All durable state of the notifier: its parts over one database, as one object.

    The methods are the parts' own (see each for what it does); the parts are attributes
    too, for code that needs only one of them.
    """

    def __init__(self, engine: Engine, instant_cap: int | None = None) -> None:
        self.engine = engine
        self.db = LedgerDatabase(engine)
        self.intake = Intake(self.db, instant_cap)
        self.queue = Queue(self.db)
        self.outcomes = Outcomes(self.db)
        self.status = LedgerStatus(self.db)
        self.webhooks = Webhooks(self.db)
        self.create_schema = self.db.create_schema
        # Recording commands (the consumer) and folding due digests (the sender).
        self.record = self.intake.record
        self.flush_digests = self.intake.flush_digests
        # The outbox queue (the sender).
        self.claim = self.queue.claim
        self.recover = self.queue.recover
        self.renew = self.queue.renew
        self.release = self.queue.release
        self.next_due = self.queue.next_due
        # Each delivery step (the sender).
        self.mark_sending = self.outcomes.mark_sending
        self.mark_sent = self.outcomes.mark_sent
        self.mark_sent_many = self.outcomes.mark_sent_many
        self.mark_retry = self.outcomes.mark_retry
        self.mark_dead = self.outcomes.mark_dead
        self.hard_bounces = self.outcomes.hard_bounces
        # Figures (health check, status command, tests).
        self.status_counts = self.status.status_counts
        self.digest_queue_size = self.status.digest_queue_size
