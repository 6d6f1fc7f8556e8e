"""Which SMTP connection carries an email: one request's emails always share one."""

from __future__ import annotations

from connect311_contracts.notifications import NotificationCommand, recipient_key
from connect311_contracts.request import RequestStatus
from connect311_notifier.ledger import ClaimedEmail
from connect311_notifier.policy import EmailKind
from connect311_notifier.sender import lane
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


def test_updates_about_one_request_share_a_lane() -> None:
    sub = subscription(follow="stpete:r1")
    req = request("r1")
    updates = [
        matched(sub, event(req)),
        matched(sub, event(request("r1", status=RequestStatus.IN_PROGRESS), "updated")),
        matched(sub, event(request("r1", status=RequestStatus.CLOSED), "closed")),
    ]
    lanes = {lane(claimed(EmailKind.FOLLOW, c), LANES) for c in updates}
    assert len(lanes) == 1


def test_a_subscriptions_confirmation_and_digests_share_a_lane() -> None:
    sub = subscription()
    first = lane(claimed(EmailKind.CONFIRMATION, confirmation(sub)), LANES)
    for _ in range(20):
        items = [matched(sub), matched(sub)]
        assert lane(claimed(EmailKind.DIGEST, *items), LANES) == first


def test_alerts_about_different_requests_spread_over_the_lanes() -> None:
    sub = subscription()
    used = {lane(claimed(EmailKind.ALERT, matched(sub)), LANES) for _ in range(200)}
    assert used == set(range(LANES))
    assert {lane(claimed(EmailKind.ALERT, matched(sub)), 1) for _ in range(20)} == {0}
