"""Link tokens (confirm, manage, unsubscribe) never reach a log line; the route still shows.

Real uvicorn with its access log on, both ways it can be configured: as the CLI runs it
(`log_config=None`: uvicorn's records propagate to the service's handler) and with uvicorn's
own default logging config (its own handlers, no propagation).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from connect311_bus.logs import JsonFormatter, TextFormatter
from connect311_contracts.settings import SigningSettings
from connect311_contracts.tokens import TokenPurpose, sign_subscription_token
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.settings import MapApiSettings
from connect311_map_api.tokenlog import redact_tokens
from tests.support.uvicorn_thread import serving
from tests.unit.map_api.factories import RecordingPublisher

SECRET = "token-log-secret"
TARGET = {"kind": "circle", "lat": 27.8, "long": -82.6, "radius_m": 400}
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error")
CLIENT_LOGGERS = ("httpx", "httpcore")  # this test's own HTTP client, not the service


class Collector(logging.Handler):
    """Keeps every record it is handed (after the loggers' filters ran)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(CLIENT_LOGGERS):
            self.records.append(record)


@pytest.fixture
def restore_uvicorn_logging() -> Iterator[None]:
    """uvicorn's default config rewires its loggers for the whole process: put them back."""
    saved = {}
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate, logger.level, logger.disabled)
    yield
    for name, (handlers, propagate, level, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate, logger.level, logger.disabled = propagate, level, disabled


@pytest.fixture(params=["service", "uvicorn-default"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, restore_uvicorn_logging: None
) -> Iterator[tuple[str, RecordingPublisher, Collector]]:
    """The app on real uvicorn with its access log on; a collector on every logger in play."""
    port = free_port()
    publisher = RecordingPublisher()
    app = create_app(
        MapApiSettings(database_url=f"sqlite:///{tmp_path / 't.db'}", consume=False),
        signing=SigningSettings(secret_key=SECRET, public_base_url=f"http://127.0.0.1:{port}"),
        publisher=publisher,
    )
    log_config: dict[str, Any] | None = (
        None if request.param == "service" else copy.deepcopy(LOGGING_CONFIG)
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=log_config, access_log=True
    )  # builds uvicorn's logging now, so the collector goes on after
    collector = Collector()
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    targets = [root, *(logging.getLogger(n) for n in UVICORN_LOGGERS)]
    for logger in targets:
        logger.addHandler(collector)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    try:
        with serving(config) as base:
            yield base, publisher, collector
    finally:
        for logger in targets:
            logger.removeHandler(collector)
        root.setLevel(old_level)


def _lines(collector: Collector) -> list[str]:
    """Each record as the service would write it (text and JSON) and as uvicorn would."""
    text, as_json = TextFormatter("map-api"), JsonFormatter("map-api")
    lines = []
    for record in collector.records:
        lines += [record.getMessage(), text.format(record), as_json.format(record)]
        lines.append(json.dumps(record.args, default=str))
    return lines


def test_no_link_token_in_any_log_record(
    served: tuple[str, RecordingPublisher, Collector],
) -> None:
    base, publisher, collector = served
    with httpx.Client(base_url=base, timeout=10) as http:
        signed = http.post("/api/subscriptions", json={"email": "t@example.org", "target": TARGET})
        assert signed.status_code == 202
        confirm_url = publisher.confirmations[0].confirm_url
        confirm_token = confirm_url.split("token=", 1)[1]
        sid = publisher.changed[0].subscription_id
        manage = sign_subscription_token(SECRET, TokenPurpose.MANAGE, sid)
        leave = sign_subscription_token(SECRET, TokenPurpose.UNSUBSCRIBE, sid)
        forged = "not-a-real-token-but-secret-looking-0123456789"
        calls = [
            ("GET", f"/api/subscriptions/confirm?token={confirm_token}", 303),
            ("GET", f"/api/subscriptions/manage?token={manage}", 200),
            ("POST", f"/api/subscriptions/manage?token={manage}", 422),  # no body: refused
            ("GET", f"/subscriptions/manage?token={manage}", 200),
            ("GET", f"/api/subscriptions/unsubscribe?token={leave}", 200),
            ("POST", f"/api/subscriptions/unsubscribe?token={leave}", 200),
            ("GET", f"/api/subscriptions/manage?token={forged}", 400),
            ("GET", f"/api/subscriptions/confirm/{confirm_token}", 404),  # a token in a path
        ]
        for method, path, status in calls:
            response = http.request(method, path, follow_redirects=False)
            assert response.status_code == status, (path, response.text)
    assert publisher.changed[-1].status.value == "unsubscribed"  # the tokens did work
    lines = _lines(collector)
    routes = (
        "/api/subscriptions/confirm?token=<redacted>",
        "/api/subscriptions/manage?token=<redacted>",
        "/subscriptions/manage?token=<redacted>",
        "/api/subscriptions/unsubscribe?token=<redacted>",
        "/api/subscriptions/confirm/<redacted>",
    )
    for route in routes:
        assert any(route in line for line in lines), f"no access line for {route}"
    for token in (confirm_token, manage, leave, forged):
        pieces = [token, *(p for p in token.split(".") if len(p) >= 20)]
        for piece in pieces:
            assert not any(piece in line for line in lines), piece


def test_redaction_keeps_other_query_values() -> None:
    line = '127.0.0.1:1 - "GET /api/requests?bbox=-82.7,27.7,-82.6,27.8&limit=5 HTTP/1.1" 200'
    assert redact_tokens(line) == line
    assert redact_tokens("/x?a=1&token=abc&b=2") == "/x?a=1&token=<redacted>&b=2"
    assert redact_tokens("/x?manage_token=abc") == "/x?manage_token=<redacted>"


def test_the_service_loggers_redact_tokens_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create_app(
        MapApiSettings(database_url=f"sqlite:///{tmp_path / 's.db'}", consume=False),
        signing=SigningSettings(secret_key=SECRET),
        publisher=RecordingPublisher(),
    )
    token = sign_subscription_token(SECRET, TokenPurpose.MANAGE, "some-subscription")
    caplog.set_level(logging.INFO)
    caplog.clear()  # only the lines below
    for name in ("connect311_map_api.signup", "connect311_map_api.consumers"):
        logging.getLogger(name).warning("asked for %s and /confirm?token=%s", token, token)
    logging.getLogger("connect311_map_api.signup").info("/confirm?token=%s", "plain-secret")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "asked for <redacted> and /confirm?token=<redacted>",
        "asked for <redacted> and /confirm?token=<redacted>",
        "/confirm?token=<redacted>",
    ]
