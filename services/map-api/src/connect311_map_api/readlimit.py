"""Per-client rate limit on public reads (map pages, stats, lists, Open311, preview), by cost.

A few clients asking for the heaviest pages in a loop slowed every other caller; this caps
what one client (the ASGI peer address) may spend. Every call is charged by what it cost the
server: one unit per started `unit_bytes` of answer, at least one. Answer bytes are what the
expensive part scales with (rows fetched, then turned into GeoJSON or XML; XML costs more per
row and is larger per row too), they are measured here for every route (no route can forget
to report its cost), and, unlike elapsed time, they do not grow when the server is busy, so a
normal client is not charged more because someone else is flooding. A street-scale map page
costs one unit; a whole-world page of 1,000 features (~440 KB) costs 7 at the default 64 KiB.

The cost is known only once the answer is sent: a client is let in while it has at least one
unit left in every window and is then charged in full, so the call that crosses the line
completes and its overshoot is waited off before the next one. The counts are in memory, per
process, in sliding-window counters (`core/ratewindow.py` arithmetic): a cheap gate that
refuses a flood before any database work, not an exact quota.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connect311_map_api.core import open311
from connect311_map_api.core.ratewindow import Limit, allowed, wait_s, window_start
from connect311_map_api.middleware import PUBLIC_READ_PREFIXES
from connect311_map_api.ratelimit import parse_limits

__all__ = ["DEFAULT_UNIT_BYTES", "LIMITED_PREFIXES", "PublicReadLimit", "ReadBudget", "units"]

LIMITED_PREFIXES = (*PUBLIC_READ_PREFIXES, "/api/subscriptions/preview", "/feeds/")
"""Reads anyone may make without a token (open data, the sign-up volume preview), and every
Atom feed: feed readers poll, and a private feed's token is not a reason to poll unlimited."""

DEFAULT_UNIT_BYTES = 65_536


def units(sent_bytes: int, unit_bytes: int) -> int:
    """What an answer of `sent_bytes` costs: one unit per started `unit_bytes`, at least one."""
    return max(1, math.ceil(sent_bytes / unit_bytes))


@dataclass
class _Window:
    """One client's counts in one limit: units spent in the window starting at `start`
    and in the window before it."""

    start: int
    previous: int = 0
    current: int = 0


class ReadBudget:
    """Units spent per client in sliding windows; used on one event loop only (no locks)."""

    def __init__(self, limits: list[Limit], clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.clock = clock
        self._spent: dict[str, list[_Window]] = {}
        self._longest = max((limit.window_s for limit in limits), default=1)
        self._next_prune = clock() + self._longest

    def wait_s(self, key: str) -> int | None:
        """Seconds until `key` has a unit left in every window, or None when it has now."""
        now = self.clock()
        windows = self._spent.get(key)
        if windows is None:
            return None
        longest = 0
        for limit, window in zip(self.limits, windows, strict=True):
            previous, current = _counts(window, limit, now)
            elapsed = now - window_start(now, limit.window_s)
            if not allowed(limit, previous, current + 1, elapsed):
                longest = max(longest, wait_s(limit, previous, current, elapsed))
        return longest or None

    def charge(self, key: str, cost: int) -> None:
        """Count `cost` units spent by `key` now (even past the limit: see the module doc)."""
        now = self.clock()
        self._prune(now)
        windows = self._spent.setdefault(
            key, [_Window(window_start(now, limit.window_s)) for limit in self.limits]
        )
        for limit, window in zip(self.limits, windows, strict=True):
            start = window_start(now, limit.window_s)
            window.previous, window.current = _counts(window, limit, now)
            window.start = start
            window.current += cost

    @property
    def clients(self) -> int:
        """Clients with counts kept (memory use, for tests and metrics)."""
        return len(self._spent)

    def _prune(self, now: float) -> None:
        """Forget clients whose every count has aged out (bounded memory under many IPs)."""
        if now < self._next_prune:
            return
        self._next_prune = now + self._longest
        stale = [
            key
            for key, windows in self._spent.items()
            if all(
                _counts(w, limit, now) == (0, 0)
                for limit, w in zip(self.limits, windows, strict=True)
            )
        ]
        for key in stale:
            del self._spent[key]


def _counts(window: _Window, limit: Limit, now: float) -> tuple[int, int]:
    """(previous, current) as of `now`: a window that has ended becomes the previous one."""
    start = window_start(now, limit.window_s)
    if window.start == start:
        return window.previous, window.current
    if window.start == start - limit.window_s:
        return window.current, 0
    return 0, 0


class PublicReadLimit:
    """429 with Retry-After once one client has spent what `spec` allows on public reads.

    `spec` is in `limits` notation (`20/second;300/minute`), counted in units of
    `unit_bytes` of answer (a light call is one unit); an empty spec turns it off.
    """

    def __init__(
        self,
        app: ASGIApp,
        spec: str,
        prefixes: tuple[str, ...] = LIMITED_PREFIXES,
        unit_bytes: int = DEFAULT_UNIT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.unit_bytes = unit_bytes
        self.budget = ReadBudget(parse_limits(spec) if spec.strip() else [], clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and self.budget.limits
            and scope["method"] != "OPTIONS"  # CORS preflights cost nothing
            and str(scope["path"]).startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        wait = self.budget.wait_s(key)
        if wait is not None:
            await _too_many(send, wait, str(scope["path"]))
            return
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            self.budget.charge(key, units(sent, self.unit_bytes))


async def _too_many(send: Send, wait_s: int, path: str) -> None:
    """429; on an Open311 route in the GeoReport v2 error shape of its format (a strict
    client reads it like any other error), elsewhere `{"detail": ...}`."""
    detail = f"too many requests from this address; slow down and try again in {wait_s} seconds"
    media, body = b"application/json", json.dumps({"detail": detail}).encode()
    if path.startswith("/open311/"):
        errors = open311.errors_dict(429, detail)
        body = json.dumps(errors).encode()
        if path.endswith(".xml"):
            media, body = b"text/xml", open311.errors_xml(errors)
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"content-type", media), (b"retry-after", str(wait_s).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
