"""Who hears about an event: the rules on top of the spatial index (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from connect311_contracts.datasets import dataset_words
from connect311_contracts.events import EventKind, RequestEvent, RequestOverdue
from connect311_contracts.notifications import (
    MAX_ALSO_MATCHED,
    AlsoMatched,
    SubscriberMatched,
    recipient_key,
)
from connect311_contracts.request import ServiceRequest
from connect311_contracts.subscriptions import (
    Subscription,
    SubscriptionFilters,
)
from connect311_matcher.grid import SlotArray
from connect311_matcher.index import SubscriptionIndex, circle_distances_m
from connect311_matcher.targets import Compiled

NOTIFICATION_NS = uuid.UUID("6f1b7c2e-3b0e-4c55-9f36-2f5d0b1f7a11")
_NO_FILTERS = SubscriptionFilters()


@dataclass(frozen=True, slots=True)
class Match:
    """One subscription an event concerns, how far away, and why (for the email)."""

    compiled: Compiled
    subscription: Subscription
    distance_m: float | None
    rule: str


def passes_filters(
    filters: SubscriptionFilters | None, event: RequestEvent, follows: bool = False
) -> bool:
    """True when the event's request passes every non-empty filter (None: no filters).

    Overdue is asked for, never implied by "any change": only a subscription that lists it
    hears of it, and one that follows the request (unless it narrowed its kinds without it).
    """
    r = event.request
    if filters is None:
        return event.kind is not EventKind.OVERDUE or follows
    if event.kind is EventKind.OVERDUE:
        kinds = filters.event_kinds
        wanted = EventKind.OVERDUE in kinds or (follows and not kinds)
    else:
        wanted = not filters.event_kinds or event.kind in filters.event_kinds
    return (
        wanted
        and (not filters.service_codes or r.service_code in filters.service_codes)
        and (not filters.agencies or r.agency_responsible in filters.agencies)
        and (not filters.datasets or r.dataset in filters.datasets)
    )


def news_at(event: RequestEvent) -> float:
    """When the news happened (timestamp): subscriptions confirmed later do not hear of it.

    The request's making for a change to it; the due time for an overdue request, so an
    alert asking for overdue requests hears of every one that passes its due time after it
    was confirmed, however old the request.
    """
    if isinstance(event, RequestOverdue):
        return event.due_datetime.timestamp()
    return event.request.requested_datetime.timestamp()


def eligible_slots(index: SubscriptionIndex, slots: SlotArray, event: RequestEvent) -> SlotArray:
    """Slots confirmed no later than the news (`news_at`), whose filters pass (vectorized)."""
    if not len(slots):
        return slots
    s = index.slots
    requested = news_at(event)
    # Shortcuts for the common case: nothing confirmed after the request, nothing filtered.
    kept = (
        slots if index.latest_confirmed <= requested else slots[s.confirmed_ts[slots] <= requested]
    )
    if event.kind is EventKind.OVERDUE:  # asked for only: an unfiltered circle never hears it
        kept = kept[s.filtered[kept]]
    if not index.filtered_count:
        return kept
    narrowed = s.filtered[kept]
    if not narrowed.any():
        return kept
    ok = np.array(
        [passes_filters(index.get(int(slot)).filters, event) for slot in kept[narrowed]],
        dtype=np.bool_,
    )
    keep = ~narrowed
    keep[np.flatnonzero(narrowed)[ok]] = True
    result: SlotArray = kept[keep]
    return result


Hit = tuple[bytes, Compiled, float | None, str]
"""One match without models: (recipient key, subscription, distance in metres or None, rule)."""


def find_hits(index: SubscriptionIndex, event: RequestEvent) -> list[Hit]:
    """Every match of one request event, at most one per subscription, as plain tuples.

    Nothing is parsed per match: the rule text comes from what the index holds, and the
    circles' distances from one vectorized pass (at 1M circles an event matches thousands).
    """
    if event.backfill:  # history imports never alert
        return []
    r = event.request
    hits: list[Hit] = []
    slots = eligible_slots(index, index.circles_at(r.lat, r.long), event)
    if len(slots):
        circles = [index.get(slot) for slot in slots.tolist()]
        away = circle_distances_m(index.slots.unit[slots], r.lat, r.long)
        radii = index.slots.radius_m[slots].tolist()
        keys = index.recipients(slots)
        hits = [
            (key, c, d, circle_rule(radius, c.label, d))
            for key, c, d, radius in zip(keys, circles, away, radii, strict=True)
        ]
    for c, d in index.shapes_at(r.lat, r.long):
        if _recent_enough(c, event) and passes_filters(c.filters, event):
            hits.append((index.recipient(c.slot), c, d, shape_rule(c, d)))
    for c in index.citywide(r):
        if _recent_enough(c, event) and passes_filters(c.filters, event):
            hits.append((index.recipient(c.slot), c, None, citywide_rule(c.filters, r)))
    # Following a request is the one case where an older request still alerts.
    for c in index.followers(r.service_request_id):
        if passes_filters(c.filters, event, follows=True):
            rule = f"you follow request {r.service_request_id}"
            hits.append((index.recipient(c.slot), c, None, rule))
    return hits


def find_matches(index: SubscriptionIndex, event: RequestEvent) -> list[Match]:
    """Every match of one request event, at most one per subscription (with its model)."""
    return [Match(c, c.subscription, d, rule) for _, c, d, rule in find_hits(index, event)]


def _recent_enough(c: Compiled, event: RequestEvent) -> bool:
    return c.confirmed_ts <= news_at(event)


def circle_rule(radius_m: float, label: str | None, away: float) -> str:
    """e.g. 'within 500 m of Home (312 m away)'."""
    return f"within {radius_m:g} m of {label or 'your place'} ({away:.0f} m away)"


def shape_rule(c: Compiled, distance_m: float | None) -> str:
    """e.g. "inside your area 'School zone'" or 'within 100 m of your route (12 m away)'."""
    label = c.label
    if c.kind == "area":
        return f"inside your area '{label}'" if label else "inside your area"
    if c.kind == "corridor":
        route = f"your route '{label}'" if label else "your route"
        return f"within {c.width_m:g} m of {route} ({distance_m or 0:.0f} m away)"
    raise TypeError(f"shape_rule needs an area or a route, not a {c.kind}")


def citywide_rule(filters: SubscriptionFilters | None, r: ServiceRequest) -> str:
    """e.g. 'all Water Resources requests', 'all crime incidents', naming the filter that
    let this request through (a dataset in its own words: a crime is not a request)."""
    f = filters or _NO_FILTERS
    if f.agencies:
        what = r.agency_responsible
    elif f.service_codes:
        what = r.service_name or r.service_code
    else:
        return f"all {dataset_words(r.dataset).items}"
    return f"all {what} requests"


_PRIMARY_ORDER = {"follow": 0, "circle": 1, "corridor": 2, "area": 3, "citywide": 4}
"""Which match leads a merged email: the request the person follows, then the nearest kinds."""


def _primary_first(match: Match) -> tuple[int, str]:
    return _PRIMARY_ORDER.get(match.subscription.target.kind, 9), match.subscription.subscription_id


def grouped_notifications(
    matches: list[Match], event: RequestEvent
) -> list[tuple[list[Match], SubscriberMatched]]:
    """One command per recipient: every match of one person for one event, in one email.

    A followed request inside the same person's area alert is one email naming both
    reasons. The grouping is complete here because one matcher instance handles the whole
    event (the events topic is keyed by request), so several instances never split it.
    """
    by_recipient: dict[str, list[Match]] = {}
    for match in matches:
        by_recipient.setdefault(recipient_key(match.subscription.email), []).append(match)
    out = []
    for key, group in by_recipient.items():
        out += recipient_notifications(key, group, event)
    return out


def recipient_notifications(
    key: str, group: list[Match], event: RequestEvent
) -> list[tuple[list[Match], SubscriberMatched]]:
    """The commands for one recipient's matches: primary first, split past MAX_ALSO_MATCHED."""
    group = sorted(group, key=_primary_first)
    out = []
    for start in range(0, len(group), MAX_ALSO_MATCHED + 1):  # absurd counts: split
        chunk = group[start : start + MAX_ALSO_MATCHED + 1]
        out.append((chunk, merged_notification(key, chunk, event)))
    return out


def merged_notification(key: str, matches: list[Match], event: RequestEvent) -> SubscriberMatched:
    """The command for one recipient's matches (primary first); its id is stable too."""
    if len(matches) == 1:
        return notification(matches[0], event)
    ids = ",".join(m.subscription.subscription_id for m in matches)
    command = notification(matches[0], event)
    return command.model_copy(
        update={
            "event_id": str(uuid.uuid5(NOTIFICATION_NS, f"{event.event_id}/{key}/{ids}")),
            "also": tuple(
                AlsoMatched(
                    subscription=m.subscription,
                    distance_m=m.distance_m,
                    matched_rule=m.rule[:500],
                )
                for m in matches[1:]
            ),
        }
    )


def notification(match: Match, event: RequestEvent) -> SubscriberMatched:
    """The notification command for one match; its id is stable so redelivery can be deduped."""
    sub = match.subscription
    event_id = uuid.uuid5(NOTIFICATION_NS, f"{event.event_id}/{sub.subscription_id}")
    return SubscriberMatched(
        event_id=str(event_id),
        trace_id=event.trace_id,
        subscription=sub,
        request_event=event,
        distance_m=match.distance_m,
        matched_rule=match.rule[:500],
    )
