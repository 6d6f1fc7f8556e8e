"""One client cannot hold every live stream or flood the public reads (issue 12).

Streams run under real uvicorn, so a disconnect is a real closed socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import uvicorn
from defusedxml import ElementTree as SafeET
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from connect311_contracts.settings import SigningSettings
from connect311_local.broker import free_port
from connect311_map_api.app import create_app
from connect311_map_api.live import Broadcaster, StreamsFull
from connect311_map_api.readlimit import PublicReadLimit
from connect311_map_api.settings import MapApiSettings
from tests.support.uvicorn_thread import serving
from tests.unit.map_api.factories import RecordingPublisher


def _app(tmp_path: Path, **settings: object) -> FastAPI:
    return create_app(
        MapApiSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}", consume=False, **settings),  # type: ignore[arg-type]
        signing=SigningSettings(secret_key="caps-secret"),
        publisher=RecordingPublisher(),
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Broadcaster]]:
    app = _app(tmp_path, stream_max_per_client=3, stream_max_total=4, sse_ping_s=1)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None)
    with serving(config) as base:
        yield base, app.state.ctx.broadcaster


def _open(stack: ExitStack, base: str, source: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    http = stack.enter_context(httpx.Client(transport=transport, timeout=10))
    return stack.enter_context(http.stream("GET", f"{base}/api/stream"))


def _until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_streams_per_client_are_capped_and_freed_on_disconnect(
    served: tuple[str, Broadcaster],
) -> None:
    base, broadcaster = served
    with ExitStack() as first:
        for _ in range(3):
            assert _open(first, base).status_code == 200
        with ExitStack() as extra:
            refused = _open(extra, base)
            # Before: every one of 200 streams from one client was accepted.
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) > 0
            assert "live streams per client" in refused.read().decode()
        assert broadcaster.slots_held == 3
    _until(lambda: broadcaster.slots_held == 0)  # the three sockets closed: slots are free
    with ExitStack() as again:
        assert _open(again, base).status_code == 200


def test_streams_in_all_are_capped(served: tuple[str, Broadcaster]) -> None:
    base, broadcaster = served
    with ExitStack() as stack:
        for _ in range(3):
            assert _open(stack, base, "127.0.0.1").status_code == 200
        assert _open(stack, base, "127.0.0.2").status_code == 200
        full = _open(stack, base, "127.0.0.3")  # a new client, but the server is full
        assert full.status_code == 503 and int(full.headers["retry-after"]) > 0
    _until(lambda: broadcaster.slots_held == 0)


def test_a_slot_is_freed_once_even_if_released_twice() -> None:
    broadcaster = Broadcaster(max_streams=2, max_per_client=2)
    release = broadcaster.reserve("a")
    release()
    release()
    broadcaster.reserve("a")
    broadcaster.reserve("a")
    with pytest.raises(StreamsFull) as refused:
        broadcaster.reserve("b")
    assert refused.value.status == 503 and broadcaster.slots_held == 2


def test_public_reads_are_limited_per_client(tmp_path: Path) -> None:
    app = _app(tmp_path, read_limit="5/minute")
    with TestClient(app) as client:
        for _ in range(5):
            assert client.get("/api/requests").status_code == 200
        origin = {"Origin": "https://elsewhere.example"}
        refused = client.get("/open311/v2/requests.xml", headers=origin)
        assert refused.status_code == 429
        # A sliding-window counter: when all 5 fell in the current minute, the wait is the
        # rest of this minute plus the time the next one needs to weigh them down to 4
        # (60 s * (1 - 4/5) = 12 s): at most 72 s, depending on when in the minute it runs.
        assert 0 < int(refused.headers["retry-after"]) <= 72
        # an Open311 route refuses in the GeoReport v2 error shape of its format
        assert refused.headers["content-type"] == "text/xml"
        description = SafeET.fromstring(refused.content).findtext("error/description")
        assert "try again in" in str(description)
        assert refused.headers["access-control-allow-origin"] == "*"  # the map can read it
        assert client.get("/healthz").status_code == 200  # only public reads count


async def test_read_limit_keys_on_the_client_address() -> None:
    async def ok(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limit = PublicReadLimit(ok, "2/minute")

    async def status(client: str) -> int:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/api/stats", "client": (client, 1)}
        await limit(scope, None, send)  # type: ignore[arg-type]
        return int(sent[0]["status"])

    assert [await status("10.0.0.1") for _ in range(3)] == [200, 200, 429]
    assert await status("10.0.0.2") == 200  # another client has its own budget


def test_page_size_maxima_are_lowered(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, read_limit="")) as client:
        world = {"bbox": "-180,-90,180,90"}
        assert client.get("/api/requests", params={**world, "limit": 1000}).status_code == 200
        # Before: 5,000 features and 1,000 Open311 records per page were served.
        assert client.get("/api/requests", params={**world, "limit": 1001}).status_code == 422
        open311 = "/open311/v2/requests.xml"
        assert client.get(open311, params={"page_size": 200}).status_code == 200
        assert client.get(open311, params={"page_size": 201}).status_code == 400
