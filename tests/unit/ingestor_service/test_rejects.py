"""Reject messages: bounded, and the same bad record always carries the same event id."""

from __future__ import annotations

from connect311_contracts.rejects import MAX_RAW, RejectReason
from connect311_ingestor.pipeline import new_trace_id, to_reject
from connect311_ingestor.records import Rejected


def test_same_bad_record_gets_the_same_event_id_and_a_different_one_does_not() -> None:
    bad = Rejected(RejectReason.INVALID_DATE, "no such day", '{"date": "2023-02-30"}', "f:row 3")
    first, again = (
        to_reject(bad, "nyc311", new_trace_id()),
        to_reject(bad, "nyc311", new_trace_id()),
    )
    assert first.event_id == again.event_id and first.trace_id != again.trace_id
    moved = Rejected(bad.reason, bad.detail, bad.raw, "f:row 4")
    assert to_reject(moved, "nyc311").event_id != first.event_id
    assert to_reject(bad, "chicago").event_id != first.event_id


def test_huge_raw_and_detail_are_cut_not_refused() -> None:
    huge = Rejected(RejectReason.TOO_LARGE, "d" * 5000, "r" * (MAX_RAW * 3), None)
    message = to_reject(huge, "src")
    assert message.raw.endswith("[truncated]") and len(message.raw) <= MAX_RAW + 20
    assert len(message.detail) <= 2000
