"""The ingestor's push server gets the same request-line, header and deadline guard (issue 12).

The guard itself is tested in depth against the map API (tests/hardening/map_api/
test_map_api_http_limits.py); this checks the ingestor's wiring: its settings' limits, its
refusal counter, on real uvicorn over a real socket.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any, cast

import uvicorn
from fastapi import FastAPI

from connect311_bus.http_limits_httptools import LimitedHttpToolsProtocol
from connect311_ingestor.app import Runtime, http_protocol
from connect311_ingestor.metrics import IngestMetrics
from connect311_ingestor.settings import IngestorSettings
from connect311_local.broker import free_port
from tests.support.uvicorn_thread import serving


def test_push_server_refuses_a_long_url_with_414_and_counts_it() -> None:
    settings = IngestorSettings(http_max_request_line_bytes=2_048, http_header_timeout_s=3)
    metrics = IngestMetrics()
    protocol = http_protocol(cast(Runtime, SimpleNamespace(settings=settings, metrics=metrics)))
    assert issubclass(protocol, LimitedHttpToolsProtocol)
    assert protocol.limits.max_request_line_bytes == 2_048
    assert protocol.limits.body_timeout_s == settings.http_body_timeout_s

    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, http=protocol)
    with serving(config), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz?q=" + b"a" * 3_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65_536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 414 ")
    assert metrics.registry.get_sample_value("ingestor_http_refused_total", {"status": "414"}) == 1
