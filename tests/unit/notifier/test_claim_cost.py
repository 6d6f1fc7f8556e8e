"""Claiming from one recipient's long queue: in order, and at a cost that does not grow with it.

The claim query once read every earlier email of the recipient for each candidate, so picking
50 from one recipient's queue of n cost O(n^2) (1.9 s at 4,000 queued). These count the
SQLite virtual-machine steps a claim takes (the work it does, not the time it takes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.ledger_queue import _claimable
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import matched, subscription

NOW = time.time()
UNLIMITED = make_planner(
    NotifierSettings(instant_per_hour=1_000_000), lambda: datetime.fromtimestamp(NOW, UTC)
)
BATCH = 50


def queue_for_one_recipient(ledger: Ledger, n: int, others: int = 0) -> None:
    sub = subscription()
    rows = [Incoming(matched(sub), "one", NOW - 1) for _ in range(n)]
    rows += [Incoming(matched(), f"other-{i}", NOW - 1) for i in range(others)]
    for start in range(0, len(rows), 1000):
        ledger.record(rows[start : start + 1000], UNLIMITED, NOW)


@pytest.fixture
def sqlite_ledgers(tmp_path: Path) -> Iterator[Any]:
    made: list[Ledger] = []

    def make(name: str) -> Ledger:
        ledger = Ledger(create_engine(f"sqlite:///{tmp_path / name}.db"))
        ledger.create_schema()
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.engine.dispose()


def steps_of(ledger: Ledger, action: Any) -> tuple[int, Any]:
    """The SQLite VM steps `action` takes, on whichever pooled connections it uses."""
    count = [0]
    touched: list[Any] = []

    def tick() -> int:
        count[0] += 1
        return 0

    def count_on(conn: Any, *_args: Any) -> None:
        raw = conn.connection.driver_connection
        raw.set_progress_handler(tick, 1)
        touched.append(raw)

    sa.event.listen(ledger.engine, "before_cursor_execute", count_on)
    try:
        result = action()
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", count_on)
        for raw in touched:
            raw.set_progress_handler(None, 1)
    return count[0], result


def send_all(ledger: Ledger, ids: list[int]) -> None:
    for email_id in ids:
        ledger.mark_sending(email_id, NOW)
        ledger.mark_sent(email_id, NOW)


def claim_costs(ledger: Ledger) -> tuple[int, int, list[int], list[int]]:
    """(steps of an open claim, steps of a held-back one, first batch ids, second batch ids)."""
    first = [e.id for e in ledger.claim("me", NOW, BATCH)]
    held, nothing = steps_of(ledger, lambda: ledger.claim("me", NOW, BATCH))
    assert nothing == []  # its earlier emails are in flight: nothing to take
    send_all(ledger, first)
    open_, second = steps_of(ledger, lambda: ledger.claim("me", NOW, BATCH))
    return open_, held, first, [e.id for e in second]


def test_claiming_from_a_long_queue_costs_the_batch_not_the_queue(sqlite_ledgers: Any) -> None:
    short, long = sqlite_ledgers("short"), sqlite_ledgers("long")
    queue_for_one_recipient(short, 500)
    queue_for_one_recipient(long, 4000)
    short_open, short_held, *_ = claim_costs(short)
    long_open, long_held, first, second = claim_costs(long)
    # Eight times the queue: an open claim does the same work (it was ~64 times more).
    assert long_open < short_open * 1.3, (short_open, long_open)
    # A claim while the recipient's batch is in flight walks its queue once: linear at most.
    assert long_held < short_held * 8 * 1.3, (short_held, long_held)
    # And the queue goes out in order, one batch after another.
    assert first == sorted(first) and second == sorted(second)
    assert len(second) == BATCH and second[0] > first[-1]


def test_the_claim_walks_the_queue_index_in_order(sqlite_ledgers: Any) -> None:
    ledger = sqlite_ledgers("plan")
    sql = str(_claimable(NOW, BATCH).compile(ledger.engine, compile_kwargs={"literal_binds": True}))
    with ledger.engine.connect() as conn:
        plan = [row[3] for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql))]
    # In id order on (status, id), stopping at the limit: no sort of every due email.
    assert plan[0].startswith("SEARCH notifier_emails USING INDEX ix_notifier_emails_queue")
    assert not any("TEMP B-TREE" in step for step in plan), plan
    # Each held-back check probes that recipient's own entries, never everyone's.
    lookups = [step for step in plan if step.startswith("SEARCH earlier")]
    assert len(lookups) == 2 and all("(recipient_key=? AND status=? AND" in s for s in lookups)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_a_long_queue_leaves_in_order_beside_other_recipients(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'order.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    ledger = Ledger(create_engine(url))
    ledger.create_schema()
    try:
        queue_for_one_recipient(ledger, 2000, others=200)
        seen: dict[str, list[int]] = {}
        while batch := ledger.claim("me", NOW, BATCH):
            # Never two of one recipient's emails out of order, never one twice.
            send_all(ledger, [e.id for e in batch])
            for email in batch:
                seen.setdefault(email.recipient_key, []).append(email.id)
        assert len(seen["one"]) == 2000 and seen["one"] == sorted(set(seen["one"]))
        assert len(seen) == 201 and ledger.status_counts() == {"sent": 2200}
    finally:
        ledger.engine.dispose()
