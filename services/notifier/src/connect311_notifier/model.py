"""The notifier's own output message: an email it gave up on, with the commands it carried."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, TypeAdapter

from connect311_contracts.envelope import Envelope
from connect311_contracts.notifications import NotificationCommand


class NotificationDeadLettered(Envelope):
    """Value on notifications.deadletter.v1 (key: recipient_key): never delivered, and why."""

    event_type: Literal["notification.dead_lettered"] = "notification.dead_lettered"
    email_kind: str
    subscription_id: str
    reason: str = Field(max_length=2000)
    smtp_code: int | None = None
    attempts: int
    commands: list[NotificationCommand]


NOTIFICATION_DEAD_LETTER_ADAPTER: TypeAdapter[NotificationDeadLettered] = TypeAdapter(
    NotificationDeadLettered
)
