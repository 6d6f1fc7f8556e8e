"""Sign-up rate limits per client IP, mailbox, mail domain and in all, shared in the database.

Four scopes, checked in this order: the client IP, the mailbox (the folded address, see
`mailbox.py`), its mail domain, and one global count of confirmation emails. The last two
bound what sign-up can make the city's mail server send, however many IPs and mailboxes an
attacker has. Every attempt touches the same rows in the same order for every address, so
known and unknown addresses still do the same work.

The counts live in the map API's own database (`signup_limits`), so every replica and
worker shares them and a restart keeps them. Keys are HMACs with the signing secret: the
table reveals neither an IP nor an address, and cannot be reversed by hashing guesses
without the secret. The same sliding-window counters kept per process in memory stay in
front as a cheap gate: they count only attempts the database accepted (a subset of the
shared count, in the same epoch-aligned windows), so they refuse a flooding client before
any database work and refuse only what the shared count would refuse too (up to float
rounding at a window's boundary instant: `limits` computes in floats).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import Connection

from connect311_map_api.core.ratewindow import Limit, allowed, wait_s, window_start
from connect311_map_api.db import signup_limits as store

__all__ = ["Refusal", "SignupLimiter", "parse_limits"]

PRUNE_EVERY_S = 60.0


@dataclass(frozen=True)
class Refusal:
    """Which scope refused ('ip', 'addr', 'domain' or 'all') and the seconds to wait."""

    scope: str
    seconds: int


def _scopes(ip: str, address: str) -> tuple[tuple[str, str], ...]:
    """The (kind, value) pairs one attempt counts against, always in this order."""
    _, _, domain = address.rpartition("@")
    return (("ip", ip), ("addr", address), ("domain", domain), ("all", ""))


def parse_limits(spec: str) -> list[Limit]:
    """`10/minute;50/hour` as limits."""
    return [Limit(item.amount, item.get_expiry()) for item in parse_many(spec)]


class SignupLimiter:
    """Answers 'may this IP / this mailbox sign up now?' and how long to wait if not."""

    def __init__(
        self,
        per_ip: str,
        per_address: str,
        secret: str,
        per_domain: str = "",
        confirmations: str = "",
    ) -> None:
        self._secret = secret.encode()
        specs = {"ip": per_ip, "addr": per_address, "domain": per_domain, "all": confirmations}
        self._limits = {kind: parse_limits(spec) if spec else [] for kind, spec in specs.items()}
        self._items = {kind: parse_many(spec) if spec else [] for kind, spec in specs.items()}
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._next_prune = 0.0

    def key(self, kind: str, value: str) -> str:
        """The stored key for an IP or a normalised address: a keyed hash of it."""
        message = f"signup-limit\0{kind}\0{value}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def gate(self, ip: str, address: str) -> Refusal | None:
        """In-memory check (no database): which scope refuses and for how long, or None."""
        for kind, value in _scopes(ip, address):
            for item in self._items[kind]:
                if not self._memory.test(item, kind, value):
                    return Refusal(kind, self._memory_wait(item, kind, value))
        return None

    def count(self, conn: Connection, ip: str, address: str, now: float) -> Refusal | None:
        """Count the attempt in the shared windows; the refusal if over a limit.

        `address` is the folded mailbox (`normalized_mailbox`). When a refusal is returned
        the caller must roll back, so refused attempts are not counted anywhere.
        """
        self._maybe_prune(conn, now)
        for kind, value in _scopes(ip, address):
            key = self.key(kind, value)
            for limit in self._limits[kind]:
                wait = self._count_one(conn, key, limit, now)
                if wait is not None:
                    return Refusal(kind, wait)
        return None

    def accepted(self, ip: str, address: str) -> None:
        """Record an accepted attempt in the in-memory gate."""
        for kind, value in _scopes(ip, address):
            for item in self._items[kind]:
                self._memory.hit(item, kind, value)

    def _count_one(self, conn: Connection, key: str, limit: Limit, now: float) -> int | None:
        start = window_start(now, limit.window_s)
        current = store.hit(conn, key, limit.window_s, start)
        previous = store.count(conn, key, limit.window_s, start - limit.window_s)
        elapsed = now - start
        if allowed(limit, previous, current, elapsed):
            return None
        return wait_s(limit, previous, current - 1, elapsed)

    def _maybe_prune(self, conn: Connection, now: float) -> None:
        if now >= self._next_prune:
            store.prune(conn, int(now))
            self._next_prune = now + PRUNE_EVERY_S

    def _memory_wait(self, item: RateLimitItem, kind: str, value: str) -> int:
        reset = self._memory.get_window_stats(item, kind, value).reset_time
        return max(1, math.ceil(reset - time.time()))
