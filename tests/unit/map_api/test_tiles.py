"""Map data tiles: tile math, the canonical filter key, compact answers, ETag/304/caching."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connect311_contracts.request import RequestStatus
from connect311_contracts.settings import SigningSettings
from connect311_map_api.api import tiles_routes
from connect311_map_api.api.tiles_routes import MARKER_FIELDS, MARKERS_MIN_Z
from connect311_map_api.core.tiles import (
    FilterKeyError,
    Tile,
    canonical_filters,
    contains,
    filter_key,
    tile_of,
)
from connect311_map_api.db.state_store import apply_events
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

# Street scale in St. Petersburg (the factories' default place): the data tile at z14.
HERE = tile_of(27.77, -82.64, 14)
URL = f"/api/tiles/{HERE.z}/{HERE.x}/{HERE.y}.json"


@pytest.fixture
def client(tmp_path: Path, signing: SigningSettings) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'tiles.db'}"
    with make_client(url, RecordingPublisher(), signing, read_limit="") as test_client:
        yield test_client


def _seed(client: TestClient, *requests: dict[str, object]) -> None:
    engine: Engine = client.app.state.ctx.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        apply_events(conn, [event("opened", snapshot(**r)) for r in requests])  # type: ignore[arg-type]


# --- tile math -------------------------------------------------------------------------

lats = st.floats(-90, 90, allow_nan=False)
longs = st.floats(-180, 180, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(lat=lats, long=longs, z=st.integers(0, 22))
def test_every_point_lies_in_exactly_one_tile_at_each_zoom(lat: float, long: float, z: int) -> None:
    home = tile_of(lat, long, z)
    assert home.valid() and contains(home, lat, long)
    # Edges are monotonic, so only the neighbours could also claim the point.
    holders = [
        Tile(z, home.x + dx, home.y + dy)
        for dx in (-1, 0, 1)
        for dy in (-1, 0, 1)
        if Tile(z, home.x + dx, home.y + dy).valid()
        and contains(Tile(z, home.x + dx, home.y + dy), lat, long)
    ]
    assert holders == [home]


@settings(max_examples=200, deadline=None)
@given(z=st.integers(1, 22), data=st.data())
def test_points_on_tile_edges_belong_to_one_tile(z: int, data: st.DataObject) -> None:
    n = 1 << z
    corner = Tile(z, data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1)))
    # The north-west corner itself: on two edges shared with neighbours, in this tile only
    # (as the slippy-map formula has it).
    assert tile_of(corner.north, corner.west, z) == corner
    # Its south edge belongs to the tile below (or, for the bottom row, to this one).
    below = tile_of(corner.south, corner.west, z)
    assert below == (corner if corner.y == n - 1 else Tile(z, corner.x, corner.y + 1))


def test_tile_bounds_match_the_slippy_map_convention() -> None:
    world = Tile(0, 0, 0)
    assert (world.west, world.east, world.south, world.north) == (-180.0, 180.0, -90.0, 90.0)
    assert tile_of(0.0, 0.0, 1) == Tile(1, 1, 1)  # a tile holds its north-west corner
    assert tile_of(1e-9, -1e-9, 1) == Tile(1, 0, 0)
    assert tile_of(51.5074, -0.1278, 10) == Tile(10, 511, 340)  # London, as OSM numbers it
    assert contains(Tile(3, 7, 0), 90.0, 180.0)  # the closed corners of the world
    assert contains(Tile(3, 7, 7), -90.0, 180.0)


# --- canonical filter key ---------------------------------------------------------------


def test_filter_key_is_canonical_whatever_the_order_or_spelling() -> None:
    one = canonical_filters(
        [("status", "open,closed,open"), ("agency", "Water, Streets"), ("q", " Pothole ")]
    )
    two = canonical_filters(
        [("q", "pothole"), ("agency", "Streets,Water"), ("status", "closed,open")]
    )
    assert one == two
    assert filter_key(one) == "agency=Streets%2CWater&q=pothole&status=closed%2Copen"


def test_every_status_is_the_same_as_none_and_times_become_utc() -> None:
    assert canonical_filters([("status", "open,acknowledged,in_progress,closed")]) == {}
    got = canonical_filters([("since", "2024-05-01T02:00:00+02:00"), ("until", "")])
    assert got == {"since": "2024-05-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ([("bbox", "1,2,3,4")], "unknown parameter 'bbox'"),
        ([("zoom", "3")], "unknown parameter 'zoom'"),
        ([("status", "open"), ("status", "closed")], "give status once"),
        ([("status", "lost")], "unknown status 'lost'"),
        ([("since", "yesterday")], "since must be ISO-8601"),
        ([("since", "2024-05-01T00:00:00")], "since needs a time zone"),
        ([("q", "a\x00b")], "q must not contain control characters"),
        (
            [("since", "2024-06-01T00:00:00Z"), ("until", "2024-05-01T00:00:00Z")],
            "since must not be after until",
        ),
    ],
)
def test_bad_filter_keys_are_refused_with_a_reason(
    pairs: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(FilterKeyError, match=reason):
        canonical_filters(pairs)


# --- the endpoint -------------------------------------------------------------------------


def test_a_tile_holds_compact_markers_only(client: TestClient) -> None:
    _seed(
        client,
        {"source_id": "1", "lat": 27.7701234567, "long": -82.6401234567},
        {"source_id": "2", "lat": 27.771, "long": -82.641, "code": "GRAF", "dataset": "graffiti"},
        {"source_id": "far", "lat": 40.0, "long": -74.0},  # another tile
    )
    answer = client.get(URL)
    assert answer.status_code == 200
    body = answer.json()
    assert body["kind"] == "markers" and body["fields"] == list(MARKER_FIELDS)
    assert sorted(body["markers"]) == [
        ["test:1", 27.770123, -82.640123, "open", "311", "POT", 1714564800, "100 Central Ave"],
        ["test:2", 27.771, -82.641, "open", "graffiti", "GRAF", 1714564800, "100 Central Ave"],
    ]
    # Only the address travels with a marker (the list view names requests by it); what
    # else a popup shows (description, names) is fetched when it opens.
    assert "hole in the road" not in answer.text


def test_etag_cache_control_and_304(client: TestClient) -> None:
    _seed(client, {"source_id": "1"})
    first = client.get(URL)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "public, max-age=10, stale-while-revalidate=30"
    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and "max-age" in again.headers["cache-control"]
    other = client.get(URL, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.headers["etag"] == etag


def test_the_etag_follows_the_content(tmp_path: Path, signing: SigningSettings) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with make_client(url, RecordingPublisher(), signing, tile_max_age_s=0) as fresh:
        _seed(fresh, {"source_id": "1"})
        before = fresh.get(URL).headers["etag"]
        _seed(fresh, {"source_id": "2", "lat": 27.7705})
        after = fresh.get(URL, headers={"If-None-Match": before})
        assert after.status_code == 200 and after.headers["etag"] != before
        assert len(after.json()["markers"]) == 2


def test_a_non_canonical_query_is_redirected_to_the_canonical_url(client: TestClient) -> None:
    answer = client.get(URL + "?status=open&agency=Water,Streets", follow_redirects=False)
    assert answer.status_code == 308
    assert answer.headers["location"] == URL + "?agency=Streets%2CWater&status=open"
    assert client.get(answer.headers["location"], follow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (URL + "?bbox=1,2,3,4", "unknown parameter 'bbox'"),
        (URL + "?limit=5000", "unknown parameter 'limit'"),
        ("/api/tiles/3/8/0.json", "no tile 3/8/0"),
    ],
)
def test_unknown_params_and_tiles_are_refused(client: TestClient, path: str, reason: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 422
    assert reason in answer.json()["detail"]


def test_filters_narrow_the_tile(client: TestClient) -> None:
    _seed(
        client,
        {"source_id": "w", "agency": "Water"},
        {"source_id": "s", "agency": "Streets", "lat": 27.7702},
    )
    body = client.get(URL + "?agency=Water").json()
    assert [m[0] for m in body["markers"]] == ["test:w"]


def test_a_street_tile_over_the_marker_limit_holds_its_groups(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tiles_routes, "MAX_TILE_MARKERS", 3)
    _seed(
        client,
        *({"source_id": str(i), "lat": 27.77 + i / 100_000} for i in range(3)),
        {"source_id": "one more", "lat": 27.7704, "agency": "Water"},
    )
    streets = client.get(URL + "?agency=Streets").json()  # at the limit: markers
    assert streets["kind"] == "markers" and len(streets["markers"]) == 3
    body = client.get(URL).json()
    assert body["kind"] == "clusters" and body["total"] == 4
    assert sum(c[2] for c in body["clusters"]) == 4


def test_low_zoom_tiles_hold_groups_from_the_aggregates(client: TestClient) -> None:
    _seed(client, *({"source_id": str(i), "lat": 27.7 + i / 1000} for i in range(30)))
    low = tile_of(27.77, -82.64, MARKERS_MIN_Z - 3)
    body = client.get(f"/api/tiles/{low.z}/{low.x}/{low.y}.json").json()
    assert body["kind"] == "clusters" and body["total"] == 30
    assert sum(c[2] for c in body["clusters"]) == 30
    assert all(set(c[3]) == {"open"} for c in body["clusters"])


def test_low_zoom_groups_count_crime_incidents_apart_from_closed_requests(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crime incident is stored as closed (it has no status): a zoomed-out group counts it
    as a crime incident, never as a closed request, from the aggregates and from a scan, and
    so does a street tile's group (summed from the counted cells)."""
    monkeypatch.setattr(tiles_routes, "MAX_TILE_MARKERS", 1)  # the street tile sends groups
    closed = RequestStatus.CLOSED
    _seed(
        client,
        {"source_id": "pothole", "status": closed},
        {"source_id": "open", "lat": 27.7701},
        {"source_id": "c1", "dataset": "crime", "status": closed, "lat": 27.7702},
        {"source_id": "c2", "dataset": "crime", "status": closed, "lat": 27.7703},
    )
    low = tile_of(27.77, -82.64, MARKERS_MIN_Z - 3)
    low_url = f"/api/tiles/{low.z}/{low.x}/{low.y}.json"
    # The city's groups twice, a scan, the street tile's counted cells twice.
    urls = (
        low_url,
        f"{low_url}?dataset=311,crime",
        f"{low_url}?q=hole",
        URL,
        f"{URL}?dataset=311,crime",
    )
    for query in urls:
        body = client.get(query).json()
        assert body["fields"][3:] == ["by_status", "by_dataset"]
        [(_lat, _long, count, by_status, by_dataset)] = body["clusters"]
        assert count == 4, query
        assert by_status == {"closed": 1, "open": 1}, query
        assert by_dataset == {"311": 2, "crime": 2}, query
    [cell] = client.get("/api/requests/clusters?bbox=-83,27,-82,28&zoom=9").json()["features"]
    assert cell["properties"]["by_status"] == {"closed": 1, "open": 1}
    assert cell["properties"]["by_dataset"] == {"311": 2, "crime": 2}


def test_tiles_are_gzipped(client: TestClient) -> None:
    _seed(client, *({"source_id": str(i), "lat": 27.77 + i / 100_000} for i in range(60)))
    answer = client.get(URL, headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert len(answer.json()["markers"]) == 60
    raw = client.get(URL, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.json() == answer.json()
    assert answer.num_bytes_downloaded < raw.num_bytes_downloaded / 2


def test_each_encoding_has_its_own_strong_etag(client: TestClient) -> None:
    _seed(client, *({"source_id": str(i), "lat": 27.77 + i / 100_000} for i in range(60)))
    zipped = client.get(URL, headers={"Accept-Encoding": "gzip"})
    plain = client.get(URL, headers={"Accept-Encoding": "identity"})
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert (
        "Accept-Encoding" in zipped.headers["vary"] and "Accept-Encoding" in plain.headers["vary"]
    )
    for encoding, answer in (("gzip", zipped), ("identity", plain)):
        again = client.get(
            URL, headers={"Accept-Encoding": encoding, "If-None-Match": answer.headers["etag"]}
        )
        assert again.status_code == 304
    # A tag of the other encoding is not a match: that representation was not the one held.
    crossed = client.get(
        URL, headers={"Accept-Encoding": "identity", "If-None-Match": zipped.headers["etag"]}
    )
    assert crossed.status_code == 200


def test_the_read_limit_applies_to_tiles(tmp_path: Path, signing: SigningSettings) -> None:
    url = f"sqlite:///{tmp_path / 'limited.db'}"
    with make_client(url, RecordingPublisher(), signing, read_limit="3/minute") as limited:
        codes = [limited.get(URL).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
