"""Short-lived caches: aggregate answers (clusters, stats) and heavy rendered answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache

__all__ = ["HEAVY_ROWS", "AggregateCache", "AnswerCache"]

HEAVY_ROWS = 100
"""Answers of at least this many rows are worth keeping: rendering them is most of their cost,
and small ones are cheap to make again (and too many to keep)."""


class AggregateCache:
    """Keeps answers for `ttl_s` seconds; a ttl of 0 turns caching off."""

    def __init__(self, ttl_s: float, maxsize: int = 256) -> None:
        self._cache: Any = TTLCache(maxsize=maxsize, ttl=ttl_s) if ttl_s > 0 else None
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached answer for key, computing (outside the lock) when absent or expired."""
        if self._cache is None:
            return compute()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = compute()
        with self._lock:
            self._cache[key] = value
        return value


class AnswerCache:
    """Rendered answer bodies kept for `ttl_s` seconds, at most `max_bytes` of them in all.

    For heavy pages asked again and again (a whole-world page, a full Open311 page): the
    second asker gets the bytes without a query or serialisation. Bounded by size, not by
    count, so many different heavy answers cannot grow memory. A ttl of 0 turns it off.
    """

    def __init__(self, ttl_s: float, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._cache: Any = (
            TTLCache(maxsize=max_bytes, ttl=ttl_s, getsizeof=len) if ttl_s > 0 else None
        )
        self._lock = threading.Lock()

    def lookup(self, key: Hashable) -> bytes | None:
        """The body kept for key, or None (absent, expired or caching off)."""
        if self._cache is None:
            return None
        with self._lock:
            body: bytes | None = self._cache.get(key)
        return body

    def keep(self, key: Hashable, body: bytes) -> None:
        """Keep body for key (a body larger than the whole cache is not kept)."""
        if self._cache is None or len(body) > self._cache.maxsize:
            return
        with self._lock:
            self._cache[key] = body
