"""Manage edits an alert's place (issue 13); the confirmed page names the alert it turned on
from system facts only, while the confirm redirect stays the fixed page."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_contracts.subscriptions import CircleTarget, Subscription, SubscriptionFilters
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.web.confirmed import describe_confirmed
from tests.unit.map_api.conftest import SECRET
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 250}
PHISH = "Refund due: log in at https://evil.example"


def _signed_up(client: TestClient, publisher: RecordingPublisher, **extra: object) -> str:
    body = {"email": "shop@example.org", "target": CIRCLE, "label": PHISH, **extra}
    assert client.post("/api/subscriptions", json=body).status_code == 202
    return publisher.changed[-1].subscription_id


def _confirm_path(publisher: RecordingPublisher) -> str:
    return publisher.confirmations[-1].confirm_url.split("testserver", 1)[1]


def _manage(sid: str) -> str:
    token = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    return f"/api/subscriptions/manage?token={token}"


def test_editing_the_place_moves_the_alert_and_keeps_its_radius(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    sid = _signed_up(client, publisher)
    client.get(_confirm_path(publisher), follow_redirects=False)
    url = _manage(sid)
    moved = client.post(
        url, json={"subscription_id": sid, "action": "edit", "lat": 27.8, "long": -82.7}
    )
    assert moved.status_code == 200, moved.text
    target = publisher.changed[-1].target
    assert (target.lat, target.long, target.radius_m) == (27.8, -82.7, 250)  # type: ignore[union-attr]
    shown = moved.json()["subscriptions"][0]["target"]
    assert (shown["lat"], shown["long"]) == (27.8, -82.7)
    both = client.post(
        url,
        json={
            "subscription_id": sid,
            "action": "edit",
            "lat": 27.9,
            "long": -82.6,
            "radius_m": 500,
        },
    )
    assert both.status_code == 200
    assert publisher.changed[-1].target.radius_m == 500  # type: ignore[union-attr]


def test_a_half_place_or_a_place_for_a_citywide_alert_is_refused_with_the_reason(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    sid = _signed_up(client, publisher)
    url = _manage(sid)
    count = len(publisher.changed)
    half = client.post(url, json={"subscription_id": sid, "action": "edit", "lat": 27.8})
    assert half.status_code == 422 and "both lat and long" in half.json()["detail"]
    off = client.post(url, json={"subscription_id": sid, "action": "edit", "lat": 95, "long": 0})
    assert off.status_code == 422
    citywide = {
        "email": "shop@example.org",
        "target": {"kind": "citywide"},
        "filters": {"service_codes": ["POT"]},
    }
    assert client.post("/api/subscriptions", json=citywide).status_code == 202
    fid = publisher.changed[-1].subscription_id
    refused = client.post(
        url, json={"subscription_id": fid, "action": "edit", "lat": 27.8, "long": -82.7}
    )
    assert refused.status_code == 422 and "around a point" in refused.json()["detail"]
    assert len(publisher.changed) == count + 1  # only the city-wide sign-up was published


def test_the_confirmed_page_names_the_alert_but_never_its_label(
    client: TestClient, publisher: RecordingPublisher, engine: Engine
) -> None:
    with engine.begin() as conn:
        apply_events(conn, [event("opened", snapshot("1", code="POT", name="Pothole"))])
    filters = {"service_codes": ["POT", "<b>made-up</b>"]}
    _signed_up(client, publisher, filters=filters)
    answer = client.get(_confirm_path(publisher), follow_redirects=False)
    assert answer.headers["location"] == "/subscriptions/confirmed"  # the fixed page
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/subscriptions/confirmed" in cookie
    page = client.get("/subscriptions/confirmed")
    assert "Requests within 250 m of a point on the map, only Pothole, 1 other filter" in page.text
    assert "evil.example" not in page.text and "Refund" not in page.text
    assert "made-up" not in page.text


def test_without_the_cookie_or_with_a_forged_one_the_page_names_nothing(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    fresh = TestClient(client.app)
    page = fresh.get("/subscriptions/confirmed")
    assert page.status_code == 200 and 'id="alert-name"' not in page.text
    fresh.cookies.set("c311_confirmed", "forged.token.value", path="/subscriptions/confirmed")
    assert 'id="alert-name"' not in fresh.get("/subscriptions/confirmed").text


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=3))
def test_no_filter_text_reaches_the_page_unless_the_city_uses_it(
    engine: Engine, codes: list[str]
) -> None:
    markers = [f"zz{code}zz" for code in codes]
    sub = Subscription(
        subscription_id="s1",
        email="shop@example.org",
        label=PHISH,
        target=CircleTarget(lat=27.77, long=-82.64, radius_m=500),
        filters=SubscriptionFilters(service_codes=tuple(markers), agencies=tuple(markers)),
        created_at=datetime.now(UTC),
    )
    with engine.connect() as conn:
        text = describe_confirmed(sub, conn)
    assert not any(m in text for m in markers) and "evil" not in text
    assert text.endswith(f"only {2 * len(markers)} other filters")
