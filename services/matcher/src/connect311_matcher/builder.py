"""Builds cover grids off the matching path: in a worker process when the grid is big.

A thread would do, but at 1M circles its numpy work holds the GIL about half the time for
tens of seconds, and matching slows with it. A spawned process builds the grid and pickles
it back (arrays only: about 0.2 s to unpickle 360 MB); matching keeps its whole interpreter.
Small grids are built in a thread, where starting a process would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any

from connect311_matcher.geodesy import FloatArray
from connect311_matcher.grid import CircleBatch, CoverGrid, GridShape

log = logging.getLogger(__name__)
_JOIN_S = 5.0


class GridBuildError(RuntimeError):
    """The worker process could not build the grid."""


def build_cover_grid(shape: GridShape, batch: CircleBatch, lon_half: FloatArray) -> CoverGrid:
    """Build a cover grid (pure; the same wherever it runs)."""
    return CoverGrid(shape, batch, lon_half)


def _build_and_send(out: Connection, shape: GridShape, batch: CircleBatch, half: Any) -> None:
    """Worker process entry point: send back the grid, or the error as text."""
    try:
        out.send(("grid", build_cover_grid(shape, batch, half)))
    except BaseException:
        out.send(("error", traceback.format_exc()))
    finally:
        out.close()


class GridBuilder:
    """Builds grids of at least `process_min` circles in a worker process, smaller in a thread."""

    def __init__(self, process_min: int) -> None:
        self.process_min = process_min
        self._context = multiprocessing.get_context("spawn")  # no forked locks or threads

    async def build(self, shape: GridShape, batch: CircleBatch, lon_half: FloatArray) -> CoverGrid:
        """A grid of these circles; a failed worker process falls back to a thread."""
        if len(batch.slots) >= self.process_min:
            try:
                return await self._in_process(shape, batch, lon_half)
            except GridBuildError:
                log.exception("building the grid in a worker process failed; using a thread")
        return await asyncio.to_thread(build_cover_grid, shape, batch, lon_half)

    async def _in_process(
        self, shape: GridShape, batch: CircleBatch, lon_half: FloatArray
    ) -> CoverGrid:
        receive, send = self._context.Pipe(duplex=False)
        worker = self._context.Process(
            target=_build_and_send,
            args=(send, shape, batch, lon_half),
            name="connect311-matcher-grid",
            daemon=True,  # never outlives the matcher
        )
        worker.start()
        send.close()  # the worker holds the only write end: its exit means end of file
        receiving = asyncio.ensure_future(asyncio.to_thread(_receive, receive))
        try:
            kind, payload = await asyncio.shield(receiving)
        finally:
            if not receiving.done():  # cancelled: the reader thread returns once the worker dies
                worker.terminate()
                with contextlib.suppress(BaseException):
                    await receiving
            receive.close()
            await asyncio.to_thread(_finish, worker)
        if kind != "grid":
            raise GridBuildError(f"the grid worker failed:\n{payload}")
        assert isinstance(payload, CoverGrid)
        return payload


def _receive(receive: Connection) -> tuple[str, object]:
    try:
        kind, payload = receive.recv()
    except (EOFError, OSError) as exc:
        raise GridBuildError(f"the grid worker exited without a grid ({exc!r})") from exc
    return str(kind), payload


def _finish(worker: multiprocessing.process.BaseProcess) -> None:
    """Reap the worker; one still running (a cancelled build) is stopped."""
    worker.join(_JOIN_S)
    if worker.is_alive():
        worker.terminate()
        with contextlib.suppress(Exception):
            worker.join(_JOIN_S)
