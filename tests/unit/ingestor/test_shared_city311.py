"""Every city open-data export in ../shared/data, read with its city's column profile.

Expected counts were worked out with a plain csv/json script over the files (rows with an
empty Latitude/Longitude, rows at a placeholder point, closed date before created date),
and agree with the notes in SOURCES.md (NYC: 87 rows without coordinates, 2 closed before
created: kept, with the anomaly noted). The tests below also recompute some of them with a
tiny oracle from the raw file.
"""

from __future__ import annotations

import csv
import functools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.parsers.tabular import parse_row
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.sources.files import read_records


@functools.cache  # several tests look at the same 5,000-row file: read it once
def read_all(path: Path, profile: str) -> tuple[ParseResult, ...]:
    chosen = get_profile(profile)
    return tuple(
        row if isinstance(row, Rejected) else parse_row(row, chosen, where)
        for where, row in read_records(path)
    )


def tally(results: tuple[ParseResult, ...]) -> dict[str, int]:
    return dict(Counter("ok" if isinstance(r, Accepted) else r.reason.value for r in results))


EXPORTS = {
    # NYC: 11 rows with empty Latitude/Longitude
    "nyc/nyc311_2022-05-01_924rows.csv": ("nyc", {"ok": 913, "missing_coordinates": 11}),
    # NYC: 87 rows without coordinates; 2 closed (Jan/Feb 2023) before created (28 Feb 2023)
    # are real requests, kept with an anomaly (see test_nyc_closed_before_created_is_kept)
    "nyc/nyc311_2023-02-28_sample4999.csv": ("nyc", {"ok": 4912, "missing_coordinates": 87}),
    # NYC JSON array: the third row has "Latitude": null
    "nyc/nyc311_5rows_qsv.json": ("nyc", {"ok": 4, "missing_coordinates": 1}),
    # Chicago: 4 rows with empty latitude, 2837 rows at the 311 call centre's own point
    "chicago/chicago311_2021-01-01_5000rows.csv": (
        "chicago",
        {"ok": 2159, "missing_coordinates": 4 + 2837},
    ),
    # Boston: 19 rows at 42.3594,-71.0587, Boston's point for cases it could not geocode
    "boston/boston311_100rows_qsv.csv": ("boston", {"ok": 81, "missing_coordinates": 19}),
    "boston/boston311_10rows_qsv.jsonl": ("boston", {"ok": 9, "missing_coordinates": 1}),
}


def test_every_export_is_covered(shared_data: Path) -> None:
    root = shared_data / "city311"
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == set(EXPORTS)


@pytest.mark.parametrize(("name", "case"), sorted(EXPORTS.items()))
def test_exports(shared_data: Path, name: str, case: tuple[str, dict[str, int]]) -> None:
    profile, expected = case
    results = read_all(shared_data / "city311" / name, profile)
    assert tally(results) == expected
    ids = [r.request.service_request_id for r in results if isinstance(r, Accepted)]
    assert len(ids) == len(set(ids))
    assert all(r.location and r.location.startswith(Path(name).name + ":") for r in results)


def raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_nyc_missing_coordinates_match_a_plain_oracle(shared_data: Path) -> None:
    path = shared_data / "city311/nyc/nyc311_2023-02-28_sample4999.csv"
    empty = {r["Unique Key"] for r in raw_rows(path) if not r["Latitude"] or not r["Longitude"]}
    results = read_all(path, "nyc")
    rejected_missing = {
        r.location
        for r in results
        if isinstance(r, Rejected) and r.reason.value == "missing_coordinates"
    }
    assert len(empty) == len(rejected_missing) == 87
    sample = next(
        r for r in results if isinstance(r, Rejected) and r.reason.value == "missing_coordinates"
    )
    assert sample.detail.startswith("no latitude/longitude (columns Latitude, Longitude empty)")
    assert any(key in sample.raw for key in empty)


def test_nyc_fields_statuses_and_time_zone(shared_data: Path) -> None:
    results = read_all(shared_data / "city311/nyc/nyc311_2023-02-28_sample4999.csv", "nyc")
    by_id = {r.request.source_request_id: r.request for r in results if isinstance(r, Accepted)}
    assert "56926734" not in by_id  # the DOT pothole row has no coordinates
    request = by_id["56924812"]  # NYPD Noise - Vehicle, 02/28/2023 11:44:32 PM EST
    assert request.service_request_id == "nyc311:56924812"
    assert request.requested_datetime == datetime(2023, 3, 1, 4, 44, 32, tzinfo=UTC)
    assert request.closed_datetime == datetime(2023, 3, 1, 5, 10, 41, tzinfo=UTC)
    assert (request.service_name, request.description) == ("Noise - Vehicle", "Car/Truck Music")
    assert request.agency_responsible == "New York City Police Department"
    assert (request.address, request.zipcode) == ("290 EXETER STREET", "11235")
    statuses = Counter((r.raw_status, r.status) for r in by_id.values())
    assert statuses[("Assigned", RequestStatus.ACKNOWLEDGED)] > 0
    assert statuses[("In Progress", RequestStatus.IN_PROGRESS)] > 0
    assert {status for _, status in statuses} == set(RequestStatus)


def test_nyc_mojibake_is_repaired(shared_data: Path) -> None:
    path = shared_data / "city311/nyc/nyc311_2023-02-28_sample4999.csv"
    damaged = {
        r["Unique Key"]
        for r in raw_rows(path)
        if "\u00e2\u0080\u0099" in r["Resolution Description"]
    }
    results = read_all(path, "nyc")
    notes = {
        r.request.source_request_id: r.request.status_notes or ""
        for r in results
        if isinstance(r, Accepted)
    }
    repaired = [key for key in damaged if key in notes]
    assert len(damaged) > 100 and len(repaired) > 100
    assert all("\u2019" in notes[key] and "\u00e2\u0080" not in notes[key] for key in repaired)
    assert not any(ch in text for text in notes.values() for ch in "\u0080\u0099\u009c\u009d")


def test_nyc_duplicates_from_resolution_text(shared_data: Path) -> None:
    path = shared_data / "city311/nyc/nyc311_2023-02-28_sample4999.csv"
    results = read_all(path, "nyc")
    accepted = {r.request.source_request_id: r.request for r in results if isinstance(r, Accepted)}
    oracle = {
        r["Unique Key"]
        for r in raw_rows(path)
        if r["Status"] == "Closed" and "duplicate" in r["Resolution Description"].lower()
    } & set(accepted)
    found = {key for key, req in accepted.items() if req.closed_reason is ClosedReason.DUPLICATE}
    assert found == oracle and len(found) > 200


def test_chicago_statuses_and_duplicates(shared_data: Path) -> None:
    path = shared_data / "city311/chicago/chicago311_2021-01-01_5000rows.csv"
    results = read_all(path, "chicago")
    accepted = [r.request for r in results if isinstance(r, Accepted)]
    raw = {r["sr_number"]: r for r in raw_rows(path)}
    for request in accepted:
        row = raw[request.source_request_id]
        expected = {
            "Completed": RequestStatus.CLOSED,
            "Canceled": RequestStatus.CLOSED,
            "Open": RequestStatus.OPEN,
        }
        assert request.status is expected[row["status"]]
        if row["status"] == "Open":
            assert request.closed_reason is None and request.closed_datetime is None
        elif row["duplicate"] == "True":
            assert request.closed_reason is ClosedReason.DUPLICATE
        elif row["status"] == "Canceled":
            assert request.closed_reason is ClosedReason.CANCELLED
        else:
            assert request.closed_reason is ClosedReason.FIXED
    for request in accepted[:50]:
        local = datetime.fromisoformat(raw[request.source_request_id]["created_date"])
        # Chicago is UTC-6 in January
        assert request.requested_datetime == local.replace(tzinfo=UTC) + timedelta(hours=6)


def test_boston_fields(shared_data: Path) -> None:
    results = read_all(shared_data / "city311/boston/boston311_10rows_qsv.jsonl", "boston")
    accepted = {r.request.source_request_id: r.request for r in results if isinstance(r, Accepted)}
    needle = accepted["101004130437"]
    assert needle.zipcode == "02113"  # JSONL gives the number 2113
    assert needle.status is RequestStatus.CLOSED and needle.service_name == "Needle Pickup"
    assert needle.closed_datetime == datetime(2022, 1, 19, 16, 42, 16, tzinfo=UTC)
    assert needle.agency_responsible == "Mayor's 24 Hour Hotline"
    placeholder = next(r for r in results if isinstance(r, Rejected))
    assert placeholder.location == "boston311_10rows_qsv.jsonl:line 1"
    assert "placeholder" in placeholder.detail


def test_nyc_closed_before_created_is_kept_with_the_anomaly(shared_data: Path) -> None:
    path = shared_data / "city311/nyc/nyc311_2023-02-28_sample4999.csv"
    rows = raw_rows(path)
    fmt = "%m/%d/%Y %I:%M:%S %p"
    early = {  # oracle: closed date before created date, read straight from the file
        r["Unique Key"]
        for r in rows
        if r["Closed Date"]
        and datetime.strptime(r["Closed Date"], fmt) < datetime.strptime(r["Created Date"], fmt)
    }
    assert early == {"56921224", "56923577"}
    results = read_all(path, "nyc")
    by_id = {r.request.source_request_id: r.request for r in results if isinstance(r, Accepted)}
    for key in early:
        request = by_id[key]
        assert request.status is RequestStatus.CLOSED
        assert request.anomalies == ("closed_datetime:before_requested",)
        assert request.closed_datetime == request.requested_datetime, "closed when opened"
    # 56921224: created 02/28/2023 11:44:59 PM New York time is kept as reported
    assert by_id["56921224"].requested_datetime == datetime(2023, 3, 1, 4, 44, 59, tzinfo=UTC)
    flagged = {k for k, r in by_id.items() if r.anomalies}
    assert flagged == early, "no other row of the export has a date anomaly"
    # Every row is accounted for: accepted plus rejected per reason is the file's row count.
    counts = tally(results)
    assert len(rows) == sum(counts.values()) == 4999
    assert counts == {"ok": 4912, "missing_coordinates": 87}
