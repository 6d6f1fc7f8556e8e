"""Which SMTP connection carries an email: every email to one recipient shares one."""

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
