"""One command per (request event, recipient): a person's matches travel together."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_contracts.notifications import NOTIFICATION_ADAPTER, AlsoMatched, SubscriberMatched
from connect311_matcher.rules import find_matches, grouped_notifications
from tests.unit.matcher.factories import circle, event, request, subscription
from tests.unit.matcher.test_rules import HOME, index_of


def test_a_followed_request_inside_an_area_alert_is_one_command_with_both_reasons() -> None:
    shop = circle(*HOME, 500, label="Shop", email="owner@example.org")
    follow = subscription(
        {"kind": "follow", "service_request_id": "test:7"}, email="Owner@Example.org "
    )
    neighbour = circle(*HOME, 800, label="Home", email="neighbour@example.org")
    ev = event(request(*HOME, source_id="7"), "updated")

    grouped = grouped_notifications(find_matches(index_of(shop, follow, neighbour), ev), ev)

    by_email = {c.subscription.email.strip().lower(): c for _, c in grouped}
    assert len(grouped) == 2 and set(by_email) == {"owner@example.org", "neighbour@example.org"}
    owner = by_email["owner@example.org"]
    # The followed request leads (its List-Unsubscribe); the area alert rides along.
    assert owner.subscription == follow
    assert [a.subscription for a in owner.also] == [shop]
    assert owner.also[0].matched_rule.startswith("within 500 m of Shop")
    assert by_email["neighbour@example.org"].also == ()
    # A contract message that survives the wire, with a stable id for redelivery.
    again = grouped_notifications(find_matches(index_of(shop, follow, neighbour), ev), ev)
    assert {c.event_id for _, c in grouped} == {c.event_id for _, c in again}
    parsed = NOTIFICATION_ADAPTER.validate_json(owner.model_dump_json())
    assert isinstance(parsed, SubscriberMatched) and parsed == owner
    assert [p.subscription for p in parsed.parts()] == [follow, shop]


def test_a_single_match_keeps_the_single_command_and_its_id() -> None:
    sub = circle(*HOME, 500, label="Home")
    ev = event(request(*HOME))
    [(matches, command)] = grouped_notifications(find_matches(index_of(sub), ev), ev)
    assert len(matches) == 1 and command.also == () and command.parts() == [command]


@settings(max_examples=40, deadline=None)
@given(owners=st.lists(st.sampled_from(["a@x.org", "b@x.org", "c@x.org"]), min_size=1, max_size=12))
def test_every_match_is_in_exactly_one_command_of_its_recipient(owners: list[str]) -> None:
    subs = [circle(*HOME, 100 + 10 * i, email=email) for i, email in enumerate(owners)]
    ev = event(request(*HOME))
    grouped = grouped_notifications(find_matches(index_of(*subs), ev), ev)
    assert len(grouped) == len(set(owners))  # one command per person
    seen = []
    for _, command in grouped:
        parts = command.parts()
        assert {p.subscription.email for p in parts} == {command.subscription.email}
        seen += [p.subscription.subscription_id for p in parts]
    assert sorted(seen) == sorted(s.subscription_id for s in subs)


def test_a_single_match_serializes_as_before_so_older_notifiers_read_it() -> None:
    sub = circle(*HOME, 500, label="Home")
    ev = event(request(*HOME))
    [(_, single)] = grouped_notifications(find_matches(index_of(sub), ev), ev)
    assert '"also"' not in single.model_dump_json()
    merged = single.model_copy(update={"also": (AlsoMatched(subscription=sub, matched_rule="x"),)})
    assert '"also"' in merged.model_dump_json()
    assert NOTIFICATION_ADAPTER.validate_json(merged.model_dump_json()) == merged
