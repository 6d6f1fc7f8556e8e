"""Sign-up rate limits per client IP and per address (moving windows, in memory)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class SignupLimiter:
    """Answers 'may this IP / this address sign up now?' and how long to wait if not."""

    def __init__(self, per_ip: str, per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_ip = parse_many(per_ip)
        self._per_address = parse_many(per_address)

    def retry_after(self, ip: str, address_key: str) -> int | None:
        """Seconds to wait when a limit is hit (None: allowed, and the attempt is counted)."""
        checks = [(item, "ip", ip) for item in self._per_ip]
        checks += [(item, "addr", address_key) for item in self._per_address]
        for item, *keys in checks:
            if not self._limiter.test(item, *keys):
                return self._wait(item, keys)
        for item, *keys in checks:
            self._limiter.hit(item, *keys)
        return None

    def _wait(self, item: RateLimitItem, keys: list[str]) -> int:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        return max(1, math.ceil(reset - time.time()))
