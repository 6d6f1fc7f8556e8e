"""Grids built in a worker process answer like those built in a thread; none outlives its build."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import numpy as np
import pytest

from connect311_matcher.builder import GridBuilder, GridBuildError, build_cover_grid
from connect311_matcher.geodesy import EARTH_RADIUS_M, unit_vector
from connect311_matcher.grid import CircleBatch, CoverGrid, GridShape

SHAPE = GridShape(500.0)


def circles(n: int, seed: int = 3) -> tuple[CircleBatch, np.ndarray]:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(27.6, 27.96, n)
    lon = rng.uniform(-82.85, -82.44, n)
    radius = rng.uniform(50, 3000, n)
    half = np.degrees(radius / EARTH_RADIUS_M / np.cos(np.radians(lat)))
    return CircleBatch(np.arange(n, dtype=np.int32), lat, lon, radius), half


def answers(grid: CoverGrid, points: np.ndarray) -> list[list[int]]:
    return [sorted(grid.query(la, lo, unit_vector(la, lo)).tolist()) for la, lo in points.tolist()]


async def test_a_grid_built_in_a_worker_process_answers_like_one_built_here() -> None:
    batch, half = circles(3_000)
    built = await GridBuilder(process_min=0).build(SHAPE, batch, half)
    local = build_cover_grid(SHAPE, batch, half)
    rng = np.random.default_rng(9)
    points = np.column_stack([rng.uniform(27.55, 28.0, 400), rng.uniform(-82.9, -82.4, 400)])
    found = answers(built, points)
    assert found == answers(local, points)
    assert sum(map(len, found)) > 400  # the points really fall in circles
    assert np.array_equal(built.cell_keys, local.cell_keys)
    assert multiprocessing.active_children() == []


async def test_a_failing_worker_reports_its_error() -> None:
    batch, half = circles(100)
    broken = CircleBatch(batch.slots, batch.lat, batch.lon[:10], batch.radius_m)
    with pytest.raises(GridBuildError, match="the grid worker failed"):
        await GridBuilder(process_min=0)._in_process(SHAPE, broken, half)
    assert multiprocessing.active_children() == []


async def test_a_cancelled_build_stops_its_worker_process() -> None:
    batch, half = circles(400_000)
    build = asyncio.create_task(GridBuilder(process_min=0).build(SHAPE, batch, half))
    deadline = time.monotonic() + 30
    while not multiprocessing.active_children():
        assert time.monotonic() < deadline, "the worker process never started"
        await asyncio.sleep(0.01)
    build.cancel()
    with pytest.raises(asyncio.CancelledError):
        await build
    assert multiprocessing.active_children() == []


async def test_small_grids_are_built_without_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_process(*_: object) -> CoverGrid:
        raise AssertionError("a small grid must not start a process")

    batch, half = circles(50)
    builder = GridBuilder(process_min=1_000)
    monkeypatch.setattr(builder, "_in_process", no_process)
    grid = await builder.build(SHAPE, batch, half)
    assert np.array_equal(grid.cell_keys, build_cover_grid(SHAPE, batch, half).cell_keys)


async def test_a_failed_worker_process_falls_back_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def killed(*_: object) -> CoverGrid:
        raise GridBuildError("the grid worker exited without a grid (killed)")

    batch, half = circles(200)
    builder = GridBuilder(process_min=0)
    monkeypatch.setattr(builder, "_in_process", killed)
    grid = await builder.build(SHAPE, batch, half)
    assert np.array_equal(grid.cell_keys, build_cover_grid(SHAPE, batch, half).cell_keys)
