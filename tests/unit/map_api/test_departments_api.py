"""The department view over HTTP: JSON, CSV and widget agree, revalidate, and fail clearly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connect311_contracts.request import RequestStatus
from connect311_contracts.settings import SigningSettings
from connect311_map_api import departments
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.departments import minute_end
from tests.unit.map_api.conftest import make_client
from tests.unit.map_api.factories import RecordingPublisher, event, snapshot

LEVELS = """
business_days = false
[agency]
Streets = { days = 3 }
[service_code]
TREE = { hours = 4 }
"""


@pytest.fixture
def levels_file(tmp_path: Path) -> Path:
    path = tmp_path / "levels.toml"
    path.write_text(LEVELS)
    return path


@pytest.fixture
def api(
    sqlite_url: str,
    levels_file: Path,
    publisher: RecordingPublisher,
    signing: SigningSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """An app with service levels and a few requests of two departments."""
    now = datetime.now(UTC)
    # The numbers are measured to the minute: hold it, so no assertion straddles two.
    minute = minute_end()
    monkeypatch.setattr(departments, "minute_end", lambda: minute)
    with make_client(sqlite_url, publisher, signing, service_levels_file=levels_file) as client:
        events = [
            # Streets: one open 40 days (overdue on its 3 days), one closed in 1 day (met),
            # one closed in 5 days (missed), one with the feed's own due date tomorrow.
            event("opened", snapshot("s1", opened=now - timedelta(days=40))),
            event(
                "closed",
                snapshot(
                    "s2",
                    status=RequestStatus.CLOSED,
                    opened=now - timedelta(days=6),
                    updated=now - timedelta(days=5),
                ),
            ),
            event(
                "closed",
                snapshot(
                    "s3",
                    status=RequestStatus.CLOSED,
                    opened=now - timedelta(days=9),
                    updated=now - timedelta(days=4),
                ),
            ),
            event(
                "opened",
                snapshot("s4", opened=now - timedelta(days=2)).model_copy(
                    update={"expected_datetime": now + timedelta(days=1)}
                ),
            ),
            # Trees: a 4-hour target, closed in 3 hours; a formula-looking name.
            event(
                "closed",
                snapshot(
                    "t1",
                    status=RequestStatus.CLOSED,
                    code="TREE",
                    agency="=Trees",
                    opened=now - timedelta(days=1, hours=3),
                    updated=now - timedelta(days=1),
                ),
            ),
        ]
        with client.app.state.ctx.engine.begin() as conn:  # type: ignore[attr-defined]
            apply_events(conn, events)
        yield client


# Each CSV column and where the JSON row has it (written out here, not taken from the app).
CSV_FROM_JSON: dict[str, tuple[str, ...]] = {
    "rank": ("rank",),
    "department": ("agency",),
    "opened": ("opened",),
    "closed": ("closed",),
    "closed_with_target": ("closed_with_target",),
    "closed_within_target": ("closed_within_target",),
    "share_within_target_pct": ("share_within_target_pct",),
    "share_change_pts": ("share_change_pts",),
    "median_close_seconds": ("median_close_seconds",),
    "p90_close_seconds": ("p90_close_seconds",),
    "previous_opened": ("previous", "opened"),
    "previous_closed": ("previous", "closed"),
    "previous_share_within_target_pct": ("previous", "share_within_target_pct"),
    "previous_median_close_seconds": ("previous", "median_close_seconds"),
    "open_now": ("open",),
    "age_0_7_days": ("age_0_7",),
    "age_8_30_days": ("age_8_30",),
    "age_31_90_days": ("age_31_90",),
    "age_over_90_days": ("age_over_90",),
    "overdue_now": ("overdue",),
    "dated_in_future": ("dated_in_future",),
}


def _json_value(row: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = row
    for key in path:
        value = value.get(key)
    return value


def _as_csv(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def test_csv_holds_the_json_numbers_and_both_revalidate(api: TestClient) -> None:
    answer = api.get("/api/stats/departments", params={"period": "30d"})
    assert answer.status_code == 200
    view = answer.json()
    assert answer.headers["cache-control"] == "public, max-age=60"
    streets = next(r for r in view["departments"] if r["agency"] == "Streets")
    assert (streets["opened"], streets["closed"], streets["open"]) == (3, 2, 2)
    assert (streets["closed_with_target"], streets["closed_within_target"]) == (2, 1)
    assert streets["share_within_target_pct"] == 50.0
    assert (streets["age_31_90"], streets["age_0_7"], streets["overdue"]) == (1, 1, 1)
    assert view["due_dates"] == {
        "feed": 1,
        "service_level": 4,
        "no_target": 0,
        "feed_date_ignored": 0,
        "closed_without_date": 0,
    }
    # "=Trees" met its 4 hours: 100% ranks it first.
    assert [r["agency"] for r in view["departments"]] == ["=Trees", "Streets"]

    sheet = api.get("/api/stats/departments.csv", params={"period": "30d"})
    assert sheet.headers["content-type"] == "text/csv; charset=utf-8"
    assert sheet.headers["content-disposition"].startswith('attachment; filename="departments-30d')
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert len(rows) == len(view["departments"]) + 1  # then the all-departments row
    for row, expected in zip(rows, [*view["departments"], view["total"]], strict=True):
        for column, path in CSV_FROM_JSON.items():
            shown = _as_csv(_json_value(expected, path))
            if column == "department" and shown.startswith("="):
                shown = "'" + shown  # a feed's name never becomes a spreadsheet formula
            assert row[column] == shown, (column, row["department"])
        assert row["as_of"] == view["as_of"]

    for url in ("/api/stats/departments?period=30d", "/api/stats/departments.csv?period=30d"):
        first = api.get(url)
        again = api.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_filters_narrow_every_number(api: TestClient) -> None:
    view = api.get("/api/stats/departments", params={"agency": "Streets"}).json()
    assert [r["agency"] for r in view["departments"]] == ["Streets"]
    assert view["total"]["opened"] == 3 and view["filters"]["agency"] == ["Streets"]
    none = api.get("/api/stats/departments", params={"dataset": "crime"}).json()
    assert none["departments"] == [] and none["total"]["open"] == 0


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"period": "fortnight"}, "unknown period 'fortnight'"),
        ({"period": "2999-01"}, "has not started yet"),
        ({"agency": "Streets\x00"}, "control characters"),
    ],
)
def test_a_bad_filter_is_refused_with_the_reason(
    api: TestClient, query: dict[str, str], says: str
) -> None:
    answer = api.get("/api/stats/departments", params=query)
    assert answer.status_code == 422 and says in answer.text


def test_request_detail_says_when_due_and_how_late(api: TestClient) -> None:
    late = api.get("/api/requests/test:s1").json()
    assert late["due_source"] == "service_level" and late["due_target"] == "3 days"
    assert late["overdue"] is True
    assert 37 * 86_400 - 60 <= late["overdue_seconds"] <= 37 * 86_400 + 60
    feed = api.get("/api/requests/test:s4").json()
    assert feed["due_source"] == "feed" and feed["due_target"] is None
    assert feed["due_datetime"] == feed["expected_datetime"] and feed["overdue"] is False


def test_a_broken_file_after_start_is_a_503_with_the_reason(
    api: TestClient, levels_file: Path
) -> None:
    levels_file.write_text("[agency]\nStreets = { days = -1 }\n")
    answer = api.get("/api/stats/departments", params={"period": "7d"})
    assert answer.status_code == 503
    assert "agency.'Streets': days must be a whole number" in answer.json()["detail"]
    # A resident's request page still answers, with the feed's own due dates only.
    detail = api.get("/api/requests/test:s1").json()
    assert detail["due_datetime"] is None and detail["overdue"] is False


def test_the_widget_can_be_framed_cached_and_says_the_same_numbers(api: TestClient) -> None:
    widget = api.get("/embed/stats", params={"agency": "Streets", "period": "30d"})
    assert widget.status_code == 200
    headers = widget.headers
    assert "frame-ancestors *" in headers["content-security-policy"]
    assert "x-frame-options" not in headers
    assert headers["cache-control"] == "public, max-age=60" and "set-cookie" not in headers
    assert "<script" not in widget.text
    view = api.get("/api/stats/departments", params={"agency": "Streets", "period": "30d"})
    total = view.json()["total"]
    for element, key in (("w-opened", "opened"), ("w-resolved", "closed"), ("w-open", "open")):
        assert f'id="{element}">{total[key]}</dd>' in widget.text
    assert 'id="w-share">50.0%</dd>' in widget.text
    again = api.get(
        "/embed/stats?agency=Streets&period=30d", headers={"If-None-Match": headers["etag"]}
    )
    assert again.status_code == 304


def test_the_widget_speaks_the_snippets_language_without_setting_a_cookie(
    api: TestClient,
) -> None:
    widget = api.get("/embed/stats", params={"agency": "Streets", "lang": "es"})
    assert widget.headers["content-language"] == "es" and "set-cookie" not in widget.headers
    assert '<html lang="es">' in widget.text and "Abiertas ahora" in widget.text
    assert "This month so far" not in widget.text  # the period is named in Spanish too
