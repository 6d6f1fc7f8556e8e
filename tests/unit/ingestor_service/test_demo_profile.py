"""The local run's demo profile (data/demo/nyc_demo.toml): the built-in nyc profile plus
housing and buildings complaints filed as code violations, so the demo shows two layers."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.records import Accepted
from connect311_ingestor.sources.files import parse_file

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "data" / "demo"
CODE_ENFORCEMENT = {"HPD", "DOB"}  # the export's own agency codes, read independently below


def test_the_demo_profile_is_the_builtin_nyc_profile_plus_the_agency_datasets() -> None:
    demo = get_profile(str(DEMO / "nyc_demo.toml"))
    assert demo.datasets_by_agency  # the one difference, and it must be there
    assert demo.model_copy(update={"datasets_by_agency": {}}) == get_profile("nyc")


def test_the_demo_day_has_two_datasets_split_by_the_agency_column() -> None:
    export = DEMO / "nyc311_2023-02-28_demo.csv"
    with export.open(newline="", encoding="utf-8-sig") as handle:
        rows = {row["Unique Key"]: row["Agency"] for row in csv.DictReader(handle)}
    got: Counter[str] = Counter()
    for result in parse_file(export, get_profile(str(DEMO / "nyc_demo.toml"))):
        if isinstance(result, Accepted):
            request = result.request
            key = request.service_request_id.split(":", 1)[1]
            want = "code_violations" if rows[key] in CODE_ENFORCEMENT else "311"
            assert request.dataset == want, (key, rows[key])
            got[request.dataset] += 1
    assert got["code_violations"] > 400 and got["311"] > 500
