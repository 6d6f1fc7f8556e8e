"""Which recorded changes a subscription's feed carries: those its emails carry (pure).

The matcher's rules (services/matcher rules.py), restated over stored history: the target's
place (a box in SQL, then the exact shape here, as the volume preview does), the category,
department, dataset and kind filters, never backfill imports, and, except for a followed
request, only requests made after the alert was confirmed. One difference: the matcher reads
each event's own snapshot, the feed reads the request's current row for category, department,
dataset and place (they rarely change after a request is made). Overdue requests are not
in the history: `overdue` and `overdue_since` say which the feed derives (feed_overdue.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from connect311_contracts.events import EventKind
from connect311_contracts.subscriptions import FollowTarget, Subscription
from connect311_map_api.core.filters import RequestFilters
from connect311_map_api.core.geo import point_matcher, target_bbox
from connect311_map_api.core.state import naive_utc

__all__ = ["EventScope", "subscription_scope"]


@dataclass(frozen=True)
class EventScope:
    """The SQL side of a subscription's changes; `inside` is the exact place test."""

    filters: RequestFilters
    event_types: tuple[str, ...] = ()
    service_request_id: str | None = None
    requested_since: datetime | None = None  # naive UTC, as stored
    inside: Callable[[str, float, float], bool] = lambda _id, _lat, _long: True
    # Overdue requests (derived, core/feed_overdue.py): whether the alert hears of them,
    # and the earliest due time it does (confirmation; None for a followed request).
    overdue: bool = False
    overdue_since: datetime | None = None


def subscription_scope(sub: Subscription) -> EventScope:
    """The changes an active subscription's emails would have carried."""
    f = sub.filters
    target = sub.target
    followed = target.service_request_id if isinstance(target, FollowTarget) else None
    confirmed = sub.confirmed_at or sub.created_at  # as the matcher compiles it
    kinds = f.event_kinds
    # Asked for, never implied; following hears of it unless the kinds leave it out.
    overdue = EventKind.OVERDUE in kinds or (followed is not None and not kinds)
    return EventScope(
        filters=RequestFilters(
            bbox=target_bbox(sub.target),
            service_codes=f.service_codes,
            # A department digest's feed: that department's changes.
            agencies=(target.agency,) if target.kind == "department_digest" else f.agencies,
            datasets=f.datasets,
        ),
        event_types=tuple(f"request.{kind.value}" for kind in f.event_kinds),
        service_request_id=followed,
        # Following is the one case where an older request still alerts (rules.py).
        requested_since=None if followed else naive_utc(confirmed),
        inside=point_matcher(sub.target),
        overdue=overdue,
        # The matcher dates an overdue event by its due time, not the request's making: an
        # alert hears of every request that passes its due time after it was confirmed.
        overdue_since=None if followed else naive_utc(confirmed),
    )
