"""Profile features for datasets beyond 311, on small exports an operator could write:
bounds, "NA" cells, rows folded into one case, point events, derived ids, addresses
generalised to the block and points rounded before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connect311_contracts.request import RequestStatus
from connect311_ingestor.parsers.cells import drop_notes
from connect311_ingestor.parsers.generalise import block_address
from connect311_ingestor.parsers.profiles import ColumnProfile, load_profile
from connect311_ingestor.records import Accepted, ParseResult, Rejected
from connect311_ingestor.sources.files import estimate_rows, parse_file

CASES_TOML = """
source = "town-code"
dataset = "code_violations"
timezone = "America/New_York"
date_formats = ["%m/%d/%y %H:%M"]
missing_values = ["NA"]
drop_address_notes = true
bounds = [[42.0, -77.0], [43.0, -76.0]]

[columns]
id = "case"
requested_datetime = "opened"
closed_datetime = "closed"
updated_datetime = "cited"
expected_datetime = "comply_by"
status = "case_status"
service_name = "type"
address = "address"
lat = "lat"
long = "lon"

[statuses]
"Completed" = "closed/fixed"

[group]
status = "violation_status"
item = "code"
label = "Violations"
"""

HEADER = (
    "case,code,cited,comply_by,violation_status,opened,closed,case_status,owner,address,"
    "type,lat,lon"
)
CASES_CSV = "\r".join(  # CR-only line endings, as the Syracuse export has
    [
        HEADER,
        # C1: three violations spread through the file, all closed: closed, listed, sorted
        "C1,Sec 2 - Trash,1/3/12 9:00,1/1/1900 0:00,Closed,1/1/12 8:00,2/1/12 0:00,Completed,"
        "Ann Owner,1 Elm St,Trash,42.5,-76.5",
        "C2,Sec 9 - Weeds,1/5/12 9:00,1/1/1900 0:00,Open,1/4/12 8:00,2/2/12 0:00,Completed,"
        "Bob Owner,2 Elm St,Weeds,NA,NA",
        "C1,Sec 1 - Bins,1/2/12 9:00,1/20/12 9:00,Closed,1/1/12 8:00,2/1/12 0:00,Completed,"
        "Ann Owner,1 Elm St,Trash,42.5,-76.5",
        # C2: the case is Completed but one violation is still open; one row has NA coords
        "C2,Sec 8 - Paint,1/6/12 9:00,1/1/1900 0:00,Closed,1/4/12 8:00,2/2/12 0:00,Completed,"
        "Bob Owner,2 Elm St (Bob Owner),Weeds,42.6,-76.6",
        "C1,Sec 3 - Porch,1/4/12 9:00,1/25/12 9:00,Closed,1/1/12 8:00,2/1/12 0:00,Completed,"
        "Ann Owner,1 Elm St,Trash,42.5,-76.5",
        # C3: geocoded in another state; C4: no coordinates on any row
        "C3,Sec 1 - Bins,1/2/12 9:00,1/1/1900 0:00,Open,1/1/12 8:00,,Open,Cy Owner,3 Elm St,"
        "Trash,35.4,-119.0",
        "C3,Sec 2 - Trash,1/2/12 9:00,1/1/1900 0:00,Open,1/1/12 8:00,,Open,Cy Owner,"
        "3 Elm St (Cy Owner c/o Z),Trash,35.4,-119.0",
        "C4,Sec 1 - Bins,1/2/12 9:00,1/1/1900 0:00,Open,1/1/12 8:00,,Open,Di Owner,4 Elm St,"
        "Trash,NA,NA",
    ]
)


def _profile(tmp_path: Path, text: str, name: str = "p.toml") -> ColumnProfile:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_profile(path)


def _export(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _by_id(results: list[ParseResult]) -> dict[str, ParseResult]:
    out: dict[str, ParseResult] = {}
    for r in results:
        key = r.request.source_request_id if isinstance(r, Accepted) else str(r.record["case"])
        out[key] = r
    return out


@pytest.fixture
def cases(tmp_path: Path) -> dict[str, ParseResult]:
    profile = _profile(tmp_path, CASES_TOML)
    return _by_id(list(parse_file(_export(tmp_path, CASES_CSV), profile)))


def test_rows_of_a_case_fold_into_one_record_with_its_violations_listed(
    cases: dict[str, ParseResult],
) -> None:
    c1 = cases["C1"]
    assert isinstance(c1, Accepted) and c1.rows == 3
    request = c1.request
    assert request.status is RequestStatus.CLOSED and request.raw_status == "Completed"
    assert request.description == (
        "Violations (3):\n- Sec 1 - Bins (Closed)\n- Sec 2 - Trash (Closed)\n"
        "- Sec 3 - Porch (Closed)"
    )
    assert c1.location == "export.csv:rows 1, 3, 5"
    # Opened: the complaint; updated: the latest violation; expected: the latest real
    # comply-by date (the 1/1/1900 placeholder on one row does not hide the others).
    assert request.requested_datetime == datetime(2012, 1, 1, 13, 0, tzinfo=UTC)
    assert request.updated_datetime == datetime(2012, 1, 4, 14, 0, tzinfo=UTC)
    assert request.expected_datetime == datetime(2012, 1, 25, 14, 0, tzinfo=UTC)
    assert request.closed_datetime == datetime(2012, 2, 1, 5, 0, tzinfo=UTC)
    assert request.anomalies == ()


def test_a_case_stays_open_while_a_violation_is_open(cases: dict[str, ParseResult]) -> None:
    c2 = cases["C2"]
    assert isinstance(c2, Accepted) and c2.rows == 2
    request = c2.request
    assert request.status is RequestStatus.OPEN
    assert request.closed_datetime is None and request.closed_reason is None
    assert request.raw_status == "Completed", "the city's own word is kept"
    # Every comply-by date is the placeholder: no date, counted.
    assert request.expected_datetime is None
    assert set(request.anomalies) == {"status:row_still_open", "expected_datetime:placeholder"}
    # The NA row comes first; the point is the first row that has one.
    assert (request.lat, request.long) == (42.6, -76.6)


def test_cases_outside_the_bounds_or_without_a_point_are_rejected_whole(
    cases: dict[str, ParseResult],
) -> None:
    c3, c4 = cases["C3"], cases["C4"]
    assert isinstance(c3, Rejected) and c3.reason.value == "outside_bounds" and c3.rows == 2
    assert "outside the city's bounds" in c3.detail
    assert isinstance(c4, Rejected) and c4.reason.value == "missing_coordinates"
    assert c4.rows == 1
    assert sum(r.rows for r in cases.values()) == CASES_CSV.count("\r"), "every row counted"


def test_owner_column_is_not_kept_even_in_a_reject(cases: dict[str, ParseResult]) -> None:
    c3 = cases["C3"]
    assert isinstance(c3, Rejected)
    assert "owner" not in c3.record and "Cy Owner" not in c3.raw
    assert '"address": "3 Elm St"' in c3.raw, "the address is kept, its note is not"
    c2 = cases["C2"]
    assert isinstance(c2, Accepted) and c2.request.address == "2 Elm St"
    accepted = [r.request.model_dump_json() for r in cases.values() if isinstance(r, Accepted)]
    assert not any("Owner" in text for text in accepted)


def test_estimate_rows_counts_cr_only_line_ends(tmp_path: Path) -> None:
    assert estimate_rows(_export(tmp_path, CASES_CSV)) == 8
    assert estimate_rows(_export(tmp_path, "a,b\r\n1,2\r\n3,4\r\n")) == 2
    assert estimate_rows(_export(tmp_path, "a,b\n1,2\n3,4")) == 2


CRIME_TOML = """
source = "town-crime"
dataset = "crime"
timezone = "America/Los_Angeles"
date_formats = ["%m/%d/%y %H:%M"]
point_events = true
id_columns = ["when", "address", "offence"]
generalise_address = "block"
coordinate_decimals = 3

[columns]
requested_datetime = "when"
service_name = "offence"
address = "address"
lat = "lat"
long = "lon"
"""

CRIME_CSV = "\r".join(
    [
        "when,address,offence,lat,lon",
        "1/1/06 0:00,3108 OCCIDENTAL DR,THEFT,38.55042047,-121.3914158",
        "1/1/06 0:00,3150 OCCIDENTAL DR,THEFT,38.55061234,-121.3914771",
        "1/5/06 20:00,2750 SUTTERVILLE RD,MISSING PERSON,38.53881527,-121.479014",
        "1/5/06 20:00,2750 SUTTERVILLE RD,MISSING PERSON,38.53881527,-121.479014",
        "1/2/06 9:30,3RD ST / O ST,ASSAULT,38.5726,-121.5023",
    ]
)


def test_crime_rows_are_point_events_with_generalised_places(tmp_path: Path) -> None:
    profile = _profile(tmp_path, CRIME_TOML)
    results = list(parse_file(_export(tmp_path, CRIME_CSV), profile))
    assert all(isinstance(r, Accepted) for r in results)
    requests = [r.request for r in results if isinstance(r, Accepted)]
    assert [r.address for r in requests] == [
        "3100 block of OCCIDENTAL DR",
        "3100 block of OCCIDENTAL DR",
        "2700 block of SUTTERVILLE RD",
        "2700 block of SUTTERVILLE RD",
        "3RD ST / O ST",
    ]
    assert [(r.lat, r.long) for r in requests[:2]] == [(38.55, -121.391), (38.551, -121.391)]
    for r in requests:
        assert r.status is RequestStatus.CLOSED and r.closed_datetime == r.requested_datetime
        assert r.raw_status == "" and r.closed_reason is None and r.dataset == "crime"
    ids = [r.source_request_id for r in requests]
    # Same minute, block and offence: one digest, numbered in file order; likewise the two
    # identical missing-person rows. Every row is its own incident.
    assert ids[1] == f"{ids[0]}-2" and ids[3] == f"{ids[2]}-2"
    assert len(set(ids)) == 5
    again = [r.request.source_request_id for r in parse_file(tmp_path / "export.csv", profile)]
    assert again == ids, "a re-import derives the same ids"


def test_derived_ids_do_not_encode_the_exact_house(tmp_path: Path) -> None:
    profile = _profile(tmp_path, CRIME_TOML)
    one = _export(tmp_path, "when,address,offence,lat,lon\r1/1/06 0:00,3108 A ST,X,38.5,-121.4")
    first = next(iter(parse_file(one, profile)))
    other = _export(tmp_path, "when,address,offence,lat,lon\r1/1/06 0:00,3170 A ST,X,38.5,-121.4")
    second = next(iter(parse_file(other, profile)))
    assert isinstance(first, Accepted) and isinstance(second, Accepted)
    assert first.request.source_request_id == second.request.source_request_id


def test_a_rejected_crime_row_keeps_its_address_only_as_a_length(tmp_path: Path) -> None:
    profile = _profile(tmp_path, CRIME_TOML)
    bad = _export(tmp_path, "when,address,offence,lat,lon\rnot a date,3108 A ST,X,38.5,-121.4")
    (result,) = list(parse_file(bad, profile))
    assert isinstance(result, Rejected) and result.reason.value == "invalid_date"
    assert "3108" not in result.raw and '"address": "[text: 9 chars]"' in result.raw


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("508-10 Brighton Ave W (Unit 30)", "508-10 Brighton Ave W"),
        ("100 Buckingham Ave (norman Jemal)", "100 Buckingham Ave"),
        ("1 Elm St (rear) & Oak St", "1 Elm St & Oak St"),
        ("1 Elm St (unclosed note", "1 Elm St"),
        ("1 Elm St) stray", "1 Elm St stray"),
        ("1 Elm St", "1 Elm St"),
    ],
)
def test_address_notes_rule(address: str, kept: str) -> None:
    assert drop_notes(address) == kept


def test_address_notes_rule_is_linear_on_hostile_input() -> None:
    assert drop_notes("(" * 100_000) == ""
    assert drop_notes("1 A St " + "(x" * 50_000) == "1 A St"


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("3108 OCCIDENTAL DR", "3100 block of OCCIDENTAL DR"),
        ("22 BECKFORD CT", "0 block of BECKFORD CT"),
        ("1514A MCALLISTER AVE", "1500 block of MCALLISTER AVE"),
        ("4488 1/2 65TH ST", "4400 block of 65TH ST"),
        ("122-24 Fage Ave", "100 block of Fage Ave"),
        ("4800N KOKOMO DR", "4800 block of KOKOMO DR"),
        ("  12   MAIN  ST ", "0 block of MAIN ST"),
        ("3RD ST / O ST", "3RD ST / O ST"),
        ("14TH AVE", "14TH AVE"),
        ("5 / 6", "5 / 6"),
        ("", ""),
        (None, None),
    ],
)
def test_block_rule(address: Any, shown: Any) -> None:
    assert block_address(address) == shown


def test_block_rule_is_linear_on_hostile_input() -> None:
    # Backtracking would make these take seconds; a linear scan is instant.
    assert block_address("1" * 100_000 + "x ST") == "1" * 99_998 + "00 block of ST"
    assert block_address("1 " + "1/" * 50_000).startswith("0 block of")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id_columns": ["when"]}, "not both or neither"),
        ({"columns": {"requested_datetime": "when", "lat": "y", "long": "x"}}, "neither"),
        ({"point_events": True}, "no lifecycle"),
        ({"bounds": [[43.0, -76.0], [42.0, -77.0]]}, "south < north"),
        ({"coordinate_decimals": 0}, "greater than or equal to 1"),
        ({"generalise_address": "street"}, "block"),
        ({"group": {"colour": "red"}}, "colour"),
    ],
)
def test_profile_mistakes_are_explained(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = _profile(tmp_path, CASES_TOML).model_dump(mode="json")
    with pytest.raises(ValidationError, match=message):
        ColumnProfile.model_validate({**data, **change})


def test_group_cannot_use_derived_ids(tmp_path: Path) -> None:
    data = _profile(tmp_path, CASES_TOML).model_dump(mode="json")
    data["columns"]["id"] = None
    with pytest.raises(ValidationError, match=r"group folds rows by columns\.id"):
        ColumnProfile.model_validate({**data, "id_columns": ["case"]})
