"""Heavy pages take turns (heavy_work.py): at most MAP_API_HEAVY_THREADS build at once, the
rest wait on the event loop (not as runnable threads), and light routes keep answering."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from connect311_contracts.settings import SigningSettings
from connect311_map_api import heavy_work
from connect311_map_api.app import create_app
from connect311_map_api.db import queries
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import RecordingPublisher

HANG_GUARD_S = 30.0  # only so a broken build fails instead of hanging; never a timing check
HEAVY_PATHS = (
    "/api/requests",
    "/api/requests/clusters?zoom=12",
    "/api/stats",
    "/api/stats/breakdown",
    "/api/stats/departments",
    "/api/stats/departments.csv",
    "/api/tiles/14/4823/6160.json",
    "/open311/v2/requests.json",
    "/open311/v2/requests.xml",
    "/feeds/requests.atom",
)
LIGHT_PATHS = ("/healthz", "/api/categories", "/api/agencies", "/api/requests/lookup?number=1")


def _app(url: str, publisher: RecordingPublisher, signing: SigningSettings) -> FastAPI:
    settings = MapApiSettings(database_url=url, consume=False, heavy_threads=2)
    return create_app(settings, signing=signing, publisher=publisher)


async def _until(condition: Any, what: str) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the state of other threads and tasks
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), HANG_GUARD_S)
    except TimeoutError:
        pytest.fail(f"never reached: {what}")


async def test_only_the_bounded_number_of_heavy_pages_build_at_once(
    sqlite_url: str,
    publisher: RecordingPublisher,
    signing: SigningSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _app(sqlite_url, publisher, signing)
    gate, lock = threading.Event(), threading.Lock()
    building = {"now": 0, "most": 0}
    real_page = queries.request_page

    def held_page(*args: Any, **kwargs: Any) -> Any:
        with lock:
            building["now"] += 1
            building["most"] = max(building["most"], building["now"])
        try:
            gate.wait(HANG_GUARD_S)
            return real_page(*args, **kwargs)
        finally:
            with lock:
                building["now"] -= 1

    monkeypatch.setattr(queries, "request_page", held_page)
    limiter = heavy_work.limiter(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        pages = [
            asyncio.create_task(client.get("/api/requests", params={"limit": 10, "cursor": str(n)}))
            for n in range(5)
        ]
        try:
            # Each of the five is either building or parked on the loop (counted waiting).
            await _until(
                lambda: building["now"] + limiter.statistics().tasks_waiting == 5,
                "five pages building or waiting",
            )
            assert building["now"] == 2, "only two pages may build at once"
            assert limiter.statistics().tasks_waiting == 3
            assert limiter.statistics().borrowed_tokens == 2
            # A light route is not behind the heavy ones: it answers while they are held.
            light = await asyncio.wait_for(client.get("/api/categories"), HANG_GUARD_S)
            assert light.status_code == 200
            assert building["now"] == 2 and limiter.statistics().tasks_waiting == 3
        finally:
            gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*pages), HANG_GUARD_S)
    assert [a.status_code for a in answers] == [200] * 5
    assert building["most"] == 2  # every page was built, never more than two at once
    assert limiter.statistics().borrowed_tokens == 0


async def test_a_refused_heavy_request_gives_its_slot_back(
    sqlite_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    app = _app(sqlite_url, publisher, signing)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for _ in range(3):  # more refusals than slots: a leaked slot would block the next page
            refused = await client.get("/api/requests", params={"cursor": "not-a-number"})
            assert refused.status_code == 422
        page = await asyncio.wait_for(client.get("/api/requests"), HANG_GUARD_S)
    assert page.status_code == 200
    assert heavy_work.limiter(app).statistics().borrowed_tokens == 0


async def test_heavy_routes_take_a_slot_and_light_ones_do_not(
    sqlite_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    app = _app(sqlite_url, publisher, signing)
    limiter = heavy_work.limiter(app)
    holders = [object(), object()]
    for holder in holders:  # every slot taken: a heavy route can only wait
        await limiter.acquire_on_behalf_of(holder)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        heavy = [asyncio.create_task(client.get(path)) for path in HEAVY_PATHS]
        try:
            await _until(
                lambda: (
                    sum(t.done() for t in heavy) + limiter.statistics().tasks_waiting
                    == len(HEAVY_PATHS)
                ),
                "every heavy request answered or waiting",
            )
            unbounded = [path for path, t in zip(HEAVY_PATHS, heavy, strict=True) if t.done()]
            assert unbounded == [], "answered without a slot"
            for path in LIGHT_PATHS:  # health, lists, lookups: the default pool, no slot
                light = await asyncio.wait_for(client.get(path), HANG_GUARD_S)
                assert light.status_code in (200, 404), path
        finally:
            for holder in holders:
                limiter.release_on_behalf_of(holder)
        answers = await asyncio.wait_for(asyncio.gather(*heavy), HANG_GUARD_S)
    assert [a.status_code for a in answers] == [200] * len(HEAVY_PATHS)
    assert MapApiSettings(consume=False).heavy_threads == 2
