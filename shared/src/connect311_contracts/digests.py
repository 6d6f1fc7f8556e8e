"""A department's daily digest: the command the map API sends the notifier once a day.

The map API holds every request's current state and works due dates out by the shared rule
(`due`), so it writes the digest's content; the notifier only renders and sends it. The
event id is derived from (subscription, digest day): a second map API replica, or a restart
that publishes the same day again, carries the same id and the notifier's ledger keeps one.
Allow-listed content: request id, category, address, times. No reporter data.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connect311_contracts.envelope import Envelope
from connect311_contracts.request import UtcDatetime
from connect311_contracts.service_levels import Target
from connect311_contracts.subscriptions import Subscription

__all__ = [
    "DIGEST_LIST_MAX",
    "DepartmentDigestRequested",
    "DigestEntry",
    "digest_event_id",
]

DIGEST_LIST_MAX = 50
"""The most requests one list of a digest names (the counts are always complete)."""
_NAMESPACE = uuid.UUID("6f1b1c52-8d3e-4b8a-9a55-0c311d16e57a")


def digest_event_id(subscription_id: str, day: date) -> str:
    """The one event id of a subscription's digest for a day (the same on every replica)."""
    return str(uuid.uuid5(_NAMESPACE, f"{subscription_id}\x1f{day.isoformat()}"))


class DigestEntry(BaseModel):
    """One request as a digest lists it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_request_id: str = Field(min_length=3, max_length=300)
    service_name: str | None = Field(default=None, max_length=300)
    address: str | None = Field(default=None, max_length=500)
    requested_datetime: UtcDatetime
    age_s: int = Field(ge=0, description="Whole seconds since it was made, at `as_of`")
    due_datetime: UtcDatetime | None = None
    due_source: Literal["feed", "service_level"] | None = None
    target: Target | None = Field(default=None, description="The service level, if one set it")
    overdue_by_s: int | None = Field(default=None, ge=0, description="Open and late: how late")


class DepartmentDigestRequested(Envelope):
    """Send one department digest: `agency`'s overdue requests (most late first) and its
    oldest open requests (oldest first), counted at `as_of`, for the local day `day`."""

    event_type: Literal["department.digest_requested"] = "department.digest_requested"
    subscription: Subscription
    agency: str = Field(min_length=1, max_length=200)
    day: date = Field(description="The city-time day this digest is for (once per day)")
    as_of: UtcDatetime
    open_count: int = Field(ge=0)
    overdue_count: int = Field(ge=0)
    overdue: tuple[DigestEntry, ...] = Field(default=(), max_length=DIGEST_LIST_MAX)
    oldest_open: tuple[DigestEntry, ...] = Field(default=(), max_length=DIGEST_LIST_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> DepartmentDigestRequested:
        target = self.subscription.target
        if target.kind != "department_digest" or target.agency != self.agency:
            raise ValueError("a department digest goes to that department's digest subscription")
        if len(self.overdue) > self.overdue_count or len(self.oldest_open) > self.open_count:
            raise ValueError("a digest lists no more requests than it counts")
        if self.overdue_count > self.open_count:
            raise ValueError("overdue requests are open requests")
        return self
