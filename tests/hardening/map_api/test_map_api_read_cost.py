"""Public reads are charged by what they cost, so heavy pages spend a client's budget faster
(issue 12: whole-world pages and full Open311 XML pages in a loop slowed everyone else)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from connect311_contracts.settings import SigningSettings
from connect311_map_api.app import create_app
from connect311_map_api.core.ratewindow import Limit
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.readlimit import PublicReadLimit, ReadBudget, units
from connect311_map_api.settings import MapApiSettings
from tests.unit.map_api.factories import T0, RecordingPublisher, event, snapshot


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _answering(size: int) -> object:
    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * size, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _status(limit: PublicReadLimit) -> int:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/requests", "client": ("1.2.3.4", 1)}
    await limit(scope, None, send)  # type: ignore[arg-type]
    return int(sent[0]["status"])


async def _statuses(limit: PublicReadLimit, calls: int) -> list[int]:
    return [await _status(limit) for _ in range(calls)]


async def test_a_heavy_answer_spends_the_budget_faster_than_a_light_one() -> None:
    light = PublicReadLimit(_answering(300), "12/minute", unit_bytes=1_000)  # type: ignore[arg-type]
    heavy = PublicReadLimit(_answering(4_500), "12/minute", unit_bytes=1_000)  # type: ignore[arg-type]
    # Before: every call counted one, so both got twelve answers.
    assert await _statuses(light, 13) == [200] * 12 + [429]
    # 5 units each: the third call is let in with two units left (its cost is known only once
    # it is sent), then the client waits off the overshoot.
    assert await _statuses(heavy, 4) == [200, 200, 200, 429]


def test_units_are_started_blocks_of_answer_and_never_zero() -> None:
    assert [units(n, 1_000) for n in (0, 1, 1_000, 1_001, 7_000)] == [1, 1, 1, 2, 7]


def test_an_overshoot_is_waited_off_before_the_next_read() -> None:
    clock = Clock(1_000_000.0)  # on a window boundary
    budget = ReadBudget([Limit(10, 1)], clock)
    budget.charge("a", 30)  # one page worth three seconds of budget
    assert budget.wait_s("a") == 2  # this window, then until the previous one's weight fades
    clock.now += 1.5
    assert budget.wait_s("a") == 1
    clock.now += 0.25  # 30 * 0.25 = 7.5 left of the previous window: one unit fits again
    assert budget.wait_s("a") is None
    assert budget.wait_s("b") is None  # another client has its own budget


def test_clients_whose_counts_aged_out_are_forgotten() -> None:
    clock = Clock()
    budget = ReadBudget([Limit(5, 1), Limit(50, 60)], clock)
    for n in range(100):
        budget.charge(f"10.0.0.{n}", 1)
    assert budget.clients == 100
    clock.now += 121  # two minutes: nothing anyone spent counts any more
    budget.charge("10.0.1.1", 1)
    assert budget.clients == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 5, allow_nan=False), st.integers(1, 40)), min_size=1, max_size=30
    )
)
def test_retry_after_is_honest(history: list[tuple[float, int]]) -> None:
    """Whatever was spent, waiting the seconds answered is enough, and spending more never
    shortens the wait."""
    clock = Clock()
    limits = [Limit(10, 1), Limit(40, 10)]
    budget, more = ReadBudget(limits, clock), ReadBudget(limits, clock)
    for gap, cost in history:
        clock.now += gap
        budget.charge("a", cost)
        more.charge("a", cost)
    more.charge("a", 1)
    wait = budget.wait_s("a")
    assert (more.wait_s("a") or 0) >= (wait or 0)
    if wait is not None:
        clock.now += wait
        assert budget.wait_s("a") is None


def _app(tmp_path: Path, **settings_: object) -> FastAPI:
    return create_app(
        MapApiSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", consume=False, **settings_),  # type: ignore[arg-type]
        signing=SigningSettings(secret_key="read-cost-secret"),
        publisher=RecordingPublisher(),
    )


def _seed(app: FastAPI, n: int) -> None:
    events = [
        event(
            "opened",
            snapshot(
                f"h{i}",
                lat=27.6 + 0.3 * (i % 50) / 50,
                long=-82.8 + 0.25 * (i // 50) / 20,
                opened=T0 + timedelta(minutes=i),
                description="a long enough description of a pothole " * 5,
            ),
        )
        for i in range(n)
    ]
    with app.state.ctx.engine.begin() as conn:
        apply_events(conn, events)


WORLD = {"bbox": "-180,-90,180,90", "limit": 1000}
STREET = {"bbox": "-82.801,27.599,-82.79,27.61", "limit": 1000}


def test_whole_world_pages_are_refused_long_before_street_pages(tmp_path: Path) -> None:
    app = _app(tmp_path, read_limit="40/minute", read_limit_unit_bytes=16_384)
    _seed(app, 1_000)
    with TestClient(app) as client:
        world = [client.get("/api/requests", params=WORLD).status_code for _ in range(10)]
        assert world[:2] == [200, 200]  # tens of units a page: the second crosses the line
        assert set(world[2:]) == {429}
    app = _app(tmp_path / "other", read_limit="40/minute", read_limit_unit_bytes=16_384)
    _seed(app, 1_000)
    with TestClient(app) as client:
        street = [client.get("/api/requests", params=STREET).status_code for _ in range(40)]
        assert street == [200] * 40  # one unit each


def test_a_heavy_page_asked_again_is_the_same_answer_from_the_cache(tmp_path: Path) -> None:
    cached = _app(tmp_path, read_limit="", heavy_answer_cache_s=60)
    _seed(cached, 300)
    fresh = _app(tmp_path / "fresh", read_limit="", heavy_answer_cache_s=0)
    _seed(fresh, 300)
    with TestClient(cached) as a, TestClient(fresh) as b:
        for path, params in (
            ("/api/requests", WORLD),
            ("/open311/v2/requests.xml", {"page_size": 200}),
            ("/open311/v2/requests.json", {"page_size": 200}),
        ):
            first = a.get(path, params=params)
            assert first.status_code == 200
            assert first.content == b.get(path, params=params).content  # same bytes as uncached
            assert (
                first.headers["content-type"] == b.get(path, params=params).headers["content-type"]
            )
        keys = set(cached.state.ctx.answers._cache)
        assert len(keys) == 3  # each heavy answer was kept
        a.get("/api/requests", params=STREET)  # a few features: cheap to make again, not kept
        assert set(cached.state.ctx.answers._cache) == keys
