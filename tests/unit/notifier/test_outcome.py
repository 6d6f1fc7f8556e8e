"""The pure delivery outcome policy: sent, given back, retried (when) or given up on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connect311_notifier.outcome import Outcome, RetryLimits, SendResult, Step, judge

LIMITS = RetryLimits(max_attempts=3, base_s=2.0, max_s=900.0)

limits = st.builds(
    RetryLimits,
    max_attempts=st.integers(1, 30),
    base_s=st.floats(0.01, 100.0),
    max_s=st.floats(0.01, 10_000.0),
)
jitter = st.floats(0.0, 1.0)
codes = st.integers(400, 499)


def temporary(code: int | None = 451) -> SendResult:
    return SendResult(Outcome.TEMPORARY, code, f"{code} try later")


def test_sent_and_unreachable_are_not_failures_of_the_email() -> None:
    sent = SendResult(Outcome.SENT)
    assert judge(sent, 7, LIMITS, 0.5).step is Step.SENT
    down = SendResult(Outcome.UNREACHABLE, None, "ConnectionRefusedError")
    # Given back as it was, however many attempts it had: it never reached SMTP.
    assert judge(down, LIMITS.max_attempts + 5, LIMITS, 0.5).step is Step.RELEASE


def test_a_permanent_failure_is_given_up_at_once_and_keeps_its_bounce() -> None:
    bounce = SendResult(Outcome.PERMANENT, 550, "550 no such user", bounce=True)
    verdict = judge(bounce, 0, LIMITS, 0.5)
    assert (verdict.step, verdict.result) == (Step.GIVE_UP, bounce)


def test_a_repeated_4xx_gives_up_on_its_last_attempt_with_the_reason() -> None:
    assert judge(temporary(), 0, LIMITS, 0.0).step is Step.RETRY
    assert judge(temporary(), 1, LIMITS, 0.0).step is Step.RETRY
    verdict = judge(temporary(), 2, LIMITS, 0.0)
    assert verdict.step is Step.GIVE_UP
    assert verdict.result == SendResult(
        Outcome.PERMANENT, 451, "gave up after 3 attempts: 451 try later", bounce=False
    )


def test_retry_delays_follow_the_back_off() -> None:
    delays = [judge(temporary(), n, LIMITS, 1.0).retry_in_s for n in range(2)]
    assert delays == [2.0, 4.0]
    assert judge(temporary(), 0, LIMITS, 0.0).retry_in_s == 1.0  # half fixed, half jitter


@given(limits, codes, jitter)
def test_a_coded_failure_never_exceeds_max_attempts(
    retry: RetryLimits, code: int, spread: float
) -> None:
    """Carrying out every verdict from the first attempt: exactly max_attempts, then dead."""
    attempts = 0
    while (verdict := judge(temporary(code), attempts, retry, spread)).step is Step.RETRY:
        attempts += 1
        assert attempts < retry.max_attempts
    assert verdict.step is Step.GIVE_UP
    assert attempts + 1 == retry.max_attempts
    assert verdict.result.outcome is Outcome.PERMANENT and verdict.result.code == code


def test_a_session_lost_for_days_still_gets_a_retry_time() -> None:
    # Every ~15 minutes for 11 days: 2.0 ** 1024 used to overflow and crash the lane.
    verdict = judge(temporary(None), 1024, LIMITS, 0.5)
    assert (verdict.step, verdict.retry_in_s) == (Step.RETRY, 675.0)


@given(limits, st.integers(0, 10_000), jitter)
def test_a_lost_session_is_retried_for_as_long_as_it_takes(
    retry: RetryLimits, attempts: int, spread: float
) -> None:
    verdict = judge(temporary(None), attempts, retry, spread)
    assert verdict.step is Step.RETRY
    assert 0 < verdict.retry_in_s <= retry.max_s


@given(limits, st.integers(0, 60), jitter)
def test_back_off_grows_monotonically_up_to_its_cap(
    retry: RetryLimits, attempts: int, spread: float
) -> None:
    now, then = (
        judge(temporary(None), n, retry, spread).retry_in_s for n in (attempts, attempts + 1)
    )
    assert now <= then <= retry.max_s
    assert then >= min(retry.max_s, retry.base_s) / 2
