"""Leases on outbox rows, for one send loop: recovery after a crash, renewal, take-over.

Each send loop (emails, webhooks) owns its channel's rows: at start it puts back what its
own previous life left (claimed rows never left; 'sending' ones may have, and go again with
the same Message-ID or webhook-id), and while running it renews the lease on the rows it
holds and takes over rows whose instance stopped renewing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from connect311_notifier.ledger import Ledger
from connect311_notifier.metrics import Metrics
from connect311_notifier.policy import Channel
from connect311_notifier.settings import NotifierSettings

__all__ = ["Leases"]

log = logging.getLogger(__name__)


class Leases:
    """Recovery and lease renewal for one channel's rows; `wake` is set when rows come back."""

    def __init__(
        self,
        ledger: Ledger,
        settings: NotifierSettings,
        metrics: Metrics,
        channel: Channel,
        wake: asyncio.Event,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.metrics = metrics
        self.channel = channel
        self.wake = wake

    async def run(
        self, stop: asyncio.Event, send: Callable[[asyncio.Event], Awaitable[None]]
    ) -> None:
        """A send loop's life: our own rows back first, then `send` until `stop` while the
        leases are kept."""
        await self.recover(self.settings.instance_id)  # ours now, others' past the lease
        keeping = asyncio.create_task(self.keep(stop), name=f"{self.channel.value}-leases")
        try:
            await send(stop)
        finally:
            keeping.cancel()
            await asyncio.gather(keeping, return_exceptions=True)

    async def recover(self, instance: str | None) -> None:
        """Ours at once (`instance`), or anyone's past the lease (None)."""
        claimed, sending = await asyncio.to_thread(
            self.ledger.recover,
            instance,
            self.settings.sending_lease_s,
            time.time(),
            self.channel,
        )
        what = self.channel.value
        if claimed:
            log.info("%d %s(s) claimed before a crash go back in the queue", claimed, what)
        if sending:
            # The crash window: SMTP (or the receiver) may have accepted these just before
            # the crash. They go again with the same id, so the receiver can drop the copy.
            log.warning("resending %d %s(s) a crash left in the middle of sending", sending, what)
            self.metrics.resent_after_crash.inc(sending)
        if claimed or sending:
            self.wake.set()

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew the lease on our rows; take over rows whose instance stopped renewing.

        Without this, rows of an instance that died and never came back (and with them its
        recipients' later rows, which wait behind them) would wait for some restart.
        """
        interval = self.settings.sending_lease_s / 4
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if stop.is_set():
                return
            try:
                await asyncio.to_thread(self.ledger.renew, self.settings.instance_id, time.time())
                await self.recover(None)
            except SQLAlchemyError as exc:  # the send loop reports a database that stays down
                log.warning("could not renew or check leases: %s", exc)
