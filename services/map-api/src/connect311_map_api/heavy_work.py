"""Heavy pages take turns: at most `MAP_API_HEAVY_THREADS` routes build one at a time.

Sync routes run in Starlette's thread pool (anyio's default limiter: 40 threads). Sixteen
threads building 1,000-feature pages in Python took turns at the interpreter lock, and the
event loop's thread waited its turn among them: every other request (health, the live stream,
sign-up) waited with it, and the loop watchdog logged "event loop blocked" for 112-221 ms
(bench/map_threads.py). A route that builds a large body declares `dependencies=[HEAVY]`: it
waits for a slot on the event loop (a waiting request is a parked task, not a runnable
thread), then runs in the default pool as before. The slot is released when the route
function returns, before the answer is sent, so a slow reader holds none. Light routes keep
the default pool to themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from fastapi import Depends, FastAPI, Request

__all__ = ["HEAVY", "install", "limiter"]


def install(app: FastAPI, threads: int) -> None:
    """Give the app its heavy-work limiter (one per app: tests build several apps)."""
    # Made outside any event loop; anyio binds it to the loop that first uses it.
    app.state.heavy_work = anyio.CapacityLimiter(threads)


def limiter(app: FastAPI) -> anyio.CapacityLimiter:
    """The app's heavy-work limiter (its statistics show who builds and who waits)."""
    found: anyio.CapacityLimiter = app.state.heavy_work
    return found


async def _slot(request: Request) -> AsyncIterator[None]:
    async with limiter(request.app):
        yield


# scope="function": released once the route function has returned, not after the answer has
# been sent (FastAPI >= 0.121; the default would hold the slot while a client reads).
HEAVY = Depends(_slot, scope="function")
