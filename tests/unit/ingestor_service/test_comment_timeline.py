"""Every comment or status note becomes its own timeline entry, in order, with its time.

Through the real ingest step (SQLite store, change detection, deterministic event ids) into
the map API's state store and its `request_history` timeline; the SeeClickFix case starts
from the real documentation example in ../shared/data.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect311_contracts.events import RequestEvent
from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_ingestor.changes import StoredState, as_of, decide, fingerprint
from connect311_ingestor.notes import steps
from connect311_ingestor.parsers.open311_updates import RequestUpdate
from connect311_ingestor.parsers.seeclickfix import parse_issue
from connect311_ingestor.records import Accepted, Note
from tests.support.ingest_to_map import IngestToMap

NOW = datetime(2024, 6, 1, tzinfo=UTC)


class Pipeline(IngestToMap):
    """One SeeClickFix poll (or Open311 update batch) at a time into the map API's history."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, NOW)

    def poll(self, results: list[Any]) -> list[RequestEvent]:
        return self.ingest(results, source="scf")

    def updates(self, updates: Sequence[Any], source: str = "city") -> list[RequestEvent]:
        return super().updates(updates, source)

    def history(self, srid: str) -> list[tuple[str, str | None, datetime, str]]:
        return [(r.event_type, r.status_notes, r.source_at, r.status) for r in self.timeline(srid)]


def _examples(shared_data: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (shared_data / "seeclickfix/devdocs_v2_examples.json").read_bytes()
    )
    return data


def _accepted(issue: dict[str, Any]) -> Accepted:
    result = parse_issue(issue, source="scf")
    assert isinstance(result, Accepted), result
    return result


def test_real_issue_details_every_comment_is_a_timeline_entry(
    shared_data: Path, tmp_path: Path
) -> None:
    issue = _examples(shared_data)["ISSUE_DETAILS"]
    comments = issue["comments"]
    assert len(comments) == 2  # the real example: two identical "Me too" comments
    pipeline = Pipeline(tmp_path)

    events = pipeline.poll([_accepted(issue)])

    comment_at = datetime(2011, 4, 14, 16, 0, 49)  # stored naive UTC
    assert pipeline.history("scf:1") == [
        ("request.opened", None, datetime(2008, 3, 25, 16, 32, 41), "open"),
        ("request.updated", "Me too", comment_at, "open"),
        ("request.updated", "Me too", comment_at, "open"),
    ]
    assert len({e.event_id for e in events}) == 3
    wire = "\n".join(e.model_dump_json() for e in events)
    assert "Jeffb" not in wire and "commenter" not in wire, "commenter names never carried"

    assert pipeline.poll([_accepted(issue)]) == [], "a re-poll publishes nothing new"
    assert len(pipeline.history("scf:1")) == 3


def _comment(text: str, at: str) -> dict[str, Any]:
    return {"comment": text, "commenter": {"name": "Jane Roe"}, "created_at": at}


def test_comments_across_polls_in_order_with_the_closure_in_place(
    shared_data: Path, tmp_path: Path
) -> None:
    issue = copy.deepcopy(_examples(shared_data)["ISSUE_DETAILS"])
    # Listed newest first, as some feeds do; closed between the 2nd and 3rd comment.
    issue["comments"] = [
        _comment("Closed as duplicate of 42", "2011-04-20T09:00:00Z"),
        _comment("Crew scheduled", "2011-04-15T08:00:00Z"),
        _comment("Seen it too", "2011-04-14T16:00:49Z"),
    ]
    issue.update(status="Closed", closed_at="2011-04-20T08:59:00Z")
    pipeline = Pipeline(tmp_path)

    first = pipeline.poll([_accepted(issue)])

    assert [e.event_type for e in first] == [
        "request.opened",
        "request.updated",
        "request.updated",
        "request.closed",
    ]
    assert first[-1].request.closed_reason is not None  # "duplicate" from the comment
    history = pipeline.history("scf:1")
    assert [(notes, status) for _, notes, _, status in history] == [
        (None, "open"),
        ("Seen it too", "open"),
        ("Crew scheduled", "open"),
        ("Closed as duplicate of 42", "closed"),
    ]
    assert [at for _, _, at, _ in history] == sorted(at for _, _, at, _ in history)

    # Next poll: two new comments after the closure, in one batch.
    issue["comments"] += [
        _comment("Thanks!", "2011-05-01T10:00:00Z"),
        _comment("Still there", "2011-05-02T10:00:00Z"),
    ]
    issue["updated_at"] = "2011-05-02T10:00:00Z"
    second = pipeline.poll([_accepted(issue)])
    assert [(e.event_type, e.request.status_notes) for e in second] == [
        ("request.updated", "Thanks!"),
        ("request.updated", "Still there"),
    ]
    assert [e.request.updated_datetime for e in second] == [
        datetime(2011, 5, 1, 10, tzinfo=UTC),
        datetime(2011, 5, 2, 10, tzinfo=UTC),
    ]
    assert pipeline.poll([_accepted(issue)]) == []
    assert len(pipeline.history("scf:1")) == 6
    assert "Jane Roe" not in "\n".join(e.model_dump_json() for e in pipeline.publisher.events)


def _update(uid: str, at: datetime, status: RequestStatus, text: str | None) -> RequestUpdate:
    return RequestUpdate(
        update_id=uid,
        service_request_id="city:7",
        status=status,
        raw_status=status.value,
        closed_reason=None,
        updated_datetime=at,
        description=text,
        media_url=None,
        external_status_code=None,
    )


def test_several_open311_updates_of_one_request_in_one_batch_each_become_an_entry(
    tmp_path: Path,
) -> None:
    t0 = datetime(2024, 5, 1, 9, tzinfo=UTC)
    request = ServiceRequest(
        service_request_id="city:7",
        source="city",
        source_request_id="7",
        status=RequestStatus.OPEN,
        raw_status="open",
        lat=37.7,
        long=-122.4,
        requested_datetime=t0,
        updated_datetime=t0,
    )
    pipeline = Pipeline(tmp_path)
    asyncio.run(pipeline.ingestor.ingest([Accepted(request)], source="city"))
    pipeline._apply(0)
    # Newest first, as servers often list them.
    batch = [
        _update("u3", t0 + timedelta(hours=3), RequestStatus.CLOSED, "Filled"),
        _update("u2", t0 + timedelta(hours=2), RequestStatus.IN_PROGRESS, "Crew on site"),
        _update("u1", t0 + timedelta(hours=1), RequestStatus.ACKNOWLEDGED, "Seen"),
    ]

    events = pipeline.updates(batch)

    assert [(e.event_type, e.request.status_notes) for e in events] == [
        ("request.updated", "Seen"),
        ("request.updated", "Crew on site"),
        ("request.closed", "Filled"),
    ]
    assert [s for _, s, _, _ in pipeline.history("city:7")] == [
        None,
        "Seen",
        "Crew on site",
        "Filled",
    ]
    assert pipeline.updates(batch) == [], "a re-polled window publishes nothing new"


# ---------------------------------------------------------------- the invariant, for any input

T = datetime(2024, 1, 1, tzinfo=UTC)
BASE = ServiceRequest(
    service_request_id="s:1",
    source="s",
    source_request_id="1",
    status=RequestStatus.OPEN,
    raw_status="Open",
    lat=1.0,
    long=1.0,
    requested_datetime=T,
)
minutes = st.integers(min_value=-30, max_value=600)
notes_st = st.lists(
    st.tuples(minutes, st.sampled_from(["a", "b", "fixed"])).map(
        lambda p: Note(T + timedelta(minutes=p[0]), p[1])
    ),
    max_size=8,
)


def _run(
    stored: StoredState | None, latest: ServiceRequest, notes: list[Note]
) -> tuple[StoredState | None, list[RequestEvent]]:
    events = []
    for i, step in enumerate(steps(stored.snapshot if stored else None, latest, notes)):
        decision = decide(
            stored, step.request, backfill=False, now=T + timedelta(microseconds=i), news=step.news
        )
        stored = decision.state or stored
        if decision.event is not None:
            events.append(decision.event)
    return stored, events


@settings(max_examples=150, deadline=None)
@given(
    earlier=notes_st,
    later=notes_st,
    closed_at=st.one_of(st.none(), minutes),
    seen_first=st.booleans(),
)
def test_each_new_note_is_one_event_in_time_order_and_a_repoll_adds_nothing(
    earlier: list[Note], later: list[Note], closed_at: int | None, seen_first: bool
) -> None:
    stored: StoredState | None = None
    if seen_first:
        stored, _ = _run(None, BASE, earlier)
    notes = [*earlier, *later] if seen_first else earlier
    # As a feed reports it: updated_at covers every comment and the closure.
    closed = None if closed_at is None else T + timedelta(minutes=max(closed_at, 0))
    update: dict[str, Any] = {"updated_datetime": max([T, *(n.at for n in notes)])}
    if closed is not None:
        update.update(
            status=RequestStatus.CLOSED,
            raw_status="Closed",
            closed_datetime=closed,
            updated_datetime=max(closed, update["updated_datetime"]),
        )
    latest = BASE.model_copy(update=update)
    cutoff = None if stored is None else as_of(stored.snapshot)
    expected = sorted(
        (max(n.at, T), i, n.text)
        for i, n in enumerate(notes)
        if cutoff is None or max(n.at, T) > cutoff
    )

    final, events = _run(stored, latest, notes)

    noted = [
        (e.request.updated_datetime, e.request.status_notes)
        for e in events
        if e.request.status_notes is not None
    ]
    assert noted == [(at, text) for at, _, text in expected], "each new note once, in order"
    times = [as_of(e.request) for e in events]
    assert times == sorted(times), "events in time order"
    assert final is not None and final.snapshot.status is latest.status
    assert final.fingerprint == fingerprint(final.snapshot)
    again, repeated = _run(final, latest, notes)
    assert repeated == [] and again == final, "re-polling the same record publishes nothing"


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_comments_are_not_notes(shared_data: Path, text: str) -> None:
    issue = copy.deepcopy(_examples(shared_data)["ISSUE_DETAILS"])
    issue["comments"] = [_comment(text, "2011-04-15T08:00:00Z")]
    assert _accepted(issue).notes == ()
