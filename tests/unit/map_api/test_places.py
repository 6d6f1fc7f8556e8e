"""Finding a place: /api/extent (the map opens on its data) and /api/places (address search)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_contracts.settings import SigningSettings
from connect311_map_api.core.places import Place, data_extent, merge_places
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.geocoder import Geocoder
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

ADDRESSES = {
    "a1": ("100 Central Ave N", 27.771, -82.640, "Streets"),
    "a2": ("100 Central Ave N", 27.773, -82.642, "Streets"),
    "a3": ("2200 Central Blvd", 27.780, -82.650, "Water"),
    "a4": ("15 Centre St", 27.760, -82.630, "Water"),
    "a5": ("7 50%_Off Plaza", 27.765, -82.635, "Streets"),
}


def _store(engine: Engine, rows: dict[str, tuple[str, float, float, str]]) -> None:
    events = []
    for key, (address, lat, long, agency) in rows.items():
        req = snapshot(key, lat=lat, long=long, agency=agency).model_copy(
            update={"address": address}
        )
        events.append(event("opened", req))
    with engine.begin() as conn:
        apply_events(conn, events)


@pytest.fixture
def app_client(
    sqlite_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> Iterator[TestClient]:
    """An app on SQLite with the addresses above stored."""
    with make_client(sqlite_url, publisher, signing, aggregate_cache_s=0) as client:
        _store(client.app.state.ctx.engine, ADDRESSES)  # type: ignore[attr-defined]
        yield client


def test_extent_is_none_without_requests(
    sqlite_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    with make_client(sqlite_url, publisher, signing) as client:
        assert client.get("/api/extent").json() == {"count": 0, "bbox": None, "center": None}


def test_extent_covers_the_requests_and_follows_filters(app_client: TestClient) -> None:
    body = app_client.get("/api/extent").json()
    assert body["count"] == len(ADDRESSES)
    west, south, east, north = body["bbox"]
    assert west <= -82.650 and east >= -82.630 and south <= 27.760 and north >= 27.780
    assert east - west < 0.1 and north - south < 0.1  # a neighbourhood, not the world
    water = app_client.get("/api/extent", params={"agency": "Water"}).json()
    assert water["count"] == 2  # the aggregate cells know no agency: it must not use them
    nobody = app_client.get("/api/extent", params={"agency": "Nobody"}).json()
    assert nobody == {"count": 0, "bbox": None, "center": None}


def test_low_zoom_clusters_honour_the_agency_filter(app_client: TestClient) -> None:
    """Embeds filter by agency: zoomed out, their groups counted every department."""
    body = app_client.get("/api/requests/clusters", params={"zoom": 5, "agency": "Water"}).json()
    assert body["total"] == 2


def test_one_stray_request_does_not_make_the_view_the_world(
    sqlite_url: str, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    city = {
        f"c{i}": (f"{i} Main St", 41.80 + i * 1e-4, -87.70 + i * 1e-4, "Streets")
        for i in range(300)
    }
    stray = {"zero": ("Null Island", 0.0, 0.0, "Streets")}
    with make_client(sqlite_url, publisher, signing) as client:
        _store(client.app.state.ctx.engine, city | stray)  # type: ignore[attr-defined]
        body = client.get("/api/extent").json()
    assert body["count"] == 301
    west, south, east, north = body["bbox"]
    assert south > 41 and west > -88 and east < -87 and north < 42


@given(
    cells=st.lists(
        st.tuples(st.floats(-80, 80), st.floats(-170, 170), st.integers(1, 50)),
        min_size=1,
        max_size=30,
    )
)
def test_extent_without_trimming_holds_every_cell(cells: list[tuple[float, float, int]]) -> None:
    rows = [{"lat": lat, "long": long, "count": n} for lat, long, n in cells]
    found = data_extent(rows, 0.01, share=0.0)
    assert found is not None and found.count == sum(n for _, _, n in cells)
    for lat, long, _ in cells:
        assert found.south <= lat <= found.north and found.west <= long <= found.east


@given(
    cells=st.lists(
        st.tuples(st.floats(-80, 80), st.floats(-170, 170), st.integers(1, 50)),
        min_size=1,
        max_size=30,
    )
)
def test_trimming_leaves_out_at_most_the_share(cells: list[tuple[float, float, int]]) -> None:
    rows = [{"lat": lat, "long": long, "count": n} for lat, long, n in cells]
    found = data_extent(rows, 0.0, share=0.05)
    assert found is not None
    total = sum(n for _, _, n in cells)
    outside = sum(
        n
        for lat, long, n in cells
        if not (found.south <= lat <= found.north and found.west <= long <= found.east)
    )
    assert outside <= 4 * int(total * 0.05)  # each of four edges drops at most its share


def test_places_match_the_start_of_an_address_or_of_a_word(app_client: TestClient) -> None:
    body = app_client.get("/api/places", params={"q": "central"}).json()
    labels = [p["label"] for p in body["places"]]
    assert labels == ["100 Central Ave N", "2200 Central Blvd"]  # most requests first
    first = body["places"][0]
    assert first["requests"] == 2 and first["source"] == "requests"
    assert first["lat"] == pytest.approx(27.772) and first["long"] == pytest.approx(-82.641)
    starts = app_client.get("/api/places", params={"q": "100 cen"}).json()["places"]
    assert [p["label"] for p in starts] == ["100 Central Ave N"]
    assert body["geocoder"] == "off"
    assert app_client.get("/api/places", params={"q": "entral"}).json()["places"] == []


def test_like_wildcards_in_the_text_are_plain_characters(app_client: TestClient) -> None:
    assert app_client.get("/api/places", params={"q": "%%%"}).json()["places"] == []
    found = app_client.get("/api/places", params={"q": "50%_"}).json()["places"]
    assert [p["label"] for p in found] == ["7 50%_Off Plaza"]


@pytest.mark.parametrize(
    ("q", "reason"),
    [
        ("ab", "type 3 to 100 characters"),
        ("   a   ", "type 3 to 100 characters"),
        ("x" * 101, "type 3 to 100 characters"),
        ("cen\x00tral", "control characters"),
    ],
)
def test_places_refuse_unusable_text_with_a_reason(
    app_client: TestClient, q: str, reason: str
) -> None:
    response = app_client.get("/api/places", params={"q": q})
    assert response.status_code == 422
    assert reason in response.json()["detail"]


def _nominatim(answer: object, status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/search"
        assert request.url.params["format"] == "json" and request.url.params["q"]
        return httpx.Response(status, content=json.dumps(answer).encode())

    return httpx.MockTransport(handler)


def test_geocoder_answers_are_merged_after_the_citys_own(app_client: TestClient) -> None:
    answer = [
        {"display_name": "100 Central Ave N", "lat": "27.7", "lon": "-82.6"},  # a repeat
        {"display_name": "Central Park, St. Petersburg", "lat": "27.79", "lon": "-82.66"},
        {"display_name": "no coordinates"},
        {"display_name": "out of range", "lat": "95", "lon": "0"},
    ]
    app_client.app.state.geocoder = Geocoder(  # type: ignore[attr-defined]
        "https://geo.example", 1.0, transport=_nominatim(answer)
    )
    body = app_client.get("/api/places", params={"q": "central"}).json()
    assert body["geocoder"] == "ok"
    assert [(p["label"], p["source"]) for p in body["places"]] == [
        ("100 Central Ave N", "requests"),
        ("2200 Central Blvd", "requests"),
        ("Central Park, St. Petersburg", "geocoder"),
    ]


@pytest.mark.parametrize("failure", ["timeout", "status", "not json"])
def test_a_failing_geocoder_still_answers_with_local_places(
    app_client: TestClient, failure: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if failure == "status":
            return httpx.Response(503)
        return httpx.Response(200, content=b"<html>")

    app_client.app.state.geocoder = Geocoder(  # type: ignore[attr-defined]
        "https://geo.example", 1.0, transport=httpx.MockTransport(handler)
    )
    body = app_client.get("/api/places", params={"q": "central"}).json()
    assert body["geocoder"] == "unavailable"
    assert [p["label"] for p in body["places"]] == ["100 Central Ave N", "2200 Central Blvd"]


@given(
    local=st.lists(st.sampled_from(["A St", "B St", "a st", "C Rd"]), max_size=5),
    remote=st.lists(st.sampled_from(["A St", "D Ave", "c rd", "E Ln"]), max_size=5),
    limit=st.integers(1, 10),
)
def test_merge_keeps_local_first_without_repeats(
    local: list[str], remote: list[str], limit: int
) -> None:
    mine = [Place(label=x, lat=0, long=0, source="requests") for x in local]
    theirs = [Place(label=x, lat=0, long=0, source="geocoder") for x in remote]
    merged = merge_places(mine, theirs, limit)
    keys = [p.label.casefold() for p in merged]
    assert len(keys) == len(set(keys)) and len(merged) <= limit
    sources = [p.source for p in merged]
    assert sources == sorted(sources, key=lambda s: s != "requests")


def test_pages_open_on_the_data_unless_a_centre_is_set(
    tmp_path: Path, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    with make_client(url, publisher, signing) as client:
        assert '"center": null' in client.get("/").text
        embed = client.get("/embed", params={"lat": 41.9, "long": -87.6, "zoom": 13}).text
        assert '"center": [41.9, -87.6]' in embed and '"zoom": 13' in embed
        assert client.get("/embed", params={"lat": 91}).status_code == 422
    with make_client(url, publisher, signing, map_center_lat=40.7, map_center_long=-74.0) as c:
        assert '"center": [40.7, -74.0]' in c.get("/").text
        assert '"center": null' in c.get("/embed").text  # an embed fits its own requests


def test_csp_allows_a_self_hosted_tile_server(
    tmp_path: Path, publisher: RecordingPublisher, signing: SigningSettings
) -> None:
    tiles = "https://tiles.city.example:8443/osm/{z}/{x}/{y}.png"
    url = f"sqlite:///{tmp_path / 'csp.db'}"
    with make_client(url, publisher, signing, tile_url=tiles) as client:
        csp = client.get("/").headers["content-security-policy"]
    img_src = next(d for d in csp.split("; ") if d.startswith("img-src ")).split()
    assert "https://tiles.city.example:8443" in img_src
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp  # no other host
