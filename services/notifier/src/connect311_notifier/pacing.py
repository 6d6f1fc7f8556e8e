"""When and over which connection an email goes: the global pace, idle waits, lanes."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable

from connect311_notifier.ledger import ClaimedEmail

__all__ = ["AHEAD_S", "IDLE_FLOOR_S", "Pacer", "lane", "sleep_until_due"]

AHEAD_S = 0.02
"""A lane marks 'sending' (and later 'sent') in one commit as many emails as the pacer lets
out within this long, at most settings.smtp_record_every: one commit per chunk in a burst,
one per email at a paced rate (the crash window then stays a single email)."""
IDLE_FLOOR_S = 0.05


class Pacer:
    """A global send rate: at most `rate_per_s` emails a second, evenly spaced."""

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate_per_s
        self.clock = clock
        self.next_slot = 0.0

    def ready(self) -> bool:
        """Whether the next send slot has come (wait would not sleep)."""
        return self.next_slot <= self.clock()

    def ahead(self, limit: int) -> int:
        """How many emails go out within the next AHEAD_S at this rate (1 to `limit`)."""
        return max(1, min(limit, int(AHEAD_S / self.interval)))

    async def wait(self) -> None:
        """Sleep until the next send slot."""
        now = self.clock()
        if self.next_slot > now:
            await asyncio.sleep(self.next_slot - now)
        self.next_slot = max(now, self.next_slot) + self.interval


async def sleep_until_due(
    due: float | None, check_s: float, stop: asyncio.Event, wake: asyncio.Event
) -> None:
    """Wait until `due` (at most `check_s`), or until stopped or woken by a new row."""
    timeout = check_s
    if due is not None:
        # Never a busy loop: something due may belong to a recipient whose earlier email
        # another instance is sending right now.
        timeout = max(IDLE_FLOOR_S, min(timeout, due - time.time()))
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def lane(email: ClaimedEmail, lanes: int) -> int:
    """Which connection carries this email: the same for every email to one recipient.

    One connection per recipient keeps a recipient's emails (confirmation, alerts, follow
    updates, digests) in the order the ledger queued them; different recipients go out in
    parallel. The key is the normalized address's hash, never the address itself.
    """
    return zlib.crc32(email.recipient_key.encode()) % lanes
