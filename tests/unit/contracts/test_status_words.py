"""The resident wording of a request's status: close reason and the city's own word."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_contracts.status_words import (
    MAX_CITY_WORD,
    city_status,
    resident_status,
    status_phrase,
)


@pytest.mark.parametrize(
    ("reason", "raw", "expected"),
    [
        (ClosedReason.DUPLICATE, "Closed", "Closed — duplicate of another request"),
        (ClosedReason.DUPLICATE, "Duplicate", "Closed — duplicate of another request"),
        (ClosedReason.REFERRED, "Referred", "Closed — referred to another agency"),
        (
            ClosedReason.REFERRED,
            "Referred to Law",
            "Closed — referred to another agency (city status: Referred to Law)",
        ),
        (ClosedReason.CANCELLED, "Canceled", "Closed — cancelled"),
        (ClosedReason.CANCELLED, "CLOSED - CANCELLED", "Closed — cancelled"),
        (ClosedReason.FIXED, "Completed", "Closed — completed"),
        (None, "Closed", "Closed"),
        (None, "Archived", "Closed (city status: Archived)"),
    ],
)
def test_closed_wording(reason: ClosedReason | None, raw: str, expected: str) -> None:
    assert resident_status(RequestStatus.CLOSED, reason, raw) == expected


def test_open_wording_keeps_the_city_word_only_when_it_says_more() -> None:
    assert resident_status("in_progress", None, "In_Progress") == "In progress"
    assert resident_status("open", None, "Open") == "Open"
    assert resident_status("open", None, "") == "Open"
    assert resident_status("open", None, "Post Judgement") == "Open (city status: Post Judgement)"
    # A reason on an open request (bad data) is ignored: it would contradict the status.
    assert status_phrase("open", "duplicate") == "Open"
    assert status_phrase("gone", None) == "Unknown"
    assert status_phrase("closed", "no-such-reason") == "Closed"


@pytest.mark.parametrize(
    "raw",
    [
        "Call Jane Doe 727-555-0199",  # a phone number: too many digits
        "jane.doe@example.org",  # not a status word's characters
        "Resident at 1234 Oak St said the crew never came and the hole is still there",
        "<script>x</script>",
    ],
)
def test_a_city_word_that_is_not_a_status_word_is_left_out(raw: str) -> None:
    # A wrongly mapped column (free text, a phone, an address) never reaches a page or email.
    assert city_status(RequestStatus.CLOSED, ClosedReason.REFERRED, raw) is None
    assert resident_status("closed", "referred", raw) == "Closed — referred to another agency"


@given(
    reason=st.sampled_from([None, *ClosedReason]),
    raw=st.text(max_size=200) | st.text(alphabet="abcXYZ 0123-().", max_size=120),
)
def test_closed_wording_is_one_bounded_line_and_names_the_reason(
    reason: ClosedReason | None, raw: str
) -> None:
    words = resident_status(RequestStatus.CLOSED, reason, raw)
    assert words.startswith("Closed")
    assert "\n" not in words and "\r" not in words
    assert (
        len(words) <= len("Closed — duplicate of another request (city status: )") + MAX_CITY_WORD
    )
    if reason is not None:
        assert "—" in words and words != "Closed"
    word = city_status(RequestStatus.CLOSED, reason, raw)
    assert (word is None) == ("city status:" not in words)
    if word is not None:
        assert "@" not in word and sum(c.isdigit() for c in word) <= 4
        if len(" ".join(raw.split())) <= MAX_CITY_WORD:
            assert word == " ".join(raw.split())
