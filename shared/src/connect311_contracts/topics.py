"""Every Kafka topic, its key, partitions and owner. Names carry a version suffix."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_TOPICS",
    "DEAD_LETTERS",
    "NOTIFICATIONS",
    "NOTIFICATIONS_DEAD",
    "REQUEST_EVENTS",
    "REQUEST_REJECTS",
    "SUBSCRIPTIONS",
    "SUBSCRIPTION_FEEDBACK",
    "TopicSpec",
]


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the system creates it."""

    name: str
    partitions: int
    key: str
    owner: str
    compacted: bool = False


REQUEST_EVENTS = TopicSpec("requests.events.v1", 6, "service_request_id", "ingestor")
REQUEST_REJECTS = TopicSpec("requests.rejects.v1", 1, "source", "ingestor")
SUBSCRIPTIONS = TopicSpec("subscriptions.v1", 3, "subscription_id", "map-api", compacted=True)
SUBSCRIPTION_FEEDBACK = TopicSpec("subscriptions.feedback.v1", 3, "subscription_id", "notifier")
NOTIFICATIONS = TopicSpec("notifications.v1", 6, "recipient_key", "matcher, map-api")
NOTIFICATIONS_DEAD = TopicSpec("notifications.deadletter.v1", 1, "recipient_key", "notifier")
DEAD_LETTERS = TopicSpec("deadletters.v1", 1, "service", "every consumer")

ALL_TOPICS: tuple[TopicSpec, ...] = (
    REQUEST_EVENTS,
    REQUEST_REJECTS,
    SUBSCRIPTIONS,
    SUBSCRIPTION_FEEDBACK,
    NOTIFICATIONS,
    NOTIFICATIONS_DEAD,
    DEAD_LETTERS,
)
