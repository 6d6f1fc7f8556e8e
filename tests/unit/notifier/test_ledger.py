"""The durable ledger on SQLite and PostgreSQL: dedup, outbox states, digests, bounces."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connect311_contracts.notifications import NotificationCommand
from connect311_contracts.subscriptions import Delivery
from connect311_notifier.consumer import make_planner
from connect311_notifier.ledger import Incoming, Ledger, create_engine
from connect311_notifier.policy import EmailKind, Route
from connect311_notifier.settings import NotifierSettings
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription

NOW = time.time()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notifier.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    ledger = Ledger(engine)
    ledger.create_schema()
    yield ledger
    engine.dispose()


# The planner's clock is the tests' NOW: a real clock would move digests to the next hour
# when the suite crosses the top of an hour after this module was imported.
PLAN = make_planner(NotifierSettings(instant_per_hour=2), lambda: datetime.fromtimestamp(NOW, UTC))


def incoming(command: NotificationCommand) -> Incoming:
    return Incoming(command, "k-" + command.subscription.subscription_id, NOW - 1)


def test_a_replayed_command_is_a_no_op(ledger: Ledger) -> None:
    command = matched()
    first = ledger.record([incoming(command)], PLAN, NOW)
    again = ledger.record([incoming(command), incoming(command)], PLAN, NOW)
    assert [r.duplicate for r in first + again] == [False, True, True]
    assert ledger.status_counts() == {"pending": 1}


def test_same_event_for_two_subscriptions_is_two_emails(ledger: Ledger) -> None:
    ev = event(request())
    results = ledger.record([incoming(matched(ev=ev)), incoming(matched(ev=ev))], PLAN, NOW)
    assert not any(r.duplicate for r in results)
    assert ledger.status_counts() == {"pending": 2}


def test_rate_limit_folds_the_rest_into_an_hourly_digest(ledger: Ledger) -> None:
    sub = subscription()
    results = ledger.record([incoming(matched(sub)) for _ in range(5)], PLAN, NOW)
    routes = [r.decision.route for r in results if r.decision]
    assert routes == [Route.INSTANT] * 2 + [Route.DIGEST] * 3
    assert ledger.digest_queue_size() == 3
    assert ledger.flush_digests(NOW) == 0  # not due before the top of the hour
    assert ledger.flush_digests(NOW + 3601) == 1
    emails = ledger.claim("me", NOW + 3601, 10)
    digest = [e for e in emails if e.kind is EmailKind.DIGEST]
    assert len(digest) == 1 and len(digest[0].commands) == 3 and digest[0].period == "hourly"
    assert ledger.digest_queue_size() == 0


def test_digests_are_one_email_per_subscription(ledger: Ledger) -> None:
    a, b = subscription(delivery=Delivery.DAILY), subscription(delivery=Delivery.DAILY)
    ledger.record([incoming(matched(s)) for s in (a, b, a, a)], PLAN, NOW)
    assert ledger.flush_digests(NOW + 8 * 86400) == 2
    claimed = {e.subscription_id: len(e.commands) for e in ledger.claim("me", NOW + 9e5, 10)}
    assert claimed == {a.subscription_id: 3, b.subscription_id: 1}


def test_outbox_states_and_crash_recovery(ledger: Ledger) -> None:
    ledger.record([incoming(confirmation()), incoming(matched()), incoming(matched())], PLAN, NOW)
    claimed = ledger.claim("node-1", NOW, 10)
    assert len(claimed) == 3 and ledger.claim("node-2", NOW, 10) == []
    ledger.mark_sending(claimed[0].id, NOW)
    ledger.mark_sent(claimed[0].id, NOW)
    ledger.mark_sending(claimed[1].id, NOW)
    # node-1 dies in the middle of SMTP for claimed[1], before it reached claimed[2].
    # node-2 may take them over only after the lease.
    assert ledger.status_counts() == {"sent": 1, "sending": 1, "claimed": 1}
    assert ledger.recover("node-2", lease_s=300, now=NOW) == (0, 0)
    assert ledger.recover("node-2", lease_s=300, now=NOW + 301) == (1, 1)
    again = ledger.claim("node-2", NOW + 301, 10)
    assert [e.message_id for e in again] == [c.message_id for c in claimed[1:]]  # same ids
    assert ledger.status_counts() == {"sent": 1, "claimed": 2}
    # A restart of node-2 itself takes its own rows back at once.
    assert ledger.recover("node-2", lease_s=300, now=NOW + 302) == (2, 0)


def test_retry_waits_for_its_time(ledger: Ledger) -> None:
    ledger.record([incoming(matched())], PLAN, NOW)
    (email,) = ledger.claim("me", NOW, 10)
    ledger.mark_retry(email.id, "451 try later", NOW + 30)
    assert ledger.claim("me", NOW + 29, 10) == []
    (retry,) = ledger.claim("me", NOW + 30, 10)
    assert retry.attempts == 1


def test_hard_bounces_are_counted_and_stop_further_mail(ledger: Ledger) -> None:
    sub = subscription()
    plan = make_planner(NotifierSettings(hard_bounce_threshold=2), lambda: datetime.now(UTC))
    for expected in (1, 2):
        ledger.record([incoming(matched(sub))], plan, NOW)
        (email,) = ledger.claim("me", NOW, 10)
        ledger.mark_dead(email.id, "550 no such user", sub.subscription_id, True, NOW)
        assert ledger.hard_bounces(sub.subscription_id) == expected
    (result,) = ledger.record([incoming(matched(sub))], plan, NOW)
    assert result.decision is not None and result.decision.route is Route.SKIP
    assert ledger.status_counts() == {"dead": 2}


def test_sent_and_the_next_sending_in_one_commit_and_release(ledger: Ledger) -> None:
    ledger.record([incoming(matched()) for _ in range(3)], PLAN, NOW)
    first, second, third = ledger.claim("node-1", NOW, 10)
    ledger.mark_sending(first.id, NOW)
    ledger.mark_sent(first.id, NOW, then_sending=second.id)
    assert ledger.status_counts() == {"sent": 1, "sending": 1, "claimed": 1}
    # A graceful stop gives back what never reached SMTP, the pre-marked one included.
    ledger.release([second.id, third.id])
    assert ledger.status_counts() == {"sent": 1, "pending": 2}


@pytest.mark.parametrize("cap", [None, 2, 3])
def test_capped_instant_count_decides_the_same(ledger: Ledger, cap: int | None) -> None:
    capped = Ledger(ledger.engine, instant_cap=cap)
    sub = subscription()
    routes: list[Route] = []
    for batch in (4, 1, 2):
        results = capped.record([incoming(matched(sub)) for _ in range(batch)], PLAN, NOW)
        routes += [r.decision.route for r in results if r.decision]
    # instant_per_hour=2 in PLAN: two instant emails this hour, everything after folds.
    assert routes == [Route.INSTANT] * 2 + [Route.DIGEST] * 5


UNLIMITED = make_planner(NotifierSettings(), lambda: datetime.fromtimestamp(NOW, UTC))


def for_recipient(key: str, command: NotificationCommand) -> Incoming:
    return Incoming(command, key, NOW - 1)


def test_a_retry_holds_back_its_recipients_later_emails_only(ledger: Ledger) -> None:
    a, b = subscription(), subscription()
    queued = [for_recipient(key, matched(sub)) for key, sub in (("a", a), ("a", a), ("b", b))]
    ledger.record([*queued, for_recipient("a", matched(a))], UNLIMITED, NOW)
    first, second, b_first, third = ledger.claim("me", NOW, 10)
    assert [e.recipient_key for e in (first, second, b_first, third)] == ["a", "a", "b", "a"]
    ledger.mark_retry(first.id, "451 try later", NOW + 30)
    ledger.release([second.id, third.id])  # the sender gives back what queued behind it
    ledger.mark_sent(b_first.id, NOW)
    ledger.record([for_recipient("b", matched(b))], UNLIMITED, NOW)
    # b goes on; a's later emails wait for its retry, even though they are due.
    assert [e.recipient_key for e in ledger.claim("me", NOW + 1, 10)] == ["b"]
    assert ledger.next_due() == NOW + 30  # not the held-back ones: no busy loop
    assert ledger.claim("me", NOW + 29, 10) == []
    again = ledger.claim("me", NOW + 30, 10)
    assert [e.id for e in again] == [first.id, second.id, third.id]


def test_a_recipient_in_flight_elsewhere_is_not_claimed_past(ledger: Ledger) -> None:
    sub = subscription()
    ledger.record([for_recipient("a", matched(sub)) for _ in range(3)], UNLIMITED, NOW)
    first, second = ledger.claim("node-1", NOW, 2)
    ledger.record([for_recipient("z", matched())], UNLIMITED, NOW)
    # node-2 sees a's third email due, but node-1 still holds the two before it.
    assert [e.recipient_key for e in ledger.claim("node-2", NOW, 10)] == ["z"]
    ledger.mark_sending(first.id, NOW)
    ledger.mark_sent(first.id, NOW, then_sending=second.id)
    assert ledger.claim("node-2", NOW, 10) == []
    ledger.mark_sent(second.id, NOW)
    (third,) = ledger.claim("node-2", NOW, 10)
    assert third.id > second.id and third.recipient_key == "a"


def test_concurrent_claims_never_split_a_recipients_queue(postgres_database: str) -> None:
    ledger = Ledger(create_engine(postgres_database))
    ledger.create_schema()
    ledger.record([for_recipient("a", matched()) for _ in range(3)], UNLIMITED, NOW)

    def linger(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # node-1 holds its claim open a while after choosing rows, as a busy host might.
        if "FOR UPDATE" in statement and threading.current_thread().name.startswith("node-1"):
            time.sleep(0.5)

    sa.event.listen(ledger.engine, "after_cursor_execute", linger)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="node-1") as pool:
            first = pool.submit(lambda: ledger.claim("node-1", NOW, 2))
            time.sleep(0.2)  # node-2 claims while node-1's claim is still open
            second = ledger.claim("node-2", NOW, 10)
            taken = first.result()
    finally:
        sa.event.remove(ledger.engine, "after_cursor_execute", linger)
        ledger.engine.dispose()
    # node-1 took a's first two; a's third waits for them instead of going out beside them.
    assert [e.recipient_key for e in taken] == ["a", "a"] and second == []


def test_instances_starting_together_create_the_schema_once(postgres_database: str) -> None:
    engines = [create_engine(postgres_database) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:  # would race to CREATE TABLE without the lock
            list(pool.map(lambda engine: Ledger(engine).create_schema(), engines))
        assert Ledger(engines[0]).status_counts() == {}
    finally:
        for engine in engines:
            engine.dispose()


def test_lease_renewal_skips_a_row_a_lane_is_writing_instead_of_waiting(ledger: Ledger) -> None:
    """Renewal waiting for a lane's row locks deadlocked PostgreSQL and crashed the sender."""
    if ledger.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer, queued on a lock)")
    ledger.record([for_recipient(k, matched()) for k in ("a", "b")], UNLIMITED, NOW)
    first, second = ledger.claim("me", NOW, 10)
    with ledger.engine.begin() as lane:  # a lane's commit in progress, holding one row
        lane.execute(
            sa.text("UPDATE notifier_emails SET status = 'sending' WHERE id = :i"), {"i": first.id}
        )
        with ThreadPoolExecutor(1) as pool:  # a hang guard only: renewal must not wait
            assert pool.submit(ledger.renew, "me", NOW + 10).result(timeout=30) == 1
            assert pool.submit(ledger.recover, "me", 60, NOW + 10).result(timeout=30) == (1, 0)
    assert ledger.status_counts() == {"pending": 1, "sending": 1}
    assert second.id != first.id


def test_a_chunk_is_recorded_sent_and_the_next_marked_sending_in_one_commit(
    ledger: Ledger,
) -> None:
    ledger.record([for_recipient(k, matched()) for k in "abcd"], UNLIMITED, NOW)
    a, b, c, d = ledger.claim("me", NOW, 10)
    ledger.mark_sent_many([], [a.id, b.id], NOW)
    assert ledger.status_counts() == {"sending": 2, "claimed": 2}
    ledger.mark_sent_many([(a.id, NOW + 1), (b.id, NOW + 2)], [c.id, d.id], NOW + 2)
    assert ledger.status_counts() == {"sent": 2, "sending": 2}
    # A kill -9 now: the chunk in flight goes again (same Message-ID), the sent ones never.
    assert ledger.recover("me", lease_s=60, now=NOW + 3) == (0, 2)
    assert [e.message_id for e in ledger.claim("me", NOW + 3, 10)] == [c.message_id, d.message_id]


def test_renewed_rows_are_kept_and_abandoned_ones_taken_over(ledger: Ledger) -> None:
    ledger.record([for_recipient("a", matched()), for_recipient("b", matched())], UNLIMITED, NOW)
    live, dead = ledger.claim("live", NOW, 1), ledger.claim("dead", NOW, 1)
    ledger.mark_sending(dead[0].id, NOW)
    assert ledger.renew("live", NOW + 50) == 1  # "dead" renews nothing any more
    # Anyone's check, not a restart: only rows past the lease go back (no instance named).
    assert ledger.recover(None, lease_s=60, now=NOW + 59) == (0, 0)
    assert ledger.recover(None, lease_s=60, now=NOW + 61) == (0, 1)
    assert ledger.status_counts() == {"claimed": 1, "pending": 1}
    (taken,) = ledger.claim("live", NOW + 61, 10)
    assert taken.id == dead[0].id and live[0].id != taken.id


def test_a_batchs_emails_are_queued_in_its_order_with_their_own_commands(ledger: Ledger) -> None:
    """Ids ascend with the batch (each recipient's emails leave in the order they came),
    and each email carries its own command, whichever way the batch was written."""
    subs = [subscription() for _ in range(3)]
    batch = [for_recipient(f"r{i % 3}", matched(subs[i % 3])) for i in range(150)]
    batch.insert(40, for_recipient("r1", matched(subs[1])))
    no_cap = make_planner(NotifierSettings(instant_per_hour=10**6), lambda: datetime.now(UTC))
    ledger.record(batch, no_cap, NOW)
    claimed = ledger.claim("me", NOW, 500)
    assert [e.commands[0].event_id for e in claimed] == [i.command.event_id for i in batch]
    assert [e.recipient_key for e in claimed] == [i.recipient_key for i in batch]
    assert [e.id for e in claimed] == sorted(e.id for e in claimed)
