"""The map's JSON API on SQLite and PostgreSQL: GeoJSON pages, clusters, detail, stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from connect311_contracts.request import RequestStatus
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.factories import T0, event, lifecycle, snapshot


@pytest.fixture
def seeded(client: TestClient, engine: Engine) -> TestClient:
    """A grid of 30 open requests, two departments, plus one full lifecycle."""
    events = []
    for i in range(30):
        agency, code = ("Water", "LEAK") if i % 3 == 0 else ("Streets", "POT")
        req = snapshot(
            f"g{i}",
            lat=27.70 + 0.01 * (i % 10),
            long=-82.70 + 0.01 * (i // 10),
            agency=agency,
            code=code,
            name=code.title(),
            opened=T0 + timedelta(days=i),
            description=f"<script>alert({i})</script> item {i}",
        )
        events.append(event("opened", req))
    events += lifecycle("life", lat=27.9, long=-82.5)
    with engine.begin() as conn:
        apply_events(conn, events)
    return client


def _ids(body: dict) -> set[str]:
    return {f["properties"]["service_request_id"] for f in body["features"]}


def test_bbox_returns_only_requests_inside(seeded: TestClient) -> None:
    body = seeded.get("/api/requests", params={"bbox": "-82.705,27.695,-82.685,27.725"}).json()
    # longs -82.70,-82.69 (i // 10 in 0, 1) and lats 27.70..27.72 (i % 10 in 0..2)
    assert _ids(body) == {f"test:g{i}" for i in (0, 1, 2, 10, 11, 12)}
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "Point"
    assert set(feature["properties"]) >= {"status", "agency_responsible", "description"}


def test_filters_combine(seeded: TestClient) -> None:
    water = seeded.get("/api/requests", params={"agency": "Water"}).json()
    assert _ids(water) == {f"test:g{i}" for i in range(0, 30, 3)}
    closed = seeded.get("/api/requests", params={"status": "closed"}).json()
    assert _ids(closed) == {"test:life"}
    since = (T0 + timedelta(days=27)).isoformat()
    recent = seeded.get("/api/requests", params={"since": since, "service_code": "POT"}).json()
    assert _ids(recent) == {"test:g28", "test:g29"}
    text = seeded.get("/api/requests", params={"q": "item 1"}).json()
    assert _ids(text) == {"test:g1"} | {f"test:g{i}" for i in range(10, 20)}
    assert seeded.get("/api/requests", params={"q": "100%_"}).json()["features"] == []


def test_hostile_description_comes_back_verbatim_as_text(seeded: TestClient) -> None:
    body = seeded.get("/api/requests", params={"q": "item 7"}).json()
    assert body["features"][0]["properties"]["description"] == "<script>alert(7)</script> item 7"


def test_keyset_pages_cover_everything_once(seeded: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = seeded.get("/api/requests", params=params).json()
        seen += [f["id"] for f in body["features"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and len(seen) == 31 and len(set(seen)) == 31


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bbox": "1,2,3"}, "four numbers"),
        ({"status": "lost"}, "unknown status"),
        ({"cursor": "abc"}, "next_cursor"),
        ({"since": "2024-05-01T00:00:00"}, "time zone"),
        ({"since": "2024-06-01T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "since"),
    ],
)
def test_bad_parameters_get_clear_422(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    response = client.get("/api/requests", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_limit_bounds(client: TestClient) -> None:
    assert client.get("/api/requests", params={"limit": 5001}).status_code == 422
    assert client.get("/api/requests", params={"limit": 0}).status_code == 422


def test_clusters_count_every_request_by_status(seeded: TestClient) -> None:
    body = seeded.get("/api/requests/clusters", params={"zoom": 3}).json()
    assert body["total"] == 31
    by_status: dict[str, int] = {}
    for cell in body["features"]:
        for status, n in cell["properties"]["by_status"].items():
            by_status[status] = by_status.get(status, 0) + n
    assert by_status == {"open": 30, "closed": 1}
    fine = seeded.get("/api/requests/clusters", params={"zoom": 16, "agency": "Water"}).json()
    assert fine["total"] == 10 and len(fine["features"]) == 10
    for cell in fine["features"]:
        minx, miny, maxx, maxy = cell["properties"]["bounds"]
        long, lat = cell["geometry"]["coordinates"]
        assert minx <= long <= maxx and miny <= lat <= maxy


def test_one_request_with_timeline(seeded: TestClient) -> None:
    body = seeded.get("/api/requests/test:life").json()
    assert body["properties"]["status"] == "closed"
    assert body["status_notes"] == "Filled"
    assert [(t["event_type"], t["status"], t["status_notes"]) for t in body["timeline"]] == [
        ("request.opened", "open", None),
        ("request.updated", "in_progress", "Crew assigned"),
        ("request.closed", "closed", "Filled"),
    ]
    missing = seeded.get("/api/requests/test:nope")
    assert missing.status_code == 404 and "no request" in missing.json()["detail"]


def test_stats_opened_resolved_backlog_and_close_time(seeded: TestClient) -> None:
    body = seeded.get("/api/stats", params={"interval": "month", "agency": "Streets"}).json()
    series = {(s["period"], s["agency"]): (s["opened"], s["resolved"]) for s in body["series"]}
    # g1..g29 not divisible by 3 -> 20 Streets requests, days 1..29 from 1 May; plus 'life'.
    may = sum(1 for i in range(30) if i % 3 and i < 31)
    assert series[("2024-05-01", "Streets")] == (may + 1, 1)
    (close,) = body["time_to_close"]
    closed_after = 53 * 3600  # 2 days 5 hours, in seconds
    assert close == {
        "agency": "Streets",
        "closed": 1,
        "median_seconds": closed_after,
        "p90_seconds": closed_after,
    }
    (streets,) = body["backlog"]
    assert streets["open"] == 20
    assert seeded.get("/api/stats", params={"interval": "year"}).status_code == 422


def test_lists_of_categories_agencies_datasets(seeded: TestClient) -> None:
    cats = seeded.get("/api/categories").json()
    assert {(c["service_code"], c["count"]) for c in cats} == {("LEAK", 10), ("POT", 21)}
    agencies = seeded.get("/api/agencies").json()
    assert {(a["agency"], a["count"]) for a in agencies} == {("Water", 10), ("Streets", 21)}
    assert seeded.get("/api/datasets").json() == [{"dataset": "311", "count": 31}]
    for path in ("/api/categories", "/api/agencies", "/api/datasets"):
        # Every page load asks for them: browsers and the proxy may keep them like tiles.
        cache = seeded.get(path).headers["cache-control"]
        assert cache.startswith("public, max-age=") and "stale-while-revalidate=" in cache


def test_status_is_current_after_updates(seeded: TestClient, engine: Engine) -> None:
    done = snapshot(
        "g0",
        status=RequestStatus.CLOSED,
        updated=T0 + timedelta(days=40),
        agency="Water",
        code="LEAK",
        name="Leak",
        lat=27.70,
        long=-82.70,
    )
    with engine.begin() as conn:
        apply_events(conn, [event("closed", done)])
    body = seeded.get("/api/requests", params={"status": "closed", "agency": "Water"}).json()
    assert _ids(body) == {"test:g0"}
