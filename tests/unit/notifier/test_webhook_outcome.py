"""Webhook delivery policy: status codes sorted, retries, giving up, and 410 disabling."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from connect311_notifier.outcome import Outcome, RetryLimits, SendResult, Step, judge
from connect311_notifier.policy import backoff_s
from connect311_notifier.webhook_outcome import (
    HookResult,
    classify_status,
    judge_hook,
    parse_retry_after,
)

LIMITS = RetryLimits(max_attempts=5, base_s=2.0, max_s=900.0)
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "outcome", "kind"),
    [
        (200, Outcome.SENT, "delivered"),
        (202, Outcome.SENT, "delivered"),
        (204, Outcome.SENT, "delivered"),
        (299, Outcome.SENT, "delivered"),
        (301, Outcome.PERMANENT, "redirect"),
        (302, Outcome.PERMANENT, "redirect"),
        (307, Outcome.PERMANENT, "redirect"),
        (400, Outcome.PERMANENT, "http_4xx"),
        (401, Outcome.PERMANENT, "http_4xx"),
        (404, Outcome.PERMANENT, "http_4xx"),
        (413, Outcome.PERMANENT, "http_4xx"),
        (410, Outcome.PERMANENT, "gone"),
        (408, Outcome.TEMPORARY, "http_throttled"),
        (425, Outcome.TEMPORARY, "http_throttled"),
        (429, Outcome.TEMPORARY, "http_throttled"),
        (500, Outcome.TEMPORARY, "http_5xx"),
        (502, Outcome.TEMPORARY, "http_5xx"),
        (503, Outcome.TEMPORARY, "http_5xx"),
        (504, Outcome.TEMPORARY, "http_5xx"),
        (600, Outcome.TEMPORARY, "http_other"),
    ],
)
def test_classify_status(status: int, outcome: Outcome, kind: str) -> None:
    result = classify_status(status)
    assert (result.outcome, result.kind, result.status) == (outcome, kind, status)
    assert result.gone is (status == 410)


def test_delivered_is_sent() -> None:
    verdict = judge_hook(classify_status(200), attempts=3, limits=LIMITS, jitter=0.5)
    assert verdict.step is Step.SENT and not verdict.disable


@pytest.mark.parametrize("attempts", [0, 1, 3])
def test_a_temporary_failure_is_retried_on_the_email_back_off(attempts: int) -> None:
    verdict = judge_hook(classify_status(503), attempts, LIMITS, jitter=0.25)
    assert verdict.step is Step.RETRY
    assert verdict.retry_in_s == backoff_s(attempts, LIMITS.base_s, LIMITS.max_s, 0.25)


def test_retry_after_is_honoured_when_longer_and_capped() -> None:
    longer = judge_hook(classify_status(429, retry_after_s=120.0), 0, LIMITS, jitter=0.0)
    assert longer.retry_in_s == 120.0
    shorter = judge_hook(classify_status(503, retry_after_s=0.1), 2, LIMITS, jitter=0.0)
    assert shorter.retry_in_s == backoff_s(2, LIMITS.base_s, LIMITS.max_s, 0.0)
    huge = judge_hook(classify_status(503, retry_after_s=10**8), 0, LIMITS, jitter=0.0)
    assert huge.retry_in_s == LIMITS.max_s


def test_a_temporary_failure_gives_up_on_the_last_attempt() -> None:
    timeout = HookResult(Outcome.TEMPORARY, "timeout", reason="timed out")
    assert judge_hook(timeout, LIMITS.max_attempts - 2, LIMITS, 0.5).step is Step.RETRY
    verdict = judge_hook(timeout, LIMITS.max_attempts - 1, LIMITS, 0.5)
    assert verdict.step is Step.GIVE_UP and not verdict.disable
    assert verdict.result.outcome is Outcome.PERMANENT
    assert verdict.result.kind == "timeout"
    assert verdict.result.reason == "gave up after 5 attempts: timed out"


def test_unlike_an_email_a_failure_without_a_code_is_not_retried_forever() -> None:
    # The email judge retries a session lost mid-message for as long as it takes; a
    # webhook target that never answers is given up on like any other failure.
    lost = SendResult(Outcome.TEMPORARY, None, "connection lost")
    assert judge(lost, 100, LIMITS, 0.5).step is Step.RETRY
    refused = HookResult(Outcome.TEMPORARY, "connect", reason="connection refused")
    assert judge_hook(refused, 100, LIMITS, 0.5).step is Step.GIVE_UP


def test_gone_gives_up_at_once_and_disables() -> None:
    verdict = judge_hook(classify_status(410), attempts=0, limits=LIMITS, jitter=0.5)
    assert verdict.step is Step.GIVE_UP and verdict.disable


def test_other_permanent_failures_give_up_without_disabling() -> None:
    for status in (302, 400, 404):
        verdict = judge_hook(classify_status(status), attempts=0, limits=LIMITS, jitter=0.5)
        assert verdict.step is Step.GIVE_UP and not verdict.disable


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("99999999999999999999", 999999999.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
