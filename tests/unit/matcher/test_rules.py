"""Matching rules: who hears about an event, and the reason the email will give."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connect311_contracts.events import EventKind
from connect311_contracts.notifications import NOTIFICATION_ADAPTER, SubscriberMatched
from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_matcher.geodesy import destination
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import find_matches, notification
from tests.unit.matcher.factories import CONFIRMED, LATER, circle, event, request, subscription

HOME = (27.77, -82.64)


def index_of(*subs: object) -> SubscriptionIndex:
    index = SubscriptionIndex()
    for sub in subs:
        index.upsert(sub)  # type: ignore[arg-type]
    return index


def matched_ids(index: SubscriptionIndex, ev: object) -> list[str]:
    return sorted(m.subscription.subscription_id for m in find_matches(index, ev))  # type: ignore[arg-type]


def test_circle_match_names_the_place_and_distance() -> None:
    sub = circle(*HOME, 500, label="Home")
    lat, lon = destination(*HOME, 30, 312)
    [match] = find_matches(index_of(sub), event(request(lat, lon)))
    assert match.distance_m == pytest.approx(312, abs=0.01)
    assert match.rule == "within 500 m of Home (312 m away)"


@pytest.mark.parametrize(
    "status",
    [SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED, SubscriptionStatus.DISABLED],
)
def test_only_active_subscriptions_match(status: SubscriptionStatus) -> None:
    sub = circle(*HOME, 500, status=status)
    index = index_of(sub)
    assert len(index) == 0
    assert find_matches(index, event(request(*HOME))) == []


def test_deactivating_a_subscription_stops_its_matches() -> None:
    sub = circle(*HOME, 500)
    index = index_of(sub)
    assert matched_ids(index, event(request(*HOME))) == [sub.subscription_id]
    index.upsert(sub.model_copy(update={"status": SubscriptionStatus.UNSUBSCRIBED}))
    assert matched_ids(index, event(request(*HOME))) == []


def test_backfill_events_never_alert() -> None:
    index = index_of(circle(*HOME, 500))
    assert find_matches(index, event(request(*HOME), backfill=True)) == []


def test_requests_made_before_confirmation_do_not_alert() -> None:
    index = index_of(circle(*HOME, 500))
    before = request(*HOME, requested_datetime=datetime(2023, 12, 31, tzinfo=UTC))
    assert find_matches(index, event(before, "updated")) == []
    at_confirmation = request(*HOME, requested_datetime=CONFIRMED)
    assert len(find_matches(index, event(at_confirmation, "updated"))) == 1


def test_a_followed_request_alerts_even_if_opened_before_confirmation() -> None:
    follow = subscription({"kind": "follow", "service_request_id": "test:77"})
    near = circle(*HOME, 500)
    index = index_of(follow, near)
    old = request(*HOME, source_id="77", requested_datetime=datetime(2023, 5, 1, tzinfo=UTC))
    [match] = find_matches(index, event(old, "closed"))
    assert match.subscription == follow == match.compiled.subscription
    assert match.rule == "you follow request test:77"
    assert match.distance_m is None
    assert (
        find_matches(
            index,
            event(
                request(*HOME, source_id="78", requested_datetime=datetime(2023, 5, 1, tzinfo=UTC))
            ),
        )
        == []
    )


@pytest.mark.parametrize(
    ("filters", "passes"),
    [
        ({"service_codes": ["POTHOLE"]}, True),
        ({"service_codes": ["GRAFFITI"]}, False),
        ({"agencies": ["Transportation"]}, True),
        ({"agencies": ["Water Resources"]}, False),
        ({"datasets": ["311"]}, True),
        ({"datasets": ["code"]}, False),
        ({"event_kinds": ["updated", "closed"]}, True),
        ({"event_kinds": ["opened"]}, False),
        ({"service_codes": ["POTHOLE"], "event_kinds": ["opened"]}, False),
    ],
)
def test_filters_narrow_every_kind_of_subscription(
    filters: dict[str, list[str]], passes: bool
) -> None:
    req = request(*HOME, service_code="POTHOLE", agency_responsible="Transportation")
    subs = [
        circle(*HOME, 500, filters=filters),
        subscription(
            {"kind": "follow", "service_request_id": req.service_request_id}, filters=filters
        ),
        subscription(
            {
                "kind": "corridor",
                "coordinates": [(HOME[1] - 0.01, HOME[0]), (HOME[1] + 0.01, HOME[0])],
                "width_m": 50,
            },
            filters=filters,
        ),
    ]
    found = matched_ids(index_of(*subs), event(req, "closed"))
    assert found == (sorted(s.subscription_id for s in subs) if passes else [])


def test_city_wide_feed_matches_anywhere_that_passes_its_filter() -> None:
    water = subscription({"kind": "citywide"}, filters={"agencies": ["Water Resources"]})
    index = index_of(water)
    far = request(25.0, -80.0, agency_responsible="Water Resources")
    [match] = find_matches(index, event(far))
    assert match.rule == "all Water Resources requests"
    assert find_matches(index, event(request(25.0, -80.0, agency_responsible="Parks"))) == []


def test_city_wide_feeds_are_looked_up_by_the_request_not_scanned() -> None:
    # Every combination of filters: each event finds exactly the feeds its filters pass,
    # while looking at none filed under another category, agency or dataset.
    choices = {
        "service_codes": [[], ["POTHOLE"], ["POTHOLE", "GRAFFITI"]],
        "agencies": [[], ["Water"], ["Parks", "Water"]],
        "datasets": [[], ["311"], ["crime"]],
    }
    feeds = [
        subscription({"kind": "citywide"}, filters=f)
        for codes in choices["service_codes"]
        for agencies in choices["agencies"]
        for datasets in choices["datasets"]
        if (f := {"service_codes": codes, "agencies": agencies, "datasets": datasets})
        and (codes or agencies or datasets)
    ]
    index = index_of(*feeds)
    for code in ("POTHOLE", "GRAFFITI", "TREE", None):
        for agency in ("Water", "Parks", "Roads", None):
            for dataset in ("311", "crime"):
                req = request(25.0, -80.0, service_code=code, agency_responsible=agency)
                req = req.model_copy(update={"dataset": dataset})
                wanted = sorted(
                    s.subscription_id
                    for s in feeds
                    if (not s.filters.service_codes or code in s.filters.service_codes)
                    and (not s.filters.agencies or agency in s.filters.agencies)
                    and (not s.filters.datasets or dataset in s.filters.datasets)
                )
                assert matched_ids(index, event(req)) == wanted, (code, agency, dataset)
                looked = {c.subscription_id for c in index.citywide(req)}
                assert set(wanted) <= looked
                if code is None and agency is None and dataset == "crime":
                    assert len(looked) < len(feeds) / 2
    # A feed that is removed is no longer filed anywhere (feeds[0]: dataset 311 only).
    req = request(25.0, -80.0, service_code="POTHOLE", agency_responsible="Water")
    assert feeds[0].subscription_id in {c.subscription_id for c in index.citywide(req)}
    index.remove(feeds[0].subscription_id)
    assert feeds[0].subscription_id not in {c.subscription_id for c in index.citywide(req)}


def test_area_and_corridor_rules_read_like_a_reason() -> None:
    lon, lat = HOME[1], HOME[0]
    square = [
        [lon - 0.01, lat - 0.01],
        [lon + 0.01, lat - 0.01],
        [lon + 0.01, lat + 0.01],
        [lon - 0.01, lat + 0.01],
        [lon - 0.01, lat - 0.01],
    ]
    area = subscription(
        {"kind": "area", "geometry": {"type": "Polygon", "coordinates": [square]}},
        label="School zone",
    )
    route = subscription(
        {"kind": "corridor", "coordinates": [(lon - 0.01, lat), (lon + 0.01, lat)], "width_m": 100}
    )
    point = destination(lat, lon, 0, 40)
    rules = sorted(m.rule for m in find_matches(index_of(area, route), event(request(*point))))
    assert rules == ["inside your area 'School zone'", "within 100 m of your route (40 m away)"]


def test_notification_is_a_valid_contract_message_with_a_stable_id() -> None:
    sub = circle(*HOME, 500, label="Home")
    ev = event(request(*HOME), trace_id="trace-1")
    [match] = find_matches(index_of(sub), ev)
    first, again = notification(match, ev), notification(match, ev)
    assert first.event_id == again.event_id  # redelivery produces the same id: dedupable
    parsed = NOTIFICATION_ADAPTER.validate_json(first.model_dump_json())
    assert isinstance(parsed, SubscriberMatched)
    assert parsed.subscription == sub and parsed.request_event == ev
    assert parsed.trace_id == "trace-1" and parsed.distance_m == pytest.approx(0, abs=1e-6)
    assert EventKind(parsed.request_event.kind) is EventKind.OPENED
    assert parsed.request_event.request.requested_datetime == LATER


def test_unfollowing_stops_the_alerts_and_refollowing_restarts_them() -> None:
    follow = subscription({"kind": "follow", "service_request_id": "test:90"})
    index = index_of(follow)
    ev = event(request(*HOME, source_id="90"), "updated")
    assert matched_ids(index, ev) == [follow.subscription_id]
    index.remove(follow.subscription_id)
    assert matched_ids(index, ev) == []
    assert index.followers("test:90") == []
    index.upsert(follow)
    assert matched_ids(index, ev) == [follow.subscription_id]
