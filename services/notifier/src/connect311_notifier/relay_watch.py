"""The I/O edge of the relay policy: probes, metrics and the log lines an operator acts on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from connect311_notifier.mailer import Mailer
from connect311_notifier.metrics import Metrics
from connect311_notifier.outcome import SendResult
from connect311_notifier.relay import Relay
from connect311_notifier.settings import NotifierSettings

log = logging.getLogger(__name__)


class RelayWatch:
    """Pauses delivery while the SMTP server is unreachable and resumes it when it answers."""

    def __init__(self, settings: NotifierSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.relay = Relay(settings.smtp_probe_base_s, settings.smtp_probe_max_s)

    @property
    def reachable(self) -> bool:
        """Whether emails may be handed to SMTP now."""
        return self.relay.reachable

    @property
    def server(self) -> str:
        """host:port, for log lines."""
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    def lost(self, result: SendResult) -> None:
        """A send found the server unreachable: pause everything (once per outage)."""
        if not self.relay.lost(time.time(), result.reason):
            return
        self.metrics.smtp_outages.inc()
        self.metrics.smtp_reachable.set(0)
        log.warning(
            "SMTP server %s unreachable (%s): delivery paused; queued emails keep their order "
            "and attempts; probing every %.0f s at most. If this lasts, check the relay is up "
            "and reachable from here, and NOTIFIER_SMTP_HOST/PORT, TLS and credentials",
            self.server,
            result.reason,
            self.settings.smtp_probe_max_s,
        )

    async def until_reachable(self, mailer: Mailer, stop: asyncio.Event) -> None:
        """Wait the probe delay, then probe once; the caller loops while still unreachable."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.relay.probe_in(random.random()))
        if stop.is_set():
            return
        failure = await mailer.probe()
        if failure is not None:
            self.metrics.smtp_probes.labels("unreachable").inc()
            self.relay.probe_failed(failure.reason)
            down = time.time() - (self.relay.down_since or time.time())
            log.info(
                "SMTP server %s still unreachable after %.0f s: %s",
                self.server,
                down,
                failure.reason,
            )
            return
        self.metrics.smtp_probes.labels("answered").inc()
        recovery = self.relay.answered(time.time())
        self.metrics.smtp_reachable.set(1)
        if recovery is not None:
            log.warning(
                "SMTP server %s answers again after %.1f s unreachable (%d failed probe(s)): "
                "delivery resumed",
                self.server,
                recovery.down_s,
                recovery.failed_probes,
            )

    def sent(self) -> None:
        """Count an accepted email toward the backlog being drained."""
        self.relay.sent()

    def idle(self) -> None:
        """Nothing is due: if an outage's backlog just drained, say how long it took."""
        drained = self.relay.drained(time.time())
        if drained is not None:
            took, count = drained
            self.metrics.smtp_backlog_drain.set(took)
            log.info(
                "SMTP outage backlog drained: %d email(s) sent in %.2f s after the server "
                "answered again",
                count,
                took,
            )
