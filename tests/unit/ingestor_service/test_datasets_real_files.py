"""The new datasets in ../shared/data/datasets, imported the way a city operator would: a
profile written in TOML, no code. Every row is accounted for (accepted + rejected per reason =
rows in the file, against an independent recount with the csv module), and the property
owners' names in the code-violations export reach no topic and no table.

Both files have CR-only line endings, which the csv module reads with newline="".
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from connect311_ingestor.check import check_file
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.sources.files import import_file
from connect311_ingestor.store import IngestorStore
from tests.support.ingestor_rejects import dump_tables, recording_ingestor

DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "datasets"
SYRACUSE = DATASETS / "code_violations" / "syracuse_DOCECases.csv"
SACRAMENTO = DATASETS / "crime" / "SacramentocrimeJanuary2006.csv"

pytestmark = pytest.mark.skipif(not DATASETS.is_dir(), reason="../shared/data is absent")

SYRACUSE_PROFILE = """
source = "syracuse-code"
dataset = "code_violations"
timezone = "America/New_York"
date_formats = ["%m/%d/%y %H:%M"]

[columns]
id = "Violation.."
requested_datetime = "Violation.Date"
status = "Violation.Status"
closed_datetime = "Complaint.Close.Date"
service_name = "Code"
agency_responsible = "Complaint.Type"
address = "Address"
lat = "lat"
long = "lon"
"""

SACRAMENTO_PROFILE = """
source = "sacramento-crime"
dataset = "crime"
timezone = "America/Los_Angeles"
date_formats = ["%m/%d/%y %H:%M"]

[columns]
id = "cdatetime"
requested_datetime = "cdatetime"
service_name = "crimedescr"
address = "address"
lat = "latitude"
long = "longitude"
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _profile(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_code_violations_every_row_accounted_for(tmp_path: Path) -> None:
    rows = _rows(SYRACUSE)
    profile = get_profile(_profile(tmp_path, "syracuse", SYRACUSE_PROFILE))
    report = check_file(SYRACUSE, profile, rows=len(rows) + 10, samples=0)

    no_number = sum(1 for r in rows if not (_number(r["lat"]) and _number(r["lon"])))
    fmt = "%m/%d/%y %H:%M"
    closed_early = sum(
        1
        for r in rows
        if _number(r["lat"])
        and _number(r["lon"])
        and r["Complaint.Close.Date"]
        and datetime.strptime(r["Complaint.Close.Date"], fmt)
        < datetime.strptime(r["Violation.Date"], fmt)
    )
    assert report.records == len(rows) == 10_000
    assert dict(report.rejects) == {"invalid_coordinates": no_number}
    assert report.accepted + sum(report.rejects.values()) == len(rows)
    # A closure dated before the opening (a date-only close field) keeps the request.
    assert report.anomalies == Counter({"closed_datetime:before_requested": closed_early})
    assert closed_early > 0


async def test_owner_names_reach_no_topic_and_no_table(tmp_path: Path) -> None:
    rows = _rows(SYRACUSE)[:1500]  # enough owners, a fast test
    sample = tmp_path / "sample.csv"
    with sample.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\r")
        writer.writeheader()
        writer.writerows(rows)
    owners = {r["Owner.s."].strip() for r in rows if len(r["Owner.s."].strip()) >= 6}
    assert len(owners) > 100

    store = IngestorStore.from_url(f"sqlite:///{tmp_path / 'ingestor.db'}")
    store.create_schema()
    ingestor, publisher = recording_ingestor(store)
    profile = get_profile(_profile(tmp_path, "syracuse", SYRACUSE_PROFILE))
    summary = await import_file(ingestor, sample, profile)

    assert summary.records == len(rows)
    assert publisher.events, "accepted violations are published"
    published, tables = publisher.wire(), dump_tables(store)
    leaked = sorted(o for o in owners if o in published or o in tables)
    assert leaked == []


def test_crime_every_row_accounted_for(tmp_path: Path) -> None:
    rows = _rows(SACRAMENTO)
    profile = get_profile(_profile(tmp_path, "sacramento", SACRAMENTO_PROFILE))
    report = check_file(SACRAMENTO, profile, rows=len(rows) + 10, samples=0)

    unusable = sum(1 for r in rows if not (_number(r["latitude"]) and _number(r["longitude"])))
    assert report.records == len(rows) == 7_584
    assert report.accepted + sum(report.rejects.values()) == len(rows)
    assert sum(report.rejects.values()) == unusable
