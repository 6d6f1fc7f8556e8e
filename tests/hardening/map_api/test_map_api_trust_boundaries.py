"""Trust boundaries (issue 12): forwarded client addresses, the development secret, admin
bearer parsing and who may read /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from connect311_contracts.settings import DevelopmentSecretRefused, SigningSettings
from connect311_local.broker import free_port
from connect311_map_api import cli as map_api_cli
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from connect311_notifier.cli import app as notifier_cli
from tests.support.uvicorn_thread import serving
from tests.unit.map_api.factories import RecordingPublisher

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
SIGNING = SigningSettings(secret_key="trust-secret", public_base_url="http://127.0.0.1")
PUBLIC_URL = "https://311map.example.gov"


def _cli_uvicorn_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The keyword arguments `connect311-map-api run` hands to uvicorn (server not started)."""
    captured: dict[str, Any] = {}
    monkeypatch.setenv("MAP_API_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr(map_api_cli.uvicorn, "run", lambda _app, **kw: captured.update(kw))
    result = CliRunner().invoke(map_api_cli.cli, ["run", "--no-consume"])
    assert result.exit_code == 0, result.output
    return {k: v for k, v in captured.items() if k not in ("host", "port", "log_config")}


@pytest.fixture
def cli_served(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, RecordingPublisher]]:
    """A sign-up app under real uvicorn, configured exactly as the CLI configures uvicorn."""
    trusted = getattr(request, "param", None)
    if trusted is not None:
        monkeypatch.setenv("MAP_API_TRUSTED_PROXIES", trusted)
    options = _cli_uvicorn_options(monkeypatch, tmp_path)
    publisher = RecordingPublisher()
    settings = MapApiSettings(
        database_url=f"sqlite:///{tmp_path / 'xff.db'}", consume=False, rate_limit_ip="3/hour"
    )
    app = create_app(settings, signing=SIGNING, publisher=publisher)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **options)
    with serving(config) as base:
        yield base, publisher


def _rotating_sign_ups(base: str) -> list[int]:
    with httpx.Client(base_url=base, timeout=10) as http:
        return [
            http.post(
                "/api/subscriptions",
                json={"email": f"r{n}@example.org", "target": CIRCLE},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(5)
        ]


def test_rotating_forwarded_for_from_loopback_does_not_lift_the_ip_limit(
    cli_served: tuple[str, RecordingPublisher],
) -> None:
    base, publisher = cli_served
    assert _rotating_sign_ups(base) == [202, 202, 202, 429, 429]
    assert len(publisher.confirmations) == 3


@pytest.mark.parametrize("cli_served", ["127.0.0.1"], indirect=True)
def test_a_named_proxy_is_believed(cli_served: tuple[str, RecordingPublisher]) -> None:
    base, _ = cli_served
    assert _rotating_sign_ups(base) == [202] * 5  # each forwarded client has its own limit


@pytest.mark.parametrize(
    "url", [PUBLIC_URL, "http://192.0.2.10:8000", "http://localhost.evil.example"]
)
def test_the_development_secret_is_refused_for_a_public_url(url: str) -> None:
    with pytest.raises(DevelopmentSecretRefused) as refused:
        SigningSettings(public_base_url=url).refuse_development_secret()
    message = str(refused.value)
    assert "\n" not in message and "set CONNECT311_SECRET_KEY" in message


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000", "http://127.0.0.1:9", "http://[::1]:8000/", "http://app.localhost"],
)
def test_the_development_secret_is_fine_on_this_machine(url: str) -> None:
    SigningSettings(public_base_url=url).refuse_development_secret()
    SigningSettings(secret_key="real", public_base_url=PUBLIC_URL).refuse_development_secret()


def test_services_refuse_to_start_with_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONNECT311_SECRET_KEY", raising=False)
    monkeypatch.setenv("CONNECT311_PUBLIC_BASE_URL", PUBLIC_URL)
    monkeypatch.setenv("MAP_API_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setenv("NOTIFIER_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")
    monkeypatch.setattr(map_api_cli.uvicorn, "run", lambda *_a, **_k: pytest.fail("served"))
    for command, args in ((map_api_cli.cli, ["run", "--no-consume"]), (notifier_cli, ["run"])):
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if "CONNECT311_SECRET_KEY" in line]
        assert len(lines) == 1 and "refusing to start" in lines[0], result.output
    with pytest.raises(DevelopmentSecretRefused):
        create_app(MapApiSettings(consume=False), signing=SigningSettings())


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    settings = MapApiSettings(
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        consume=False,
        admin_token="adm-token",
        metrics_token="prom-token",
    )
    with TestClient(create_app(settings, signing=SIGNING, publisher=RecordingPublisher())) as c:
        yield c


def test_admin_bearer_scheme_is_required_and_case_insensitive(admin: TestClient) -> None:
    path = "/api/admin/subscribers"
    assert admin.get(path, headers={"Authorization": "adm-token"}).status_code == 401
    assert admin.get(path, headers={"Authorization": "Basic adm-token"}).status_code == 401
    for header in ("Bearer adm-token", "bearer adm-token", "BEARER  adm-token"):
        assert admin.get(path, headers={"Authorization": header}).status_code == 200, header


def test_metrics_need_a_token(admin: TestClient, tmp_path: Path) -> None:
    admin.post("/api/subscriptions", json={"email": "m@example.org", "target": CIRCLE})
    anonymous = admin.get("/metrics")
    assert anonymous.status_code == 401 and "map_api_signups" not in anonymous.text
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert admin.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    for token in ("prom-token", "adm-token"):
        scraped = admin.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scraped.status_code == 200 and "map_api_signups" in scraped.text
    assert admin.get("/openapi.json").json()["paths"].get("/metrics") is None
    bare = MapApiSettings(database_url=f"sqlite:///{tmp_path / 'b.db'}", consume=False)
    with TestClient(create_app(bare, signing=SIGNING, publisher=RecordingPublisher())) as c:
        disabled = c.get("/metrics")
    assert disabled.status_code == 503 and "MAP_API_METRICS_TOKEN" in disabled.json()["detail"]
