"""Datasets end to end in the map API: the API filters by dataset, Open311 output stays 311-only,
the volume preview counts only the chosen datasets, and crime has counts by type and time."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.request import RequestStatus
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import event, lifecycle, snapshot

CIRCLE = {"kind": "circle", "lat": 27.77, "long": -82.64, "radius_m": 500}
# Crime incidents (UTC). The city's zone is America/New_York (the default display zone):
# c1 is Friday 3 May 23:30 there although it is already Saturday in UTC.
CRIMES = (
    ("c1", datetime(2024, 5, 4, 3, 30, tzinfo=UTC), "BURGLARY"),
    ("c2", datetime(2024, 5, 4, 15, 0, tzinfo=UTC), "BURGLARY"),
    ("c3", datetime(2024, 5, 5, 15, 10, tzinfo=UTC), "THEFT"),
)


@pytest.fixture
def seeded(client: TestClient, engine: Engine) -> TestClient:
    """One 311 request (three events), three crime incidents and one code violation case."""
    events = lifecycle("r1")
    for source_id, at, offence in CRIMES:
        incident = snapshot(
            source_id,
            status=RequestStatus.CLOSED,  # no status of its own: stored closed when it happened
            opened=at,
            dataset="crime",
            code=offence[:4],
            name=offence,
            agency="Police",
        )
        events.append(event("opened", incident, occurred=at))
    case = snapshot("v1", dataset="code_violations", code="PM", name="Property maintenance")
    events.append(event("opened", case))
    with engine.begin() as conn:
        apply_events(conn, events)
    return client


def ids(features: list[dict[str, object]]) -> set[str]:
    return {str(f["id"]) for f in features}


def test_the_api_filters_by_one_or_several_datasets(seeded: TestClient) -> None:
    crime = seeded.get("/api/requests", params={"dataset": "crime"}).json()["features"]
    assert ids(crime) == {"test:c1", "test:c2", "test:c3"}
    both = seeded.get("/api/requests", params={"dataset": "311,crime"}).json()["features"]
    assert ids(both) == {"test:r1", "test:c1", "test:c2", "test:c3"}
    counts = {d["dataset"]: d["count"] for d in seeded.get("/api/datasets").json()}
    assert counts == {"311": 1, "crime": 3, "code_violations": 1}


def test_open311_output_serves_311_requests_only(seeded: TestClient) -> None:
    listed = seeded.get("/open311/v2/requests.json").json()
    assert [r["service_request_id"] for r in listed] == ["test:r1"]
    asked = seeded.get("/open311/v2/requests.json", params={"service_request_id": "test:c1"})
    assert asked.json() == []
    assert [s["service_code"] for s in seeded.get("/open311/v2/services.json").json()] == ["POT"]
    assert seeded.get("/open311/v2/services/BURG.json").status_code == 404
    one = seeded.get("/open311/v2/requests/test:c1.json")
    assert one.status_code == 404
    assert "crime incident, not a service request" in one.json()[0]["description"]
    assert seeded.get("/open311/v2/requests/test:r1.json").status_code == 200


@pytest.mark.parametrize(
    ("datasets", "total"),
    [([], 7), (["311"], 3), (["crime"], 3), (["code_violations"], 1), (["crime", "311"], 6)],
)
def test_the_volume_preview_counts_only_the_chosen_datasets(
    seeded: TestClient, datasets: list[str], total: int
) -> None:
    body = seeded.post(
        "/api/subscriptions/preview", json={"target": CIRCLE, "filters": {"datasets": datasets}}
    ).json()
    assert body["total"] == total
    assert sum(w["alerts"] for w in body["weeks"]) == total


def test_crime_is_counted_by_type_and_by_the_city_s_time(seeded: TestClient) -> None:
    body = seeded.get("/api/stats/breakdown", params={"dataset": "crime"}).json()
    assert body["time_zone"] == "America/New_York"
    assert body["total"] == 3
    assert body["by_type"] == [{"type": "BURGLARY", "count": 2}, {"type": "THEFT", "count": 1}]
    assert body["other_types"] == 0 and body["type_count"] == 2
    weekdays = {d["day"]: d["count"] for d in body["by_weekday"] if d["count"]}
    assert weekdays == {"Friday": 1, "Saturday": 1, "Sunday": 1}
    assert len(body["by_weekday"]) == 7 and len(body["by_hour"]) == 24
    hours = {h["hour"]: h["count"] for h in body["by_hour"] if h["count"]}
    assert hours == {23: 1, 11: 2}  # 03:30, 15:00 and 15:10 UTC in EDT (UTC-4)
    assert body["per_day"] == [
        {"day": "2024-05-03", "count": 1},
        {"day": "2024-05-04", "count": 1},
        {"day": "2024-05-05", "count": 1},
    ]
    # The other filters apply as everywhere: one department, one type, a date range.
    theft = seeded.get("/api/stats/breakdown", params={"dataset": "crime", "service_code": "THEF"})
    assert theft.json()["total"] == 1
    everything = seeded.get("/api/stats/breakdown").json()
    assert everything["total"] == 5


def test_opened_vs_resolved_leaves_crime_out_unless_asked_for(seeded: TestClient) -> None:
    """An incident is stored closed at its own time: counted with requests it would be
    "resolved" in no time. Without a dataset filter the stats count what has a lifecycle."""

    def totals(**params: str) -> tuple[int, int, set[str]]:
        body = seeded.get("/api/stats", params={"interval": "month", **params}).json()
        opened = sum(p["opened"] for p in body["series"])
        resolved = sum(p["resolved"] for p in body["series"])
        return opened, resolved, {p["agency"] for p in body["series"]}

    # The 311 request (closed) and the open code violation case; no Police.
    assert totals() == (2, 1, {"Streets"})
    assert totals(dataset="crime") == (3, 3, {"Police"})
    assert totals(dataset="311,crime") == (4, 4, {"Streets", "Police"})


def test_a_bad_breakdown_filter_is_refused_with_the_reason(seeded: TestClient) -> None:
    response = seeded.get("/api/stats/breakdown", params={"status": "solved"})
    assert response.status_code == 422
    assert "unknown status" in response.text


def test_categories_name_their_datasets_so_the_dropdowns_group_them(seeded: TestClient) -> None:
    """An offence type is no 311 category: each category says which datasets it occurs in
    (the map's dropdown puts it under <optgroup label="Crime">)."""
    listed = {c["service_code"]: c["datasets"] for c in seeded.get("/api/categories").json()}
    assert listed == {
        "POT": ["311"],
        "BURG": ["crime"],
        "THEF": ["crime"],
        "PM": ["code_violations"],
    }


@pytest.mark.parametrize(
    ("query", "hidden"),
    [("?dataset=crime", True), ("?dataset=code_violations", False), ("", False)],
)
def test_a_crime_only_embed_lists_no_statuses_in_its_legend(
    client: TestClient, query: str, hidden: bool
) -> None:
    """A crime incident has no status: a crime-only embed's legend shows none of the four."""
    page = client.get("/embed" + query).text
    parts = re.findall(r"<li data-status-part( hidden)?>", page)
    assert len(parts) == 4
    assert all(bool(flag) is hidden for flag in parts)
