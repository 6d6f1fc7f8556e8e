"""Matcher and notifier through the real broker and a real SMTP server: a followed request
inside the same person's area alert is one email naming both reasons, and stays one after the
event is delivered again and the notifier restarts."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

from aiokafka import TopicPartition

from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import NOTIFICATIONS
from connect311_matcher.app import build_matcher
from tests.integration.matcher.test_matcher_service import (
    SPOT,
    Topics,
    committed_past,
    kafka_fast,
    running,
    topics,  # noqa: F401  (the fixture)
)
from tests.integration.matcher.test_matcher_service import eventually as eventually_async
from tests.integration.notifier.conftest import StartNotifier, addressed_to, eventually
from tests.support.smtp import SmtpSink
from tests.unit.matcher.factories import circle, event, request, subscription


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_follow_and_area_alert_of_one_person_make_one_email_even_after_redelivery(
    kafka_settings: KafkaSettings,
    topics: Topics,  # noqa: F811
    smtp_sink: SmtpSink,
    start_notifier: StartNotifier,
) -> None:
    tag = uuid.uuid4().hex[:8]
    owner = f"owner-{tag}@example.org"
    followed = request(*SPOT, source_id=f"{tag}-1", service_name="Pothole")
    await topics.put_subscription(
        subscription(
            {"kind": "follow", "service_request_id": followed.service_request_id}, email=owner
        )
    )
    await topics.put_subscription(circle(*SPOT, 500, label="Shop", email=owner))
    notifier = await start_notifier(smtp_sink.port)  # type: ignore[attr-defined]
    settings = topics.settings(notifications_topic=NOTIFICATIONS.name)
    matcher = build_matcher(settings, kafka_fast(topics.kafka))

    async def matched(ev: object) -> None:
        """Publish a request event; return once the matcher committed past it (its
        notification command is on notifications.v1)."""
        partition, offset = await topics.put_event(ev)
        tp = TopicPartition(topics.events.name, partition)
        await eventually_async(
            lambda: committed_past(topics.kafka, settings.group_id, tp, offset), "the match"
        )

    status_change = event(followed, "updated")
    async with running(matcher):
        await matched(status_change)
        await eventually(lambda: len(addressed_to(smtp_sink, [owner])) >= 1, what="the alert")

        # The notifier restarts, and meanwhile the same event is delivered again.
        notifier.stop.set()
        await notifier.task
        await matched(status_change)
        await start_notifier(
            smtp_sink.port,  # type: ignore[attr-defined]
            join=True,
            group_id=notifier.settings.group_id,
            database_url=notifier.settings.database_url,
        )
        # A later event for the same person: same key, same partition, so it is consumed
        # after the redelivered command. Its email arriving proves that one was handled.
        later = event(request(*SPOT, source_id=f"{tag}-2", service_name="Graffiti"))
        await matched(later)
        await eventually(
            lambda: any("Graffiti" in str(m["Subject"]) for m in addressed_to(smtp_sink, [owner])),
            timeout_s=40,
            what="the later event's email",
        )

    got = addressed_to(smtp_sink, [owner])
    about_followed = [m for m in got if "Pothole" in str(m["Subject"])]
    assert len(got) == 2 and len(about_followed) == 1, [m["Subject"] for m in got]
    (email,) = about_followed
    text = plain(email)
    assert email["Subject"].startswith("Update: Pothole is now")
    assert "Why you got this (one email for 2 of your alerts):" in text
    assert "- You follow this request." in text
    assert "- It is within 500 m of Shop (0 m away)." in text
    assert text.count("Unsubscribe from ") == 2 and email["List-Unsubscribe"]
