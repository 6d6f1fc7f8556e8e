"""Pure webhook delivery policy: how an attempt ended, and what the sender does next (no I/O).

The email's `judge` (outcome.py) does not fit a webhook as it is: it retries a failure with
no SMTP code forever (a session lost mid-message) and treats "cannot connect" as the relay
being down for everyone. A webhook's receiver is its owner's alone: a timeout or refused
connection is that target's temporary failure, retried with the same back-off and given up
on after `max_attempts`, like any other. The steps (sent, retry, give up) are the email's.

Status handling follows the Standard Webhooks recommendations: 2xx delivered; 410 Gone means
"stop sending", so the webhook is disabled; 408, 425, 429 and 5xx are retried (honouring
Retry-After); a redirect is not followed (the owner should update the URL) and other 4xx
are permanent. The response body is never part of a result: only the status code is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from connect311_notifier.outcome import Outcome, RetryLimits, Step
from connect311_notifier.policy import backoff_s

__all__ = [
    "HookResult",
    "HookVerdict",
    "classify_status",
    "judge_hook",
    "parse_retry_after",
]

_RETRIED_4XX = frozenset({408, 425, 429})
"""Request Timeout, Too Early, Too Many Requests: about now, not about the webhook."""


@dataclass(frozen=True)
class HookResult:
    """How one attempt ended. `kind` is a short code from a fixed set (a metric label);
    `reason` adds what an operator needs (never anything the receiver wrote)."""

    outcome: Outcome
    kind: str
    status: int | None = None
    reason: str = ""
    gone: bool = False
    """The receiver answered 410 Gone: disable the webhook, never send to it again."""
    retry_after_s: float | None = None


@dataclass(frozen=True)
class HookVerdict:
    """The step for the sender, the result to record (the final one for GIVE_UP), the
    delay before a retry, and whether to disable the webhook now."""

    step: Step
    result: HookResult
    retry_in_s: float = 0.0
    disable: bool = False


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None.

    Server-controlled text: anything unreadable is ignored, never trusted or echoed.
    """
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text[:9]))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def classify_status(status: int, retry_after_s: float | None = None) -> HookResult:
    """What an HTTP status means for the delivery."""
    if 200 <= status < 300:
        return HookResult(Outcome.SENT, "delivered", status)
    if status == 410:
        return HookResult(
            Outcome.PERMANENT, "gone", status, "410 Gone: the receiver asked to stop", gone=True
        )
    if status in _RETRIED_4XX or 500 <= status < 600:
        kind = "http_5xx" if status >= 500 else "http_throttled"
        return HookResult(
            Outcome.TEMPORARY, kind, status, f"HTTP {status}", retry_after_s=retry_after_s
        )
    if 300 <= status < 400:
        return HookResult(
            Outcome.PERMANENT, "redirect", status, f"HTTP {status}: redirects are not followed"
        )
    if 400 <= status < 500:
        return HookResult(Outcome.PERMANENT, "http_4xx", status, f"HTTP {status}")
    return HookResult(Outcome.TEMPORARY, "http_other", status, f"HTTP {status}")


def judge_hook(
    result: HookResult, attempts: int, limits: RetryLimits, jitter: float
) -> HookVerdict:
    """Decide what follows an attempt; `attempts` are the webhook message's earlier ones.

    A temporary failure is retried after the back-off (or the receiver's Retry-After when
    longer, never past `limits.max_s`) until its `max_attempts`-th attempt, then given up
    on; `jitter` in [0, 1] spreads retries (see backoff_s).
    """
    if result.outcome is Outcome.SENT:
        return HookVerdict(Step.SENT, result)
    if result.outcome is Outcome.TEMPORARY and attempts + 1 < limits.max_attempts:
        delay = backoff_s(attempts, limits.base_s, limits.max_s, jitter)
        if result.retry_after_s is not None:
            delay = max(delay, min(result.retry_after_s, limits.max_s))
        return HookVerdict(Step.RETRY, result, retry_in_s=delay)
    if result.outcome is Outcome.TEMPORARY:
        final = HookResult(
            Outcome.PERMANENT,
            result.kind,
            result.status,
            f"gave up after {attempts + 1} attempts: {result.reason}",
        )
        return HookVerdict(Step.GIVE_UP, final)
    return HookVerdict(Step.GIVE_UP, result, disable=result.gone)
