"""`connect311-ingestor check` on the real exports in ../shared/data: the counts it prints
equal an independent recount with the csv module / an XML parser, and nothing is unaccounted."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from defusedxml import ElementTree
from typer.testing import CliRunner

from connect311_ingestor.check import check_file, infer_profile
from connect311_ingestor.cli import app
from connect311_ingestor.parsers.profiles import BUILTIN_PROFILES

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
CITY = DATA / "city311"
OPEN311 = DATA / "open311"
needs_data = pytest.mark.skipif(not CITY.is_dir(), reason="../shared/data is absent")
WIDE = {"COLUMNS": "400", "NO_COLOR": "1"}


def run_check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args], env=WIDE)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def printed_counts(output: str) -> tuple[int, int, dict[str, int]]:
    """(records read, accepted, rejects per reason) as the command printed them."""
    read = int(re.search(r"(\d+) records read", output).group(1))  # type: ignore[union-attr]
    accepted = int(re.search(r"│ accepted\s*│ (\d+)", output).group(1))  # type: ignore[union-attr]
    rejects = {m[0]: int(m[1]) for m in re.findall(r"rejected: (\w+)\s*│ (\d+)", output)}
    return read, accepted, rejects


def coordinate_recount(
    path: Path, lat: str, long: str, placeholder: tuple[float, float] | None
) -> tuple[int, int]:
    """(rows, rows without a usable location) counted with the csv module alone."""
    rows = missing = 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            rows += 1
            empty = not row[lat].strip() or not row[long].strip()
            at_placeholder = (
                not empty and placeholder and (float(row[lat]), float(row[long])) == placeholder
            )
            missing += bool(empty or at_placeholder)
    return rows, missing


CITY_FILES = [
    ("nyc/nyc311_2023-02-28_sample4999.csv", "nyc", "Latitude", "Longitude", None),
    ("nyc/nyc311_2022-05-01_924rows.csv", "nyc", "Latitude", "Longitude", None),
    (
        "chicago/chicago311_2021-01-01_5000rows.csv",
        "chicago",
        "latitude",
        "longitude",
        (41.871831277993564, -87.67984621876099),
    ),
    ("boston/boston311_100rows_qsv.csv", "boston", "latitude", "longitude", (42.3594, -71.0587)),
]


@needs_data
@pytest.mark.parametrize(("name", "profile", "lat", "long", "placeholder"), CITY_FILES)
def test_check_counts_equal_an_independent_recount_of_a_city_export(
    name: str, profile: str, lat: str, long: str, placeholder: tuple[float, float] | None
) -> None:
    path = CITY / name
    rows, missing = coordinate_recount(path, lat, long, placeholder)
    code, output = run_check(str(path), "--profile", profile, "--rows", "100000")
    assert code == 0, output
    read, accepted, rejects = printed_counts(output)
    assert read == rows
    assert accepted + sum(rejects.values()) == rows  # nothing unaccounted
    assert rejects.get("missing_coordinates", 0) == missing
    if name.startswith("nyc/nyc311_2023"):
        assert missing == 87  # what SOURCES.md says: the oracle itself is right
    assert f"profile {profile} (given)" in output


@needs_data
def test_check_infers_the_profile_and_shows_mapping_samples_and_an_example_per_reason() -> None:
    path = CITY / "nyc" / "nyc311_2023-02-28_sample4999.csv"
    code, output = run_check(str(path), "--rows", "200", "--show", "3")
    assert code == 0, output
    assert "profile nyc (inferred from the columns)" in output
    assert re.search(r"│ lat\s*│ Latitude\s*│ yes", output)
    assert re.search(r"│ Borough\s*│", output)  # a source column the profile does not use
    assert "first 3 normalized requests" in output
    assert output.count("nyc311:") >= 3
    read, _, rejects = printed_counts(output)
    assert read == 200
    for reason in rejects:
        assert re.search(rf"rejected: {reason}\s*│ \d+\s*│ \S+:row \d+: ", output)


def test_infer_profile_needs_every_required_column() -> None:
    open311 = [c for _, c in BUILTIN_PROFILES["open311"].columns if isinstance(c, str)]
    assert infer_profile(open311) == "open311"
    assert infer_profile(["Unique Key", "Created Date", "Latitude"]) is None


def test_check_says_in_one_line_when_no_profile_fits(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no built-in profile fits"):
        check_file(path, None)
    code, output = run_check(str(path))
    assert code == 2
    assert output.strip().count("\n") == 0, output
    assert "--profile PATH" in output


def request_elements(path: Path) -> int:
    root = ElementTree.fromstring(path.read_bytes())
    return sum(1 for child in root if child.tag.rsplit("}", 1)[-1] == "request")


OPEN311_XML = [
    "cfa-open311-ruby/service_requests.xml",
    "cfa-open311-ruby/service_requests_empty.xml",
    "fixmystreet/requests_3.xml",
    "fixmystreet/requests_glos_non_public.xml",
    "open311-adapter/get_requests.xml",
    "spec-examples/requests.xml",
]


@pytest.mark.skipif(not OPEN311.is_dir(), reason="../shared/data/open311 is absent")
@pytest.mark.parametrize("name", OPEN311_XML)
def test_check_reads_open311_xml_documents_and_accounts_for_every_request(name: str) -> None:
    path = OPEN311 / name
    code, output = run_check(str(path))  # .xml: the open311 profile, without being told
    assert code == 0, output
    assert "Open311 GeoReport v2 XML" in output
    read, accepted, rejects = printed_counts(output)
    assert read == request_elements(path)
    assert accepted + sum(rejects.values()) == read


@pytest.mark.skipif(not OPEN311.is_dir(), reason="../shared/data/open311 is absent")
def test_check_reads_open311_json_and_reports_a_broken_document_as_one_reject() -> None:
    boston = OPEN311 / "boston" / "request_single.json"
    code, output = run_check(str(boston), "--profile", "open311", "--source", "boston")
    assert code == 0, output
    assert printed_counts(output)[:2] == (1, 1)
    assert "boston:" in output and "Open311 GeoReport v2 JSON" in output
    assert isinstance(json.loads(boston.read_bytes()), dict)  # one bare request object
    spec = OPEN311 / "spec-examples" / "requests.json"  # `"service_code":001`: not JSON
    code, output = run_check(str(spec), "--profile", "open311")
    assert code == 0, output
    assert printed_counts(output) == (1, 0, {"invalid_json": 1})


SEECLICKFIX = DATA / "seeclickfix"


@pytest.mark.skipif(not SEECLICKFIX.is_dir(), reason="../shared/data/seeclickfix is absent")
def test_check_reads_a_saved_seeclickfix_page_and_accounts_for_every_issue() -> None:
    page = SEECLICKFIX / "koop_dc_issues_list_page1.json"
    issues = json.loads(page.read_bytes())["issues"]
    code, output = run_check(str(page), "--show", "2")  # {"issues": [...]}: inferred
    assert code == 0, output
    title = " ".join(output.split())  # a narrow table wraps its title
    assert "SeeClickFix API v2 issues page, profile seeclickfix (inferred" in title
    read, accepted, rejects = printed_counts(output)
    assert read == len(issues) == accepted + sum(rejects.values())
    assert f"seeclickfix:{issues[0]['id']}" in output
    # the v2 docs' bundle of example objects is not a page: one reject that says so
    docs = SEECLICKFIX / "devdocs_v2_examples.json"
    code, output = run_check(str(docs), "--profile", "seeclickfix", "--source", "scf")
    assert code == 0, output
    assert printed_counts(output) == (1, 0, {"unexpected_shape": 1})
    assert "not a SeeClickFix issues page" in output
