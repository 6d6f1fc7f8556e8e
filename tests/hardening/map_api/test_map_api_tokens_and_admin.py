"""Sign-up tokens are signed, purpose-bound and expire; admin routes fuzzed with credentials."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from connect311_contracts.settings import SigningSettings
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import RecordingPublisher

SECRET = "token-secret"
TARGET = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
ADMIN = "Bearer token-admin"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, RecordingPublisher]]:
    publisher = RecordingPublisher()
    app = create_app(
        MapApiSettings(
            database_url=f"sqlite:///{tmp_path / 't.db'}",
            consume=False,
            admin_token="token-admin",
            manage_token_max_age_s=3600,
        ),
        signing=SigningSettings(secret_key=SECRET, public_base_url="http://testserver"),
        publisher=publisher,
    )
    with TestClient(app) as test_client:
        yield test_client, publisher


def _old_token(monkeypatch: pytest.MonkeyPatch, purpose: TokenPurpose, sid: str, age_s: int) -> str:
    """A correctly signed token issued `age_s` seconds ago."""
    issued = time.time() - age_s
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: issued)
        return sign_subscription_token(SECRET, purpose, sid)


def test_expired_wrong_purpose_and_foreign_tokens_are_refused(
    client: tuple[TestClient, RecordingPublisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, publisher = client
    assert (
        http.post(
            "/api/subscriptions", json={"email": "t@example.com", "target": TARGET}
        ).status_code
        == 202
    )
    sid = publisher.changed[0].subscription_id
    confirm = "/api/subscriptions/confirm?token="
    stale = _old_token(monkeypatch, TokenPurpose.CONFIRM, sid, 49 * 3600)  # limit: 48 h
    expired = http.get(confirm + stale, follow_redirects=False)
    assert expired.headers["location"] == "/subscriptions/confirmed?error=expired"
    manage_as_confirm = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
    wrong = http.get(confirm + manage_as_confirm, follow_redirects=False)
    assert wrong.headers["location"] == "/subscriptions/confirmed?error=invalid"
    foreign = sign_subscription_token("another-secret", TokenPurpose.CONFIRM, sid)
    forged = http.get(confirm + foreign, follow_redirects=False)
    assert forged.headers["location"] == "/subscriptions/confirmed?error=invalid"
    old_manage = _old_token(monkeypatch, TokenPurpose.MANAGE, sid, 2 * 3600)
    assert http.get(f"/api/subscriptions/manage?token={old_manage}").status_code == 400
    assert len(publisher.changed) == 1, "no token above changed anything"
    fresh = sign_subscription_token(SECRET, TokenPurpose.CONFIRM, sid)
    assert http.get(confirm + fresh, follow_redirects=False).headers["location"] == (
        "/subscriptions/confirmed"
    )
    assert publisher.changed[-1].status.value == "active"


def test_operator_routes_need_the_token_and_survive_fuzzing_with_it(
    client: tuple[TestClient, RecordingPublisher],
) -> None:
    http, _ = client
    app = http.app
    for path in ("/api/admin/subscribers", "/api/admin/deadletters"):
        assert http.get(path).status_code == 401
        assert http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get(path, headers={"Authorization": ADMIN}).status_code == 200
    assert http.post("/api/admin/deadletters/replay").status_code == 401
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    fuzzed = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/admin"):
            continue
        fuzzed += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": ADMIN}, checks=[not_a_server_error])

        fuzz()
    assert fuzzed == 3
