"""Overdue requests: heard only by subscriptions that ask for them (and by followers), with
the area, department and category filters applied as for every other event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connect311_contracts.events import EventKind, RequestOverdue
from connect311_contracts.notifications import NOTIFICATION_ADAPTER
from connect311_contracts.request import ServiceRequest
from connect311_contracts.service_levels import Target
from connect311_contracts.subscriptions import Subscription, SubscriptionFilters
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import find_matches, grouped_notifications
from tests.unit.matcher.factories import LATER, circle, event, request, subscription

HOME = (27.77, -82.64)
FAR = (27.90, -82.64)  # about 14 km north
DUE = LATER + timedelta(days=5)
OVERDUE = (EventKind.OVERDUE,)


def overdue(req: ServiceRequest, **fields: Any) -> RequestOverdue:
    values: dict[str, Any] = {
        "request": req,
        "service_request_id": req.service_request_id,
        "due_datetime": DUE,
        "due_source": "service_level",
        "target": Target(days=5),
        "overdue_by_s": 90,
    }
    return RequestOverdue(**(values | fields))


def kinds(*names: str, **filters: Any) -> SubscriptionFilters:
    return SubscriptionFilters(event_kinds=tuple(EventKind(n) for n in names), **filters)


def square(lat: float, lon: float, half: float = 0.01) -> dict[str, Any]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"kind": "area", "geometry": {"type": "Polygon", "coordinates": [ring]}}


def heard(subs: list[Subscription], ev: Any, grid: bool = False) -> set[str]:
    index = SubscriptionIndex()
    for sub in subs:
        index.upsert(sub)
    if grid:
        index.rebuild_now()  # the cover grid's vectorized path, not only the delta
    return {m.subscription.subscription_id for m in find_matches(index, ev)}


def test_who_hears_an_overdue_request() -> None:
    req = request(*HOME, agency_responsible="Streets", service_code="POT")
    ids: dict[str, Subscription] = {
        "any change": circle(*HOME, 500),
        "opened only": circle(*HOME, 500, filters=kinds("opened")),
        "overdue": circle(*HOME, 500, filters=kinds("overdue")),
        "overdue, far": circle(*FAR, 500, filters=kinds("overdue")),
        "overdue + opened, other category": circle(
            *HOME, 500, filters=kinds("opened", "overdue", service_codes=("GRAFFITI",))
        ),
        "area, overdue": subscription(square(*HOME), filters=kinds("overdue")),
        "area, any change": subscription(square(*HOME)),
        "dept, overdue": subscription(
            {"kind": "citywide"}, filters=kinds("overdue", agencies=("Streets",))
        ),
        "other dept, overdue": subscription(
            {"kind": "citywide"}, filters=kinds("overdue", agencies=("Water",))
        ),
        "dept, any change": subscription(
            {"kind": "citywide"}, filters=kinds(agencies=("Streets",))
        ),
        "follow": subscription({"kind": "follow", "service_request_id": req.service_request_id}),
        "follow, closes only": subscription(
            {"kind": "follow", "service_request_id": req.service_request_id},
            filters=kinds("closed"),
        ),
    }
    name = {sub.subscription_id: label for label, sub in ids.items()}
    expected = {"overdue", "area, overdue", "dept, overdue", "follow"}
    for grid in (False, True):
        assert {name[s] for s in heard(list(ids.values()), overdue(req), grid)} == expected
    # An overdue-only alert hears nothing else; "any change" still hears every change.
    opened = {name[s] for s in heard(list(ids.values()), event(req), grid=True)}
    assert "overdue" not in opened and "area, overdue" not in opened
    assert {"any change", "opened only", "area, any change", "dept, any change"} <= opened


def test_an_index_of_unfiltered_circles_only_hears_no_overdue() -> None:
    # No subscription has a filter: the shortcut that skips filter checks must not let
    # an overdue event through to "any change" circles.
    subs = [circle(*HOME, 500), circle(*HOME, 2000)]
    assert heard(subs, overdue(request(*HOME)), grid=True) == set()
    assert heard(subs, overdue(request(*HOME))) == set()


def test_an_alert_confirmed_before_the_due_time_hears_of_an_older_request() -> None:
    req = request(*HOME)  # made on LATER, due five days after
    before_due = circle(*HOME, 500, filters=kinds("overdue"), confirmed_at=DUE - timedelta(days=1))
    after_due = circle(*HOME, 500, filters=kinds("overdue"), confirmed_at=DUE + timedelta(days=1))
    assert heard([before_due, after_due], overdue(req)) == {before_due.subscription_id}
    # Its opening came before the alert was confirmed: not news to it.
    assert heard([before_due], event(req)) == set()


def test_backfill_overdue_never_alerts() -> None:
    sub = circle(*HOME, 500, filters=kinds("overdue"))
    assert heard([sub], overdue(request(*HOME), backfill=True)) == set()


def test_the_command_carries_the_overdue_event_over_the_wire() -> None:
    sub = subscription(
        {"kind": "follow", "service_request_id": "test:1"}, email="someone@example.org"
    )
    ev = overdue(request(*HOME))
    index = SubscriptionIndex()
    index.upsert(sub)
    [(_, command)] = grouped_notifications(find_matches(index, ev), ev)
    again = NOTIFICATION_ADAPTER.validate_json(command.model_dump_json())
    assert again == command
    assert isinstance(again.request_event, RequestOverdue)
    assert again.request_event.target == Target(days=5)


def test_a_department_digest_is_held_by_no_index_and_hears_no_event() -> None:
    """The map API sends a department's digest once a day: the matcher never matches it,
    not even the overdue events of that department."""
    req = request(*HOME, agency_responsible="Streets")
    digest = subscription({"kind": "department_digest", "agency": "Streets"}, delivery="daily")
    index = SubscriptionIndex()
    assert index.upsert(digest) is None
    assert digest.subscription_id not in index and len(index) == 0
    assert heard([digest], overdue(req)) == set()
    assert heard([digest], event(req, "opened")) == set()
    with pytest.raises(ValueError, match="delivery must be 'daily'"):
        subscription({"kind": "department_digest", "agency": "Streets"}, delivery="instant")
