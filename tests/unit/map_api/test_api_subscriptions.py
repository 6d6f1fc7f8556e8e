"""Sign-up, double opt-in, unsubscribe, manage, limits and privacy."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.conftest import SECRET, make_client
from tests.unit.map_api.factories import RecordingPublisher, lifecycle

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}


def _sign_up(client: TestClient, email: str = "ann@example.com", **extra: object):
    return client.post("/api/subscriptions", json={"email": email, "target": CIRCLE, **extra})


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _token(purpose: TokenPurpose, sid: str) -> str:
    return sign_subscription_token(SECRET, purpose, sid)


def test_sign_up_confirm_publishes_each_state(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    response = _sign_up(client, delivery="daily", label="Home")
    assert response.status_code == 202
    (pending,) = publisher.changed
    assert pending.status is SubscriptionStatus.PENDING and pending.label == "Home"
    (confirmation,) = publisher.confirmations
    assert confirmation.subscription.subscription_id == pending.subscription_id
    assert confirmation.confirm_url.startswith("http://testserver/api/subscriptions/confirm?token=")
    confirmed = client.get(_path(confirmation.confirm_url), follow_redirects=False)
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/subscriptions/confirmed"
    active = publisher.changed[-1]
    assert active.status is SubscriptionStatus.ACTIVE and active.confirmed_at is not None
    again = client.get(_path(confirmation.confirm_url), follow_redirects=False)
    assert again.status_code == 303 and len(publisher.changed) == 2  # idempotent


def test_answer_never_reveals_whether_the_address_exists(client: TestClient) -> None:
    first = _sign_up(client, "bob@example.com")
    second = _sign_up(client, "bob@example.com")
    other = _sign_up(client, "new@example.com")
    assert first.status_code == second.status_code == other.status_code == 202
    assert first.json() == second.json() == other.json()
    assert "bob@" not in first.text


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            {
                "kind": "area",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                },
            },
            "Self-intersection",
        ),
        ({"kind": "citywide"}, "needs a category"),
        ({"kind": "follow", "service_request_id": "test:unknown"}, "no request"),
    ],
)
def test_invalid_targets_get_422_with_reason(
    client: TestClient, target: dict, reason: str, publisher: RecordingPublisher
) -> None:
    response = client.post("/api/subscriptions", json={"email": "c@example.com", "target": target})
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert publisher.changed == []


def test_radius_and_email_checked_by_the_contract(client: TestClient) -> None:
    tiny = {**CIRCLE, "radius_m": 10}
    assert (
        client.post(
            "/api/subscriptions", json={"email": "c@example.com", "target": tiny}
        ).status_code
        == 422
    )
    assert _sign_up(client, "not-an-address").status_code == 422


def test_follow_a_known_request(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        apply_events(conn, lifecycle("f1"))
    target = {"kind": "follow", "service_request_id": "test:f1"}
    response = client.post("/api/subscriptions", json={"email": "f@example.com", "target": target})
    assert response.status_code == 202


def test_rate_limit_per_address_and_ip(tmp_path, publisher: RecordingPublisher, signing) -> None:
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    with make_client(
        url, publisher, signing, rate_limit_email="2/hour", rate_limit_ip="4/hour"
    ) as client:
        assert [_sign_up(client, "d@example.com").status_code for _ in range(2)] == [202, 202]
        limited = _sign_up(client, "D@example.com")
        assert limited.status_code == 429
        assert 0 < int(limited.headers["Retry-After"]) <= 3600
        assert _sign_up(client, "e@example.com").status_code == 202
        assert _sign_up(client, "f@example.com").status_code == 202
        assert _sign_up(client, "g@example.com").status_code == 429  # the IP's 4/hour
    assert len(publisher.confirmations) == 4


def test_body_size_limit(client: TestClient) -> None:
    big = {"kind": "area", "geometry": {"type": "Polygon", "coordinates": [[[0.0, 0.0]] * 20_000]}}
    response = client.post("/api/subscriptions", json={"email": "h@example.com", "target": big})
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_bad_confirm_tokens_redirect_to_the_fixed_page(client: TestClient) -> None:
    forged = client.get(
        "/api/subscriptions/confirm?token=forged-token-value", follow_redirects=False
    )
    assert forged.status_code == 303
    assert forged.headers["location"] == "/subscriptions/confirmed?error=invalid"
    wrong_purpose = _token(TokenPurpose.UNSUBSCRIBE, "x")
    response = client.get(
        f"/api/subscriptions/confirm?token={wrong_purpose}", follow_redirects=False
    )
    assert response.headers["location"] == "/subscriptions/confirmed?error=invalid"


def test_unsubscribe_page_then_one_click_post(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    _sign_up(client)
    sid = publisher.changed[0].subscription_id
    token = _token(TokenPurpose.UNSUBSCRIBE, sid)
    page = client.get(f"/api/subscriptions/unsubscribe?token={token}")
    assert page.status_code == 200 and "<form method='post'" in page.text
    assert len(publisher.changed) == 1  # GET changes nothing
    done = client.post(
        f"/api/subscriptions/unsubscribe?token={token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert publisher.changed[-1].status is SubscriptionStatus.UNSUBSCRIBED
    bad = client.post("/api/subscriptions/unsubscribe?token=forged-token-value")
    assert bad.status_code == 400


def test_manage_lists_only_the_owner_and_never_the_address(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    _sign_up(client, "own@example.com", label="Home")
    _sign_up(client, "own@example.com", label="Work")
    _sign_up(client, "other@example.com", label="Theirs")
    ids = {s.label: s.subscription_id for s in publisher.changed}
    token = _token(TokenPurpose.MANAGE, ids["Home"])
    listing = client.get(f"/api/subscriptions/manage?token={token}")
    assert listing.status_code == 200
    assert {s["label"] for s in listing.json()["subscriptions"]} == {"Home", "Work"}
    assert "@" not in listing.text
    foreign = client.post(
        f"/api/subscriptions/manage?token={token}",
        json={"subscription_id": ids["Theirs"], "action": "delete"},
    )
    assert foreign.status_code == 403 and publisher.deleted == []
    changed = client.post(
        f"/api/subscriptions/manage?token={token}",
        json={"subscription_id": ids["Work"], "action": "set_delivery", "delivery": "weekly"},
    )
    assert changed.status_code == 200
    assert publisher.changed[-1].delivery.value == "weekly"
    deleted = client.post(
        f"/api/subscriptions/manage?token={token}",
        json={"subscription_id": ids["Work"], "action": "delete"},
    )
    assert [s["label"] for s in deleted.json()["subscriptions"]] == ["Home"]
    assert publisher.deleted == [ids["Work"]]
    assert client.get("/api/subscriptions/manage?token=forged-token-value").status_code == 400


def test_preview_counts_matching_events_per_week(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        apply_events(conn, lifecycle("p1") + lifecycle("p2", lat=28.5))
    body = client.post("/api/subscriptions/preview", json={"target": CIRCLE}).json()
    assert body["total"] == 3  # p1's three events; p2 is ~80 km away
    assert sum(w["alerts"] for w in body["weeks"]) == 3
    only_closed = client.post(
        "/api/subscriptions/preview",
        json={"target": CIRCLE, "filters": {"event_kinds": ["closed"]}},
    ).json()
    assert only_closed["total"] == 1
    other_agency = client.post(
        "/api/subscriptions/preview",
        json={"target": CIRCLE, "filters": {"agencies": ["Water"]}},
    ).json()
    assert other_agency["total"] == 0


def test_no_public_response_contains_subscriber_data(
    client: TestClient, publisher: RecordingPublisher
) -> None:
    _sign_up(client, "secret-person@example.com")
    for path in (
        "/api/requests",
        "/api/stats",
        "/api/categories",
        "/open311/v2/requests.json",
        "/metrics",
        "/openapi.json",
    ):
        text = client.get(path).text
        assert "secret-person" not in text and "-82.64" not in text, path
