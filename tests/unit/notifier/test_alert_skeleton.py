"""An alert filled into its event's skeleton is byte for byte the alert rendered in full."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import pytest
from itsdangerous import TimestampSigner

from connect311_contracts.events import RequestEvent, RequestOverdue
from connect311_contracts.notifications import SubscriberMatched
from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_contracts.service_levels import Target
from connect311_contracts.subscriptions import (
    AreaTarget,
    CircleTarget,
    CityWideTarget,
    CorridorTarget,
    FollowTarget,
    SubscriptionFilters,
)
from connect311_notifier.i18n import language
from connect311_notifier.links import LinkBuilder
from connect311_notifier.mime import (
    COMPAT_POLICY,
    UTF8_AS_IS,
    Alternative,
    _text_part,
    compat_message,
)
from connect311_notifier.render import Renderer
from connect311_notifier.settings import Branding, NotifierSettings
from tests.unit.notifier.factories import event, matched, request, subscription

NOW = datetime(2024, 5, 6, 18, 0, tzinfo=UTC)
HOSTILE = "<b>x</b> & \"q\" 's' %(name)s %s {{ 1 }}"
AREA = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [0, 0]]]}


def events(rng: random.Random) -> Iterator[RequestEvent]:
    """Request events that word their emails differently (datasets, kinds, odd text)."""
    texts = [None, "Pothole", HOSTILE, "Grüße ☃ — naïve", "x" * 1200]
    for i in range(12):
        status = rng.choice(list(RequestStatus))
        req = request(
            f"skel-{i}",
            status=status,
            description=rng.choice(texts),
            notes=rng.choice(texts),
            agency=rng.choice(["Public Works", "Parks", None]),
            address=rng.choice(["100 Central Ave", None, "Calle Ñandú 5"]),
        )
        update: dict[str, Any] = {"dataset": rng.choice(["service_requests", "crime"])}
        if status is RequestStatus.CLOSED:
            update["closed_reason"] = rng.choice([*ClosedReason, None])
        if i % 4 == 3:
            update["media_url"] = "https://img.example.city/p.jpg"
        req = req.model_copy(update=update)
        if i % 5 == 4:
            yield RequestOverdue(
                request=req,
                service_request_id=req.service_request_id,
                due_datetime=NOW - timedelta(days=2),
                due_source="service_level",
                target=Target(days=3),
                overdue_by_s=rng.randint(10, 900_000),
                event_id=f"ev-skel-{i}",
            )
        else:
            kind = rng.choice(["opened", "updated", "closed"])
            yield event(req, kind, rng.choice([None, RequestStatus.OPEN]), event_id=f"ev-skel-{i}")


def recipients(ev: RequestEvent, rng: random.Random, count: int) -> Iterator[SubscriberMatched]:
    """The event's recipients, each with their own language, target, label and distance."""
    targets: list[Any] = [
        CircleTarget(lat=27.77, long=-82.64, radius_m=500),
        AreaTarget(geometry=AREA),
        CorridorTarget(coordinates=((0, 0), (0.1, 0.1)), width_m=50),
        CityWideTarget(),
        FollowTarget(service_request_id=ev.request.service_request_id),
    ]
    for j in range(count):
        sub = subscription(
            label=rng.choice([None, "Home", HOSTILE, "Casa ñ"]),
            email=rng.choice([None, f"ü{j}@exämple.org"]) if j % 7 == 6 else None,
        ).model_copy(
            update={
                "target": (target := rng.choice(targets)),
                "filters": SubscriptionFilters(
                    agencies=("Parks",) if target.kind == "citywide" else ()
                ),
                "language": rng.choice(["en", "es", "fr"]),
            }
        )
        yield matched(
            sub,
            ev,
            distance_m=rng.choice([None, 0.0, 230.0, 999.6, 1500.25]),
            rule=rng.choice(["within 500 m of Home", HOSTILE]),
        )


def rendered(renderer: Renderer, command: SubscriberMatched, i: int, full: bool) -> bytes:
    follow = command.subscription.target.kind == "follow"
    mid = f"<m{i}@example.city>"
    random.seed(i)  # the same MIME boundary for both
    if full:
        message = renderer._full_alert(command, follow, mid, NOW, (), None)
    else:
        message = renderer.alert(command, follow, mid, NOW)
    message["X-Connect311-Trace"] = f"t.{i}"  # as the sender adds it
    wire = message.as_bytes()
    assert wire == Message.as_bytes(message)  # mime.Alternative's writer: the generator's bytes
    return wire


@pytest.mark.parametrize("seed", [1, 2])
def test_skeleton_alerts_are_the_full_renders_byte_for_byte(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Links carry the second they were signed: the same second for both renders.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_700_000_000)
    settings = NotifierSettings(
        agencies={"Public Works": Branding(from_name="St. Pete Public Works", footer="PW")},
        from_address="alerts@example.city",
    )
    renderer = Renderer.create(settings, LinkBuilder("https://alerts.example.city", "k"))
    rng = random.Random(seed)
    commands = [c for ev in events(rng) for c in recipients(ev, rng, 8)]
    skeleton = [rendered(renderer, c, i, full=False) for i, c in enumerate(commands)]
    full = [rendered(renderer, c, i, full=True) for i, c in enumerate(commands)]
    assert len(commands) == 96
    for i, (a, b) in enumerate(zip(skeleton, full, strict=True)):
        assert a == b, f"email {i} differs"
    # Rendered once per event, language, follow update or not, distance or not.
    kinds = {
        (
            c.request_event.event_id,
            language(c.subscription.language).code,
            c.subscription.target.kind == "follow",
            c.distance_m is None,
        )
        for c in commands
    }
    assert renderer.skeletons.rendered == len(kinds) < len(commands) / 1.5


def test_a_message_changed_after_it_was_built_is_written_by_the_generator() -> None:
    headers = {"From": "a@example.org", "To": "b@example.org", "Subject": "s"}
    message = compat_message(headers, "line\r\none\rtwo\n", "<p>x</p>")
    assert message.as_bytes() == Message.as_bytes(message)  # \r and \r\n: the policy's \n
    message.set_boundary("changed")
    assert b"--changed--" in message.as_bytes() == Message.as_bytes(message)


@pytest.mark.parametrize("subtype", ["plain", "html"])
def test_an_ascii_part_is_the_part_mimetext_builds(subtype: str) -> None:
    """mime._as_is_part skips MIMEText's work for ASCII bodies: the same object state."""
    for body in ["", "one line", "a\nb\r\nc\rd\n", "<p>x &amp; y</p>\n" * 50, " x " * 300]:
        fast = _text_part(body, subtype)
        built = MIMEText(body, subtype, UTF8_AS_IS, policy=COMPAT_POLICY)  # type: ignore[arg-type]
        assert fast.__dict__ == built.__dict__ and type(fast) is MIMEText
        assert fast.as_bytes() == built.as_bytes()
        fast["X-Changed"] = "only this one"  # its headers are its own, not the template's
        assert "X-Changed" not in _text_part(body, subtype)


def test_an_alternative_is_the_multipart_mimemultipart_builds() -> None:
    boundary = "===============0123456789012345678==.3"
    built = MIMEMultipart("alternative", boundary, policy=COMPAT_POLICY)
    fast = Alternative(boundary)
    assert {k: v for k, v in fast.__dict__.items() if not k.startswith("wire_")} == built.__dict__
    assert fast.wire_type == built["Content-Type"] and fast.get_boundary() == boundary
