"""Short-lived cache for aggregate answers (clusters, stats) that many visitors share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache


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
