"""Sliding-window counter arithmetic for rate limits (pure: the store keeps the counts).

Each limit keeps one count per fixed window; the estimate for "the last `window_s`
seconds" weighs the previous window by how much of it still overlaps, as `limits`'
sliding-window-counter strategy does. Two integers per key and window, so any number of
processes can share them in a database row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Limit:
    """At most `amount` attempts in any `window_s` seconds."""

    amount: int
    window_s: int


def window_start(now: float, window_s: int) -> int:
    """Start (epoch seconds) of the fixed window holding `now`."""
    return int(now // window_s) * window_s


def estimate(previous: int, current: int, elapsed: float, window_s: int) -> Fraction:
    """Attempts in the sliding window ending `elapsed` seconds into the current window.

    Exact (rational) arithmetic, so `allowed` and `wait_s` agree on the boundary second.
    """
    return previous * (1 - Fraction(elapsed) / window_s) + current


def allowed(limit: Limit, previous: int, current: int, elapsed: float) -> bool:
    """True when one more attempt fits (`current` already counts it)."""
    return estimate(previous, current, elapsed, limit.window_s) <= limit.amount


def wait_s(limit: Limit, previous: int, before: int, elapsed: float) -> int:
    """Whole seconds until one more attempt fits, given `before` accepted in this window."""
    w, e = limit.window_s, Fraction(elapsed)
    room = limit.amount - 1 - before  # what the previous window's share must shrink to
    if room >= 0:
        if previous <= room:
            return 1
        seconds = w * (1 - Fraction(room, previous)) - e
    else:
        # This window alone is full: wait for it to become the previous one, then for its
        # weight to fade enough.
        seconds = (w - e) + w * (1 - Fraction(limit.amount - 1, before))
    return max(1, math.ceil(seconds))
