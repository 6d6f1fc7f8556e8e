"""The per-event path (commands.py) writes what the model path would, for what brute force finds.

Two oracles: a scan of every subscription (who matches, how far, the rule text from the
subscription model as an email would word it), and the models themselves (grouped
SubscriberMatched commands, `encode`d): the bytes the service publishes must decode to the
same commands, with the same keys, in the same order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connect311_bus.kafka import encode
from connect311_contracts.notifications import recipient_key
from connect311_contracts.subscriptions import CircleTarget, Subscription
from connect311_matcher.commands import encoded_commands, uuid5
from connect311_matcher.geodesy import destination, distance_m
from connect311_matcher.index import SubscriptionIndex
from connect311_matcher.rules import find_hits, find_matches, grouped_notifications
from tests.unit.matcher.factories import CONFIRMED, EVENT_TYPES, LATER, event, request, subscription
from tests.unit.matcher.test_index_oracle import area_sub, brute_force, corridor_sub

HOME = (27.77, -82.64)
NOW = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
EMAILS = ["a@x.org", "B@x.org ", "b@x.org", "c@x.org", "d@x.org"]  # two spellings of b
LABELS = st.one_of(st.none(), st.text(min_size=1, max_size=30), st.just('50 % "off" \\ é'))


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[Subscription], Any]:
    """Subscriptions of a few people around HOME (some sharing an address) and one event."""
    offset = st.floats(-0.02, 0.02)
    own: dict[str, Any] = {
        "email": st.sampled_from(EMAILS),
        "label": LABELS,
        "language": st.sampled_from(["en", "es"]),
        "confirmed_at": st.sampled_from([CONFIRMED, LATER + timedelta(days=1)]),
    }
    subs = []
    for _ in range(draw(st.integers(0, 12))):
        target = {
            "kind": "circle",
            "lat": HOME[0] + draw(offset),
            "long": HOME[1] + draw(offset),
            "radius_m": draw(st.floats(50, 5_000)),
        }
        subs.append(subscription(target, **{k: draw(v) for k, v in own.items()}))
    for _ in range(draw(st.integers(0, 3))):
        shape = area_sub(
            HOME[0] + draw(offset), HOME[1] + draw(offset), draw(st.floats(0.005, 0.03))
        )
        subs.append(with_fields(shape, {k: draw(v) for k, v in own.items()}))
    for _ in range(draw(st.integers(0, 3))):
        pts = [(HOME[1] + draw(offset), HOME[0] + draw(offset)) for _ in range(3)]
        route = corridor_sub(pts, draw(st.floats(5, 2_000)))
        subs.append(with_fields(route, {k: draw(v) for k, v in own.items()}))
    for _ in range(draw(st.integers(0, 2))):
        filters = draw(st.sampled_from([{"agencies": ["Parks"]}, {"service_codes": ["POT"]}]))
        fields = {k: draw(v) for k, v in own.items()}
        subs.append(subscription({"kind": "citywide"}, filters=filters, **fields))
    if draw(st.booleans()):
        fields = {k: draw(v) for k, v in own.items()}
        subs.append(subscription({"kind": "follow", "service_request_id": "test:7"}, **fields))
    lat, lon = HOME[0] + draw(offset), HOME[1] + draw(offset)
    near_edge = draw(st.booleans())
    if subs and near_edge:  # a hair from a circle's edge
        t = draw(st.sampled_from(subs)).target
        if isinstance(t, CircleTarget):
            away = t.radius_m + draw(st.sampled_from([-0.01, 0.01]))
            lat, lon = destination(t.lat, t.long, draw(st.floats(0, 360)), away)
    req = request(
        lat,
        lon,
        source_id="7",
        agency_responsible=draw(st.sampled_from([None, "Parks"])),
        service_code=draw(st.sampled_from([None, "POT"])),
        service_name=draw(st.sampled_from([None, "Pothole"])),
        description=draw(st.one_of(st.none(), st.text(max_size=40))),
    )
    trace = draw(st.one_of(st.none(), st.just("trace-1")))
    return subs, event(req, draw(st.sampled_from(sorted(EVENT_TYPES))), trace_id=trace)


def with_fields(sub: Subscription, fields: dict[str, Any]) -> Subscription:
    return Subscription.model_validate({**sub.model_dump(), **fields})


def index_of(subs: list[Subscription], gridded: bool) -> SubscriptionIndex:
    index = SubscriptionIndex()
    index.bulk_loading = gridded
    for sub in subs:
        index.upsert(sub)
    if gridded:
        index.rebuild_now()
    return index


def worded(sub: Subscription, away: float | None, ev: Any) -> str:
    """The reason, as the matcher worded it from the subscription model (before issue 15)."""
    t: Any = sub.target
    label = sub.label
    if t.kind == "circle":
        return f"within {t.radius_m:g} m of {label or 'your place'} ({away:.0f} m away)"
    if t.kind == "area":
        return f"inside your area '{label}'" if label else "inside your area"
    if t.kind == "corridor":
        route = f"your route '{label}'" if label else "your route"
        return f"within {t.width_m:g} m of {route} ({away or 0:.0f} m away)"
    if t.kind == "follow":
        return f"you follow request {ev.request.service_request_id}"
    r = ev.request
    f = sub.filters
    return (
        f"all {r.agency_responsible if f.agencies else r.service_name or r.service_code} requests"
    )


def expected_ids(subs: list[Subscription], ev: Any) -> set[str]:
    """Who hears of the event, scanning every subscription."""
    r = ev.request
    placed = [s for s in subs if s.target.kind in ("circle", "area", "corridor")]
    near = brute_force(placed, r.lat, r.long)
    ids = set()
    for sub in subs:
        kind = sub.target.kind
        recent = (sub.confirmed_at or sub.created_at) <= r.requested_datetime
        f = sub.filters
        passes = (not f.agencies or r.agency_responsible in f.agencies) and (
            not f.service_codes or r.service_code in f.service_codes
        )
        if kind == "follow" or (
            recent and passes and (kind == "citywide" or sub.subscription_id in near)
        ):
            ids.add(sub.subscription_id)
    return ids


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.booleans())
def test_matches_agree_with_a_scan_of_every_subscription(
    scene: tuple[list[Subscription], Any], gridded: bool
) -> None:
    subs, ev = scene
    by_id = {s.subscription_id: s for s in subs}
    hits = find_hits(index_of(subs, gridded), ev)
    found = {c.subscription_id for _, c, _, _ in hits}
    r = ev.request
    assert len(found) == len(hits)
    for key, c, away, rule in hits:
        sub = by_id[c.subscription_id]
        assert key == recipient_key(sub.email).encode()
        if sub.target.kind == "circle":
            t: Any = sub.target
            assert away == pytest.approx(distance_m(r.lat, r.long, t.lat, t.long), abs=1e-6)
            assert away <= t.radius_m + 0.02
        assert rule == worded(sub, away, ev)
    # A point 1 cm from a circle's edge is on the side the arithmetic puts it: not asserted.
    edge = {
        s.subscription_id
        for s in subs
        if s.target.kind == "circle"
        and abs(distance_m(r.lat, r.long, s.target.lat, s.target.long) - s.target.radius_m) < 0.02
    }
    assert found - edge == expected_ids(subs, ev) - edge


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.booleans())
def test_published_bytes_are_the_model_commands(
    scene: tuple[list[Subscription], Any], gridded: bool
) -> None:
    subs, ev = scene
    index = index_of(subs, gridded)
    models = grouped_notifications(find_matches(index, ev), ev)
    published = encoded_commands(index, ev, NOW)
    assert len(published) == len(models)
    for out, (matches, command) in zip(published, models, strict=True):
        assert out.key == recipient_key(command.subscription.email).encode()
        assert out.kinds == tuple(m.compiled.kind for m in matches)
        got, want = json.loads(out.value), json.loads(encode(command))
        occurred, _ = got.pop("occurred_at"), want.pop("occurred_at")
        if len(matches) == 1:  # written here, at the time given (merged: by the models)
            assert occurred == "2025-03-04T05:06:07.891011Z"
        assert got == want


def test_backfill_and_no_match_publish_nothing() -> None:
    sub = subscription({"kind": "circle", "lat": HOME[0], "long": HOME[1], "radius_m": 500})
    index = index_of([sub], gridded=False)
    assert encoded_commands(index, event(request(*HOME), backfill=True)) == []
    assert encoded_commands(index, event(request(HOME[0] + 1, HOME[1]))) == []
    assert len(encoded_commands(index, event(request(*HOME)))) == 1


@given(st.uuids(), st.text(max_size=60), st.text(max_size=60))
def test_uuid5_from_a_shared_prefix_is_uuid5(namespace: uuid.UUID, prefix: str, name: str) -> None:
    shared = hashlib.sha1(namespace.bytes + prefix.encode(), usedforsecurity=False)
    assert uuid5(shared, name) == str(uuid.uuid5(namespace, prefix + name))


def test_percent_signs_in_the_event_are_written_as_they_are() -> None:
    """The event's own values go into a %-template once per event: escaped, byte for byte."""
    sub = subscription({"kind": "circle", "lat": HOME[0], "long": HOME[1], "radius_m": 500})
    index = index_of([sub], gridded=False)
    req = request(*HOME, description="50% off %b %s %% 100%")
    ev = event(req, "opened", trace_id="trace-%b-%%")
    (out,) = encoded_commands(index, ev, NOW)
    ((_, command),) = grouped_notifications(find_matches(index, ev), ev)
    assert out.value == encode(command.model_copy(update={"occurred_at": NOW}))
    assert b"50% off %b %s %% 100%" in out.value and b'"trace-%b-%%"' in out.value
