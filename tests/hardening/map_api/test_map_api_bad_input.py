"""Hostile input gets a clear 4xx, never a 500 or a silently dropped filter (issue 12).

NaN/Infinity numbers, extra GeoJSON members, control characters in the search text; plus
the small gaps: nosniff on JSON, the unsubscribe page's headers and invalid links, and an
old confirm link after unsubscribing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connect311_contracts.settings import SigningSettings
from connect311_contracts.subscriptions import SubscriptionStatus
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.api.validation_errors import json_safe
from connect311_map_api.app import create_app
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

SECRET = "bad-input-secret"
CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
CORRIDOR = {"kind": "corridor", "coordinates": [[-82.64, 27.77], [-82.63, 27.78]], "width_m": 50}
SQUARE = [[[-82.7, 27.7], [-82.6, 27.7], [-82.6, 27.8], [-82.7, 27.8], [-82.7, 27.7]]]
JSON = {"content-type": "application/json"}


@pytest.fixture
def app_and_publisher(tmp_path: Path) -> Iterator[tuple[TestClient, RecordingPublisher]]:
    publisher = RecordingPublisher()
    app = create_app(
        MapApiSettings(database_url=f"sqlite:///{tmp_path / 'b.db'}", consume=False, read_limit=""),
        signing=SigningSettings(secret_key=SECRET, public_base_url="http://testserver"),
        publisher=publisher,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, publisher


@pytest.fixture
def client(app_and_publisher: tuple[TestClient, RecordingPublisher]) -> TestClient:
    return app_and_publisher[0]


def _raw_json(target: dict[str, Any], field: str, literal: str) -> str:
    """A sign-up body whose `field` of the target is the bare JSON-ish literal (NaN...)."""
    body = json.dumps({"email": "ann@example.com", "target": {**target, field: "@@"}})
    return body.replace('"@@"', literal)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("target", "field"),
    [(CIRCLE, "lat"), (CIRCLE, "long"), (CIRCLE, "radius_m"), (CORRIDOR, "width_m")],
)
def test_non_finite_numbers_get_a_422_naming_the_field(
    client: TestClient, target: dict[str, Any], field: str, literal: str
) -> None:
    response = client.post(
        "/api/subscriptions", content=_raw_json(target, field, literal), headers=JSON
    )
    assert response.status_code == 422  # was 500: the 422 tried to echo a non-finite float
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == field
    assert error["msg"] == f"{field} must be a finite number, not {literal}"
    preview = {"target": json.loads(_raw_json(target, field, "null"))["target"]}
    body = json.dumps(preview).replace("null", literal)
    assert client.post("/api/subscriptions/preview", content=body, headers=JSON).status_code == 422


def test_non_finite_numbers_in_an_area_or_corridor_vertex_are_refused(client: TestClient) -> None:
    area = {"kind": "area", "geometry": {"type": "Polygon", "coordinates": SQUARE}}
    body = json.dumps({"email": "ann@example.com", "target": area}).replace("-82.6,", "NaN,", 1)
    assert "NaN" in body
    assert client.post("/api/subscriptions", content=body, headers=JSON).status_code == 422
    body = json.dumps({"email": "ann@example.com", "target": CORRIDOR}).replace("27.78", "Infinity")
    assert client.post("/api/subscriptions", content=body, headers=JSON).status_code == 422


@given(
    value=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=300),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=40,
    )
)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_echoed_input_is_strict_json(value: Any) -> None:
    json.dumps(json_safe(value), allow_nan=False)  # raises on NaN/Infinity or foreign types


def test_deeply_nested_input_is_echoed_shallow(client: TestClient) -> None:
    label = "[" * 900 + "]" * 900
    body = '{"email": "ann@example.com", "target": {"kind": "citywide"}, "label": ' + label + "}"
    response = client.post("/api/subscriptions", content=body, headers=JSON)
    assert response.status_code == 422
    assert len(response.text) < 500  # not 900 levels echoed back


def test_area_geometry_with_extra_members_is_refused(client: TestClient) -> None:
    geometry = {"type": "Polygon", "coordinates": SQUARE, "properties": {"x": "y" * 1000}}
    target = {"kind": "area", "geometry": geometry}
    response = client.post("/api/subscriptions", json={"email": "a@example.com", "target": target})
    assert response.status_code == 422
    assert "unknown member 'properties'" in response.text
    assert client.post("/api/subscriptions/preview", json={"target": target}).status_code == 422
    plain = {"kind": "area", "geometry": {"type": "Polygon", "coordinates": SQUARE}}
    assert client.post("/api/subscriptions/preview", json={"target": plain}).status_code == 200


@pytest.mark.parametrize("q", ["\x00", "hole\x00", "\x00zzz", "a\nb", "\x7f"])
def test_control_characters_in_search_never_disable_the_filter(client: TestClient, q: str) -> None:
    with client.app.state.ctx.engine.begin() as conn:  # type: ignore[attr-defined]
        apply_events(conn, [event("opened", snapshot(str(i))) for i in range(3)])
    assert len(client.get("/api/requests").json()["features"]) == 3
    response = client.get("/api/requests", params={"q": q})
    # Before: `q=%00` returned every request, as if there were no filter.
    assert response.status_code == 422
    assert "q must not contain control characters" in response.json()["detail"]
    assert client.get("/api/requests", params={"q": "zzz-nowhere"}).json()["features"] == []


@pytest.mark.parametrize(
    "path", ["/api/requests", "/api/requests/none:1", "/api/requests?limit=0", "/healthz"]
)
def test_json_answers_carry_nosniff(client: TestClient, path: str) -> None:
    assert client.get(path).headers["x-content-type-options"] == "nosniff"


def test_unsubscribe_page_has_page_headers_and_no_form_for_a_bad_link(
    app_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    client, publisher = app_and_publisher
    client.post("/api/subscriptions", json={"email": "ann@example.com", "target": CIRCLE})
    sid = publisher.changed[0].subscription_id
    good = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
    page = client.get(f"/api/subscriptions/unsubscribe?token={good}")
    assert page.status_code == 200 and "<form" in page.text
    for bad in ("forged-token-value", sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)):
        refused = client.get(f"/api/subscriptions/unsubscribe?token={bad}")
        assert refused.status_code == 400
        assert "<form" not in refused.text and "This link does not work" in refused.text
    for answer in (page, refused):
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


def test_old_confirm_link_after_unsubscribing_says_the_alert_is_not_active(
    app_and_publisher: tuple[TestClient, RecordingPublisher],
) -> None:
    client, publisher = app_and_publisher
    client.post("/api/subscriptions", json={"email": "ann@example.com", "target": CIRCLE})
    confirm_path = publisher.confirmations[0].confirm_url.removeprefix("http://testserver")
    assert client.get(confirm_path, follow_redirects=False).headers["location"] == (
        "/subscriptions/confirmed"
    )
    sid = publisher.changed[0].subscription_id
    leave = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
    assert client.post(f"/api/subscriptions/unsubscribe?token={leave}").status_code == 200
    again = client.get(confirm_path, follow_redirects=False)
    assert again.headers["location"] == "/subscriptions/confirmed?error=inactive"
    page = client.get(again.headers["location"])
    assert "no longer active" in page.text and "Your alert is confirmed" not in page.text
    assert publisher.changed[-1].status is SubscriptionStatus.UNSUBSCRIBED  # not re-activated


def test_finite_values_still_echo_unchanged() -> None:
    assert json_safe({"a": [1, 2.5, "x", None, True]}) == {"a": [1, 2.5, "x", None, True]}
    assert json_safe(math.inf) == "Infinity" and json_safe(-math.inf) == "-Infinity"
