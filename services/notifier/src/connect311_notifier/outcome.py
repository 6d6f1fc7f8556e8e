"""Pure delivery outcome policy: what to do after one SMTP attempt (no I/O).

The mailer says how an attempt ended (SendResult); `judge` decides, from that, the
email's attempts so far and the retry limits, whether it is sent, goes back untouched, is
tried again later (and when), or is given up on. The sender only carries the verdict out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connect311_notifier.policy import backoff_s

__all__ = [
    "DEAD_LETTER_RETRY_S",
    "Outcome",
    "RetryLimits",
    "SendResult",
    "Step",
    "Verdict",
    "judge",
]

DEAD_LETTER_RETRY_S = 5.0
"""An email given up on whose dead letter Kafka did not take waits this long to try again."""


class Outcome(StrEnum):
    """How one delivery attempt ended."""

    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    UNREACHABLE = "unreachable"  # no session with the server: about the server, not the email


@dataclass(frozen=True)
class SendResult:
    """The outcome, the SMTP code when there was one, a reason, and whether it is a bounce."""

    outcome: Outcome
    code: int | None = None
    reason: str = ""
    bounce: bool = False


class Step(StrEnum):
    """What the sender does with the email after an attempt."""

    SENT = "sent"
    """Record it sent: never again."""
    RELEASE = "release"
    """Give it back as it was: the server was unreachable, the email never reached SMTP."""
    RETRY = "retry"
    """Record the failed attempt and try again after `Verdict.retry_in_s`."""
    GIVE_UP = "give_up"
    """Dead-letter it (and count a bounce if `Verdict.result.bounce`)."""


@dataclass(frozen=True)
class RetryLimits:
    """The retry knobs from settings: attempts for a repeated 4xx, and the back-off curve."""

    max_attempts: int
    base_s: float
    max_s: float


@dataclass(frozen=True)
class Verdict:
    """The step, the result to report (for GIVE_UP: the final, permanent one), the delay."""

    step: Step
    result: SendResult
    retry_in_s: float = 0.0


def judge(result: SendResult, attempts: int, limits: RetryLimits, jitter: float) -> Verdict:
    """Decide what follows an attempt; `attempts` are the email's earlier ones.

    `jitter` in [0, 1] spreads retries (see backoff_s). A session lost mid-message (a
    temporary failure without an SMTP code) is retried for as long as it takes; only a
    recipient's repeated 4xx gives up, on its `max_attempts`-th attempt.
    """
    if result.outcome is Outcome.SENT:
        return Verdict(Step.SENT, result)
    if result.outcome is Outcome.UNREACHABLE:
        return Verdict(Step.RELEASE, result)
    if result.outcome is Outcome.PERMANENT:
        return Verdict(Step.GIVE_UP, result)
    if result.code is None or attempts + 1 < limits.max_attempts:
        delay = backoff_s(attempts, limits.base_s, limits.max_s, jitter)
        return Verdict(Step.RETRY, result, retry_in_s=delay)
    final = SendResult(
        Outcome.PERMANENT, result.code, f"gave up after {attempts + 1} attempts: {result.reason}"
    )
    return Verdict(Step.GIVE_UP, final)
