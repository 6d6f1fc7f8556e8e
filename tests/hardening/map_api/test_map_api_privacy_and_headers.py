"""Subscriber data in no log line or public answer; CORS only on public reads; huge polygons.

The app runs under real uvicorn with its access log on, logging as the CLI configures it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from connect311_contracts.settings import SigningSettings
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from tests.support.uvicorn_thread import serving
from tests.unit.map_api.factories import RecordingPublisher

SECRET = "privacy-secret"
EMAIL = "zelda.subscriber@example.net"
LAT, LONG = "27.81234", "-82.65432"
TARGET = {"kind": "circle", "lat": float(LAT), "long": float(LONG), "radius_m": 400}
ORIGIN = {"Origin": "https://elsewhere.example"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, RecordingPublisher]]:
    """The app on real uvicorn (access log on, propagating to the root logger)."""
    port = free_port()
    publisher = RecordingPublisher()
    app = create_app(
        MapApiSettings(
            database_url=f"sqlite:///{tmp_path / 'p.db'}",
            consume=False,
            admin_token="privacy-admin",
            rate_limit_email="2/hour",
        ),
        signing=SigningSettings(secret_key=SECRET, public_base_url=f"http://127.0.0.1:{port}"),
        publisher=publisher,
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=True)
    with serving(config) as base:
        yield base, publisher


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_no_email_or_subscription_place_in_logs_or_public_answers(
    served: tuple[str, RecordingPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    base, publisher = served
    caplog.set_level(logging.INFO)  # what `connect311-map-api run` configures
    answers: list[str] = []
    with httpx.Client(base_url=base, timeout=10) as http:
        for _ in range(3):  # the third is over the per-address limit (429)
            answers.append(
                http.post("/api/subscriptions", json={"email": EMAIL, "target": TARGET}).text
            )
        bad = {"email": EMAIL, "target": {**TARGET, "radius_m": 1}}
        assert http.post("/api/subscriptions", json=bad).status_code == 422  # logged, not kept
        answers.append(http.post("/api/subscriptions/preview", json={"target": TARGET}).text)
        confirm_url = publisher.confirmations[0].confirm_url
        confirmed = http.get(_path(confirm_url))
        assert confirmed.status_code == 303
        assert confirmed.headers["location"] == "/subscriptions/confirmed"
        sid = publisher.changed[0].subscription_id
        manage = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
        owned = http.get(f"/api/subscriptions/manage?token={manage}").text
        assert LAT in owned and EMAIL not in owned  # the owner sees the place, never the address
        leave = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
        answers.append(http.post(f"/api/subscriptions/unsubscribe?token={leave}").text)
        for path in ("/api/requests", "/api/stats", "/open311/v2/requests.json"):
            answers.append(http.get(path).text)
        scraped = http.get("/metrics", headers={"Authorization": "Bearer privacy-admin"})
        assert scraped.status_code == 200
        answers.append(scraped.text)
        admin = http.get(
            "/api/admin/subscribers", headers={"Authorization": "Bearer privacy-admin"}
        )
        assert admin.status_code == 200
        answers.append(admin.text)
    lines = [record.getMessage() for record in caplog.records]
    assert any("/api/subscriptions" in line for line in lines), "the access log was captured"
    assert publisher.changed[-1].status.value == "unsubscribed"
    for secret in ("zelda", "example.net", LAT, LONG, LAT[:6], LONG[:7]):
        assert not any(secret in line for line in lines), secret
        assert not any(secret in answer for answer in answers), secret


def test_cors_only_on_public_reads(served: tuple[str, RecordingPublisher]) -> None:
    base, _ = served
    with httpx.Client(base_url=base, timeout=10) as http:
        for path in ("/api/requests", "/api/stats", "/open311/v2/requests.json"):
            read = http.get(path, headers=ORIGIN)
            assert read.headers.get("access-control-allow-origin") == "*", path
            assert "access-control-allow-credentials" not in read.headers
        preflight = http.options(
            "/api/requests",
            headers={**ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 200
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert "POST" not in preflight.headers["access-control-allow-methods"]
        # Sign-up, manage and admin: no CORS at all, so a foreign page's preflight fails.
        for path in ("/api/subscriptions", "/api/subscriptions/manage", "/api/admin/subscribers"):
            asked = http.options(
                path,
                headers={
                    **ORIGIN,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            )
            assert "access-control-allow-origin" not in asked.headers, path
        signup = http.post(
            "/api/subscriptions", json={"email": "c@example.com", "target": TARGET}, headers=ORIGIN
        )
        assert "access-control-allow-origin" not in signup.headers


def test_huge_and_tangled_polygons_are_refused_clearly(
    served: tuple[str, RecordingPublisher],
) -> None:
    base, publisher = served
    ring = [[-82.6 + i * 1e-7, 27.7 + (i % 2) * 1e-4] for i in range(1_000_000)]
    ring.append(ring[0])
    million = {"kind": "area", "geometry": {"type": "Polygon", "coordinates": [ring]}}
    many = [[-82.6 + i * 1e-5, 27.7 + (i % 2) * 1e-4] for i in range(1_500)]
    many.append(many[0])
    too_many = {"kind": "area", "geometry": {"type": "Polygon", "coordinates": [many]}}
    bowtie = [[-82.6, 27.7], [-82.5, 27.8], [-82.5, 27.7], [-82.6, 27.8], [-82.6, 27.7]]
    tangled = {"kind": "area", "geometry": {"type": "Polygon", "coordinates": [bowtie]}}
    with httpx.Client(base_url=base, timeout=30) as http:
        huge = http.post("/api/subscriptions", json={"email": "p@example.com", "target": million})
        assert huge.status_code == 413 and "limit" in huge.json()["detail"]
        over = http.post("/api/subscriptions", json={"email": "p@example.com", "target": too_many})
        assert over.status_code == 422 and "vertices" in over.text
        crossed = http.post(
            "/api/subscriptions", json={"email": "p@example.com", "target": tangled}
        )
        assert crossed.status_code == 422 and "Self-intersection" in crossed.text
        assert http.get("/healthz").status_code == 200
    assert publisher.changed == []
