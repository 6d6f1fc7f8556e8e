"""Per-client rate limit on public reads (map pages, stats, lists, Open311, preview).

A few clients asking for the heaviest pages in a loop slowed every other caller; this caps
how often one client (the ASGI peer address) may read. The counts are in memory, per
process: a cheap gate that refuses a flood before any database work, not an exact quota.
"""

from __future__ import annotations

import json
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from connect311_map_api.middleware import PUBLIC_READ_PREFIXES

__all__ = ["LIMITED_PREFIXES", "PublicReadLimit"]

LIMITED_PREFIXES = (*PUBLIC_READ_PREFIXES, "/api/subscriptions/preview")
"""Reads anyone may make without a token: open data and the sign-up volume preview."""


class PublicReadLimit:
    """429 with Retry-After once one client has made more public reads than `spec` allows.

    `spec` is in `limits` notation (`20/second;300/minute`); an empty spec turns it off.
    """

    def __init__(self, app: ASGIApp, spec: str, prefixes: tuple[str, ...] = LIMITED_PREFIXES):
        self.app = app
        self.prefixes = prefixes
        self.items: list[RateLimitItem] = parse_many(spec) if spec.strip() else []
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.items
            and scope["method"] != "OPTIONS"  # CORS preflights cost nothing
            and str(scope["path"]).startswith(self.prefixes)
        ):
            client = scope.get("client")
            key = client[0] if client else "unknown"
            wait = self._refused(key)
            if wait is not None:
                await _too_many(send, wait)
                return
        await self.app(scope, receive, send)

    def _refused(self, key: str) -> int | None:
        """Seconds to wait when over a limit (nothing counted then), else None (counted)."""
        for item in self.items:
            if not self.limiter.test(item, "read", key):
                reset = self.limiter.get_window_stats(item, "read", key).reset_time
                return max(1, math.ceil(reset - time.time()))
        for item in self.items:
            self.limiter.hit(item, "read", key)
        return None


async def _too_many(send: Send, wait_s: int) -> None:
    detail = f"too many requests from this address; slow down and try again in {wait_s} seconds"
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(wait_s).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
