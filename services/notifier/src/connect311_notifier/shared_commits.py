"""The send lanes' records committed together: one commit for every lane waiting at once.

Before it sends, a lane records what SMTP accepted as sent and marks its next emails
'sending', in one commit (see Sender._drain). With the service's default, one email per
commit (a kill -9 then resends at most one email per connection), that is a commit per
email per lane: in a backlog the largest cost of sending after rendering. Lanes waiting at
the same moment now share one: while a commit runs, the next lanes' records queue, and the
next commit carries them all. Each lane still waits for its own record to be committed
before it sends, so what a kill -9 can resend per connection is unchanged; the commits
(and their round trips and thread hops) are fewer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["Commit", "SharedCommits"]

Commit = Callable[[list[tuple[int, float]], list[int], float], None]
"""Ledger.mark_sent_many: (accepted emails and when, next emails to mark 'sending', now)."""


class SharedCommits:
    """Queues the lanes' records and commits the queue in one transaction at a time."""

    def __init__(self, commit: Commit) -> None:
        self._commit = commit
        self._queued: list[tuple[list[tuple[int, float]], list[int], asyncio.Future[None]]] = []
        self._running: asyncio.Task[None] | None = None
        self.commits = 0
        """Commits made (for tests and metrics)."""

    async def record(self, sent: list[tuple[int, float]], sending: list[int]) -> None:
        """Return once `sent` is recorded as sent and `sending` marked, in some commit."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((sent, sending, done))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(), name="shared-commits")
        await done

    async def _run(self) -> None:
        while self._queued:
            group, self._queued = self._queued, []
            sent = [email for s, _, _ in group for email in s]
            sending = [email for _, n, _ in group for email in n]
            try:
                await asyncio.to_thread(self._commit, sent, sending, time.time())
            except Exception as exc:  # every lane in the group sees its own commit fail
                for *_, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            except BaseException:  # cancelled (shutting down): no lane is left waiting
                for *_, done in group + self._queued:
                    done.cancel()
                self._queued = []
                raise
            self.commits += 1
            for *_, done in group:
                if not done.done():  # a lane cancelled meanwhile: its record stands anyway
                    done.set_result(None)
