"""Pure relay policy: is the SMTP server reachable, when to probe it, how long recovery took.

"Unreachable" (refused, timed out, or an answer on connect that opens no session) is about
the server, not about any email: while it lasts, emails keep their place and their attempts,
and one probe at a time, on a capped back-off, finds out when delivery can resume.
No I/O here: the sender feeds in what happened and when.
"""

from __future__ import annotations

from dataclasses import dataclass

from connect311_notifier.policy import backoff_s


@dataclass(frozen=True)
class Recovery:
    """An outage that ended: how long the server was unreachable and how many probes failed."""

    down_s: float
    failed_probes: int


@dataclass
class Relay:
    """What the sender knows about the SMTP server, and the backlog after an outage."""

    probe_base_s: float
    probe_max_s: float
    down_since: float | None = None
    failed_probes: int = 0
    reason: str = ""
    resumed_at: float | None = None
    sent_since_resumed: int = 0

    @property
    def reachable(self) -> bool:
        """False from the first unreachable answer until a probe succeeds."""
        return self.down_since is None

    def lost(self, now: float, reason: str) -> bool:
        """The server did not answer; True when this starts an outage (not a second lane's)."""
        self.reason = reason
        if self.down_since is not None:
            return False
        self.down_since, self.failed_probes = now, 0
        return True

    def probe_in(self, jitter: float) -> float:
        """Seconds until the next probe: doubling from the base, never past the cap."""
        return backoff_s(self.failed_probes, self.probe_base_s, self.probe_max_s, jitter)

    def probe_failed(self, reason: str) -> None:
        """A probe found the server still unreachable."""
        self.failed_probes += 1
        self.reason = reason

    def answered(self, now: float) -> Recovery | None:
        """A probe got a session: the outage (if any) is over and its backlog starts draining."""
        if self.down_since is None:
            return None
        recovery = Recovery(max(0.0, now - self.down_since), self.failed_probes)
        self.down_since, self.failed_probes = None, 0
        self.resumed_at, self.sent_since_resumed = now, 0
        return recovery

    def sent(self) -> None:
        """One email accepted (counted only while a backlog after an outage drains)."""
        if self.resumed_at is not None:
            self.sent_since_resumed += 1

    def drained(self, now: float) -> tuple[float, int] | None:
        """Nothing left to send: (seconds since the server answered again, emails sent), once."""
        if self.resumed_at is None or not self.reachable:
            return None
        took, count = max(0.0, now - self.resumed_at), self.sent_since_resumed
        self.resumed_at, self.sent_since_resumed = None, 0
        return took, count
