"""The public server refuses oversized and slow request heads and bodies (issue 12).

Real uvicorn on a real socket, configured as `connect311-map-api run` configures it
(`cli.http_protocol`), driven with raw sockets. Before the fix uvicorn (httptools) took a
60 KB URL and 1 MB of headers to the app, and held slow heads and bodies open forever.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from connect311_contracts.settings import SigningSettings
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.cli import http_protocol
from connect311_map_api.settings import MapApiSettings
from tests.support.uvicorn_thread import serving
from tests.unit.map_api.factories import RecordingPublisher

TIMEOUT_S = 1.0  # the test's head and body deadlines (the default is 10 s)


@pytest.fixture(params=["httptools", "h11"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[FastAPI, int, str]]:
    """The app on real uvicorn with the guard, on either parser uvicorn may pick."""
    port = free_port()
    settings = MapApiSettings(
        database_url=f"sqlite:///{tmp_path / 'limits.db'}",
        consume=False,
        header_timeout_s=TIMEOUT_S,
        body_timeout_s=TIMEOUT_S,
    )
    app = create_app(
        settings,
        signing=SigningSettings(
            secret_key="limits-test-secret", public_base_url=f"http://127.0.0.1:{port}"
        ),
        publisher=RecordingPublisher(),
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        http=http_protocol(app, settings, parser=request.param),
    )
    with serving(config) as base:
        yield app, port, base


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _send_until_answered(sock: socket.socket, data: bytes, chunk: int = 16_384) -> None:
    """Send in chunks, stopping once the server answers (sending on could reset the socket)."""
    for start in range(0, len(data), chunk):
        if select.select([sock], [], [], 0)[0]:
            return
        try:
            sock.sendall(data[start : start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            return


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and whole answer, reading until the server closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65_536):
            received += chunk
    except ConnectionResetError:
        pass
    assert received.startswith(b"HTTP/1.1 "), received[:200]
    return int(received[9:12]), received


def _refused(app: FastAPI, status: int) -> float:
    value = app.state.ctx.metrics.registry.get_sample_value(
        "map_api_http_refused_total", {"status": str(status)}
    )
    return value or 0.0


def test_a_60_kb_url_gets_414_at_once_and_others_are_served_meanwhile(
    served: tuple[FastAPI, int, str],
) -> None:
    app, port, base = served
    with _connect(port) as hostile, httpx.Client(base_url=base, timeout=5) as normal:
        started = time.perf_counter()
        _send_until_answered(hostile, b"GET /healthz?q=" + b"a" * 60_000 + b" HTTP/1.1\r\n")
        calm = time.perf_counter()
        assert normal.get("/healthz").status_code == 200
        normal_s = time.perf_counter() - calm
        status, answer = _answer(hostile)
        hostile_s = time.perf_counter() - started
    assert status == 414 and b"request line over 8192 bytes" in answer, answer
    assert hostile_s < 2.0 and normal_s < 1.0, (hostile_s, normal_s)
    assert _refused(app, 414) == 1


@pytest.mark.parametrize("shape", ["many headers", "one huge header"])
def test_a_megabyte_of_headers_gets_431(served: tuple[FastAPI, int, str], shape: str) -> None:
    app, port, _ = served
    if shape == "many headers":
        headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 1_000) for i in range(1_000))
    else:
        headers = b"X-Pad: " + b"v" * 1_000_000 + b"\r\n"
    with _connect(port) as sock:
        _send_until_answered(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        status, answer = _answer(sock)
    assert status == 431 and b"request headers over 32768 bytes" in answer
    assert _refused(app, 431) == 1


@pytest.mark.parametrize(
    "sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"], ids=["idle", "half a head"]
)
def test_a_slow_head_is_answered_408_and_closed_after_the_deadline(
    served: tuple[FastAPI, int, str], sent: bytes
) -> None:
    _, port, _ = served
    with _connect(port) as sock:
        sock.sendall(sent)
        started = time.perf_counter()
        status, _ = _answer(sock)  # returns when the server closes
        waited = time.perf_counter() - started
    assert status == 408
    assert TIMEOUT_S * 0.8 < waited < TIMEOUT_S + 3.0, waited


def test_a_slow_body_is_answered_408_and_closed_after_the_deadline(
    served: tuple[FastAPI, int, str],
) -> None:
    app, port, _ = served
    head = (
        b"POST /api/subscriptions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n"
    )
    with _connect(port) as sock:
        sock.sendall(head + b'{"email": "slow')  # and then nothing
        started = time.perf_counter()
        status, _ = _answer(sock)
        waited = time.perf_counter() - started
    assert status == 408
    assert TIMEOUT_S * 0.8 < waited < TIMEOUT_S + 3.0, waited
    assert _refused(app, 408) == 1


def test_normal_requests_and_keep_alive_are_unaffected(served: tuple[FastAPI, int, str]) -> None:
    app, port, base = served
    with httpx.Client(base_url=base, timeout=5) as client:
        long_but_fine = "/healthz?q=" + "a" * 7_000
        for path in ("/healthz", long_but_fine, "/healthz"):  # one kept-alive connection
            assert client.get(path, headers={"X-Pad": "v" * 20_000}).status_code == 200
    with _connect(port) as sock:  # a request that trickles in, but within the deadline
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(TIMEOUT_S / 5)
        status, _ = _answer(sock)
    assert status == 200
    assert sum(_refused(app, s) for s in (408, 414, 431)) == 0


def test_the_running_app_samples_its_loop_and_warns_when_a_callback_blocks_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        MapApiSettings(database_url=f"sqlite:///{tmp_path / 'lag.db'}", consume=False),
        signing=SigningSettings(secret_key="lag-test-secret"),
        publisher=RecordingPublisher(),
    )
    registry = app.state.ctx.metrics.registry

    def over_250_ms() -> float:
        count = registry.get_sample_value("map_api_event_loop_lag_seconds_count") or 0.0
        fast = registry.get_sample_value("map_api_event_loop_lag_seconds_bucket", {"le": "0.25"})
        return count - (fast or 0.0)

    caplog.set_level(logging.WARNING, logger="connect311_bus.loop_lag")
    with TestClient(app) as client:
        client.portal.call(time.sleep, 0.3)  # a callback holding the app's own event loop
        deadline = time.monotonic() + 10
        while not over_250_ms():
            assert time.monotonic() < deadline, "the blocked loop was never measured"
            time.sleep(0.02)
    assert registry.get_sample_value("map_api_event_loop_blocked_total")
    assert any("event loop blocked for" in r.getMessage() for r in caplog.records)
