"""Fan-out of request changes to live-map streams (one bounded queue per client).

Open streams are capped per client and in all: each holds a connection and a queue for as
long as the client likes, so without a cap one client could hold them all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

__all__ = ["Broadcaster", "HeldEventSourceResponse", "StreamsFull"]

QUEUE_SIZE = 1_000
RETRY_AFTER_S = 30
"""What a refused client is told to wait before opening another stream."""


class StreamsFull(Exception):
    """No stream slot is free: for this client (429) or for anyone (503)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Broadcaster:
    """Publishes features to every connected stream; a slow client loses old items, not others."""

    def __init__(self, max_streams: int = 1_000, max_per_client: int = 10) -> None:
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._max_streams = max_streams
        self._max_per_client = max_per_client
        self._held: Counter[str] = Counter()

    @property
    def slots_held(self) -> int:
        """How many stream slots are reserved (open streams and ones about to open)."""
        return self._held.total()

    def reserve(self, client: str) -> Callable[[], None]:
        """Take a stream slot for `client`; the returned callable frees it (once).

        Raises StreamsFull when the client or the server is at its cap.
        """
        if self._held[client] >= self._max_per_client:
            raise StreamsFull(
                429,
                f"at most {self._max_per_client} live streams per client; close one, "
                f"or try again in {RETRY_AFTER_S} seconds",
            )
        if self._held.total() >= self._max_streams:
            raise StreamsFull(503, f"the live stream is full; try again in {RETRY_AFTER_S} seconds")
        self._held[client] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held[client] -= 1
                if self._held[client] <= 0:
                    del self._held[client]

        return release

    @property
    def clients(self) -> int:
        """How many streams are open."""
        return len(self._queues)

    def publish(self, item: dict[str, Any]) -> None:
        """Hand an item to every stream (never blocks)."""
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(item)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue receiving every item published while the context is open."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


class HeldEventSourceResponse(EventSourceResponse):
    """A server-sent event stream that frees its slot however it ends.

    The slot is freed when the response finishes, fails or is cancelled (a disconnect),
    even if its generator never started.
    """

    def __init__(self, *args: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
