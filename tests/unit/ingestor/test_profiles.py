"""Column profiles: built-ins and a mapping file a user writes (TOML or JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from connect311_contracts.request import ClosedReason, RequestStatus
from connect311_ingestor.parsers.profiles import BUILTIN_PROFILES, get_profile, load_profile
from connect311_ingestor.parsers.tabular import parse_row
from connect311_ingestor.records import Accepted, Rejected
from connect311_ingestor.sources.files import read_records

USER_TOML = """
source = "springfield"
dataset = "code_enforcement"
timezone = "America/Denver"
date_formats = ["%d.%m.%Y %H:%M"]
zipcode_digits = 5
placeholder_coordinates = [[39.7392, -104.9903]]

[columns]
id = "Case"
requested_datetime = "Opened"
closed_datetime = "Closed"
lat = "Y"
long = "X"
status = "State"
service_name = ["Type", "Category"]
status_notes = "Outcome"
closed_reason_text = "Outcome"
address = "Where"
zipcode = "Zip"

[statuses]
"Done" = "closed/fixed"
"Sent to county" = "closed/referred"
"Waiting" = "acknowledged"
"""

CSV = (
    "Case,Opened,Closed,Y,X,State,Type,Category,Outcome,Where,Zip\n"
    "A1,15.01.2024 09:30,16.01.2024 10:00,39.75,-105.0,Done,,Weeds,Cut,1 Elm St,802\n"
    "A2,15.01.2024 09:30,,39.75,-105.0,Waiting,Junk car,,,2 Elm St,80202\n"
    "A3,15.01.2024 09:30,,39.7392,-104.9903,Waiting,Junk car,,,,\n"
    "A4,15.01.2024 09:30,17.01.2024 08:00,39.76,-105.1,Sent to county,Junk car,,,3 Elm St,\n"
    "A5,15.01.2024 09:30,17.01.2024 08:00,39.76,-105.1,Mystery,Junk car,,duplicate of A4,,\n"
)


def test_a_user_profile_in_toml(tmp_path: Path) -> None:
    profile_path = tmp_path / "springfield.toml"
    profile_path.write_text(USER_TOML, encoding="utf-8")
    data = tmp_path / "cases.csv"
    data.write_text(CSV, encoding="utf-8")
    profile = get_profile(profile_path)
    results = [
        parse_row(row, profile, where)
        for where, row in read_records(data)
        if not isinstance(row, Rejected)
    ]
    a1, a2, a3, a4, a5 = results
    assert isinstance(a1, Accepted) and isinstance(a2, Accepted) and isinstance(a4, Accepted)
    assert (
        a1.request.service_request_id == "springfield:A1"
        and a1.request.dataset == "code_enforcement"
    )
    assert a1.request.requested_datetime == datetime(2024, 1, 15, 16, 30, tzinfo=UTC)  # MST = UTC-7
    assert (a1.request.status, a1.request.closed_reason) == (
        RequestStatus.CLOSED,
        ClosedReason.FIXED,
    )
    assert a1.request.service_name == "Weeds" and a1.request.zipcode == "00802"
    assert a2.request.status is RequestStatus.ACKNOWLEDGED and a2.request.service_name == "Junk car"
    assert isinstance(a3, Rejected) and a3.reason.value == "missing_coordinates"
    assert a4.request.closed_reason is ClosedReason.REFERRED
    # unknown word with a closed date: closed, and the outcome text names a duplicate
    assert isinstance(a5, Accepted) and a5.request.status is RequestStatus.CLOSED
    assert a5.request.raw_status == "Mystery" and a5.request.closed_reason is ClosedReason.DUPLICATE


def test_the_same_profile_in_json(tmp_path: Path) -> None:
    nyc = BUILTIN_PROFILES["nyc"]
    path = tmp_path / "nyc.json"
    path.write_text(json.dumps(nyc.model_dump(mode="json")), encoding="utf-8")
    assert load_profile(path) == nyc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"statuses": {"Done": "finished"}}, "status rule"),
        ({"statuses": {"Done": "open/duplicate"}}, "only a closed status"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_profile_mistakes_are_explained(change: dict, message: str) -> None:
    data = {**BUILTIN_PROFILES["boston"].model_dump(mode="json"), **change}
    with pytest.raises(ValidationError, match=message):
        type(BUILTIN_PROFILES["boston"]).model_validate(data)


def test_get_profile_names_the_choices(tmp_path: Path) -> None:
    assert get_profile("NYC") is BUILTIN_PROFILES["nyc"]
    assert set(BUILTIN_PROFILES) == {"nyc", "chicago", "boston", "open311", "seeclickfix"}
    with pytest.raises(ValueError, match="boston, chicago, nyc, open311, seeclickfix"):
        get_profile(tmp_path / "missing.toml")


def test_open311_profile_reads_georeport_rows() -> None:
    row = {
        "service_request_id": 638344,
        "status": "closed",
        "status_notes": "Duplicate request.",
        "service_code": "006",
        "requested_datetime": "2010-04-14T06:37:38-08:00",
        "lat": 37.762221815,
        "long": -122.4651145,
    }
    result = parse_row(row, get_profile("open311"))
    assert isinstance(result, Accepted)
    assert result.request.closed_reason is ClosedReason.DUPLICATE
    assert result.request.requested_datetime == datetime(2010, 4, 14, 14, 37, 38, tzinfo=UTC)
