"""Which SMTP connection carries an email: every email to one recipient shares one; the
lanes' records of what was sent share commits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from connect311_contracts.notifications import NotificationCommand, recipient_key
from connect311_contracts.request import RequestStatus
from connect311_notifier.ledger import ClaimedEmail
from connect311_notifier.policy import EmailKind
from connect311_notifier.sender import lane
from connect311_notifier.shared_commits import SharedCommits
from tests.unit.notifier.factories import confirmation, event, matched, request, subscription

LANES = 4


def claimed(kind: EmailKind, *commands: NotificationCommand) -> ClaimedEmail:
    sub = commands[0].subscription
    return ClaimedEmail(
        id=1,
        kind=kind,
        subscription_id=sub.subscription_id,
        recipient_key=recipient_key(sub.email),
        to_addr=sub.email,
        period="hourly" if kind is EmailKind.DIGEST else None,
        attempts=0,
        message_id="m",
        source_ts=0.0,
        commands=list(commands),
    )


def test_every_email_to_one_recipient_shares_a_lane() -> None:
    address = "Resident@Example.org"
    circle = subscription(email=address)
    follow = subscription(follow="stpete:r1", email=" resident@example.org ")  # same person
    emails = [
        claimed(EmailKind.CONFIRMATION, confirmation(circle)),
        *(claimed(EmailKind.ALERT, matched(circle)) for _ in range(50)),  # different requests
        claimed(EmailKind.FOLLOW, matched(follow, event(request("r1")))),
        claimed(
            EmailKind.FOLLOW,
            matched(follow, event(request("r1", status=RequestStatus.CLOSED), "closed")),
        ),
        claimed(EmailKind.DIGEST, matched(circle), matched(circle)),
    ]
    assert len({lane(e, LANES) for e in emails}) == 1


def test_different_recipients_spread_over_the_lanes() -> None:
    emails = [claimed(EmailKind.ALERT, matched()) for _ in range(200)]
    assert {lane(e, LANES) for e in emails} == set(range(LANES))
    assert {lane(e, 1) for e in emails[:20]} == {0}


async def test_lanes_recording_at_once_share_a_commit_and_each_waits_for_its_own() -> None:
    commits: list[tuple[list[tuple[int, float]], list[int]]] = []
    first_running, release = threading.Event(), threading.Event()

    def commit(sent: list[tuple[int, float]], sending: list[int], _now: float) -> None:
        if not commits:  # the first commit is slow: the other lanes queue behind it
            first_running.set()
            release.wait(5)
        commits.append((sent, sending))

    shared = SharedCommits(commit)
    first = asyncio.create_task(shared.record([(1, 1.0)], [2]))
    await asyncio.to_thread(first_running.wait, 5)
    others = [asyncio.create_task(shared.record([(i, 1.0)], [i + 1])) for i in (10, 20, 30)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in [first, *others])  # nobody goes on before its commit
    release.set()
    await asyncio.gather(first, *others)
    assert commits == [([(1, 1.0)], [2]), ([(10, 1.0), (20, 1.0), (30, 1.0)], [11, 21, 31])]
    assert shared.commits == 2


async def test_a_failed_shared_commit_fails_every_lane_in_it() -> None:
    def commit(*_args: object) -> None:
        raise RuntimeError("database gone")

    shared = SharedCommits(commit)
    lanes = [shared.record([(i, 1.0)], []) for i in range(3)]
    results = await asyncio.gather(*lanes, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and shared.commits == 0
    with pytest.raises(RuntimeError):  # and the next record tries again (and fails again)
        await shared.record([(9, 1.0)], [])
