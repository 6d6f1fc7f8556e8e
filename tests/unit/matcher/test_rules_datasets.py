"""A subscription narrowed to datasets hears only about those: "crime within 500 m of my
school" gets crime incidents there, not the 311 requests or code violations beside them."""

from __future__ import annotations

from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import find_matches
from tests.unit.matcher.factories import circle, event, request, subscription

SCHOOL = (38.5816, -121.4944)


def test_a_crime_only_alert_hears_only_crime_incidents() -> None:
    index = SubscriptionIndex()
    crime_only = circle(*SCHOOL, 500, label="School", filters={"datasets": ["crime"]})
    anything = circle(*SCHOOL, 500, label="Home")
    index.upsert(crime_only)
    index.upsert(anything)
    heard: dict[str, list[str]] = {}
    for n, dataset in enumerate(("311", "crime", "code_violations")):
        # Crime incidents arrive closed at the incident time, as first-seen ("opened") events.
        status = "closed" if dataset == "crime" else "open"
        req = request(*SCHOOL, source_id=str(n), dataset=dataset, status=status)
        heard[dataset] = sorted(m.subscription.label or "" for m in find_matches(index, event(req)))
    assert heard == {"311": ["Home"], "crime": ["Home", "School"], "code_violations": ["Home"]}


def test_a_city_wide_dataset_alert_names_what_it_follows() -> None:
    index = SubscriptionIndex()
    index.upsert(subscription({"kind": "citywide"}, filters={"datasets": ["crime"]}))
    [match] = find_matches(index, event(request(38.6, -121.5, dataset="crime", status="closed")))
    assert match.rule == "all crime incidents"
    assert find_matches(index, event(request(38.6, -121.5, dataset="311"))) == []
