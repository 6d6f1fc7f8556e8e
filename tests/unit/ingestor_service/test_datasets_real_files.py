"""The new datasets in ../shared/data/datasets, imported the way a city operator would: a
profile written in TOML, no code (deploy/profiles). Every row is accounted for (accepted +
rejected per reason = rows in the file, against an independent recount with the csv module
of the rules docs/feeds.md states), a second import publishes nothing, the property
owners' names in the code-violations export reach no topic, table or log, and no crime
scene's exact house number or point is stored.

Both files have CR-only line endings, which the csv module reads with newline="".
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
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

ROOT = Path(__file__).resolve().parents[3]
# The profiles an operator uses (deploy/profiles, docs/feeds.md "Datasets beyond 311").
SYRACUSE_PROFILE = ROOT / "deploy" / "profiles" / "syracuse_code_violations.toml"
SACRAMENTO_PROFILE = ROOT / "deploy" / "profiles" / "sacramento_crime.toml"
FMT = "%m/%d/%y %H:%M"
CLOSED_CASE = {"Completed", "Seasonal Completion"}  # the profile's closed complaint words


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Haystack:
    """Texts (events, tables, logs) searched for many needles as sequences of whole words.

    One pass over the texts builds their words and word pairs; only a needle whose every
    word pair is there is then searched for in full (a substring search per needle over
    megabytes of events and tables would take seconds).
    """

    def __init__(self, *texts: str) -> None:
        words = [re.findall(r"\w+", text.lower()) for text in texts]
        self.singles = {w for ws in words for w in ws}
        self.pairs = {pair for ws in words for pair in itertools.pairwise(ws)}
        self.joined = [f" {' '.join(ws)} " for ws in words]

    def found(self, needles: set[str]) -> list[str]:
        """The needles that occur in a text, as whole words."""
        hits = []
        for needle in needles:
            tokens = re.findall(r"\w+", needle.lower())
            if not tokens or not set(tokens) <= self.singles:
                continue
            if not all(pair in self.pairs for pair in itertools.pairwise(tokens)):
                continue
            phrase = f" {' '.join(tokens)} "
            if any(phrase in text for text in self.joined):
                hits.append(needle)
        return sorted(hits)


def _inside(point: tuple[float, float], bounds: object) -> bool:
    (south, west), (north, east) = bounds  # type: ignore[misc]
    return bool(south <= point[0] <= north and west <= point[1] <= east)


def _expected_cases(
    rows: list[dict[str, str]], bounds: object
) -> tuple[Counter[str], Counter[str], Counter[str], Counter[str]]:
    """Recounted from the raw rows, as the docs state the rules: (cases per outcome, rows
    per outcome, anomalies, published statuses)."""
    cases: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        cases.setdefault(row["Complaint.."], []).append(row)
    outcome: Counter[str] = Counter()
    row_count: Counter[str] = Counter()
    anomalies: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for case in cases.values():
        points = [(float(r["lat"]), float(r["lon"])) for r in case if _number(r["lat"])]
        if not points:
            key = "missing_coordinates"  # every row NA
        elif not _inside(points[0], bounds):
            key = "outside_bounds"
        else:
            key = "accepted"
        outcome[key] += 1
        row_count[key] += len(case)
        if key != "accepted":
            continue
        first = case[0]
        closed = first["Complaint.Status"] in CLOSED_CASE
        still_open = closed and any(r["Violation.Status"] == "Open" for r in case)
        statuses["closed" if closed and not still_open else "not closed"] += 1
        if still_open:
            anomalies["status:row_still_open"] += 1
        elif closed and datetime.strptime(first["Complaint.Close.Date"], FMT) < datetime.strptime(
            first["Complaint.Date"], FMT
        ):
            anomalies["closed_datetime:before_requested"] += 1
        if all(r["Comply.By.Date"].startswith("1/1/1900 ") for r in case):
            anomalies["expected_datetime:placeholder"] += 1
    return outcome, row_count, anomalies, statuses


def test_code_violations_every_row_accounted_for() -> None:
    rows = _rows(SYRACUSE)
    profile = get_profile(SYRACUSE_PROFILE)
    report = check_file(SYRACUSE, profile, rows=len(rows), samples=0)
    outcome, row_count, anomalies, _ = _expected_cases(rows, profile.bounds)

    assert report.rows == len(rows) == 10_000
    assert report.records == len({r["Complaint.."] for r in rows}) == 4_279
    assert report.accepted == outcome["accepted"]
    assert dict(report.rejects) == {k: n for k, n in outcome.items() if k != "accepted"}
    assert dict(report.reject_rows) == {k: n for k, n in row_count.items() if k != "accepted"}
    assert sum(row_count.values()) == len(rows), "accepted + rejected rows = the file"
    assert report.anomalies == anomalies
    # SOURCES.md: 24 NA rows, ~955 rows geocoded in other states.
    assert sum(1 for r in rows if r["lat"] == "NA") == 24
    assert 900 < row_count["outside_bounds"] < 1000


async def test_code_violations_import_once_and_owners_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rows = _rows(SYRACUSE)
    owners = {r["Owner.s."].strip() for r in rows if len(r["Owner.s."].strip()) >= 6}
    assert len(owners) > 1000
    profile = get_profile(SYRACUSE_PROFILE)
    outcome, _, anomalies, statuses = _expected_cases(rows, profile.bounds)

    store = IngestorStore.from_url(f"sqlite:///{tmp_path / 'ingestor.db'}")
    store.create_schema()
    ingestor, publisher = recording_ingestor(store)
    first = await import_file(ingestor, SYRACUSE, profile)
    second = await import_file(ingestor, SYRACUSE, profile)

    assert (first.rows, first.records, first.accepted) == (10_000, 4_279, outcome["accepted"])
    assert first.events == Counter({"request.opened": outcome["accepted"]})
    assert first.anomalies == anomalies
    assert len(publisher.rejects) == sum(first.rejects.values())
    assert second.events == Counter() and second.unchanged == second.accepted
    assert second.new_rejects == 0
    requests = [e.request for e in publisher.events]
    assert {r.dataset for r in requests} == {"code_violations"}
    published = Counter("closed" if r.status.value == "closed" else "not closed" for r in requests)
    assert published == statuses
    assert all(r.description and r.description.startswith("Violations (") for r in requests)

    everywhere = Haystack(publisher.wire(), dump_tables(store), caplog.text)
    addresses = {r["Address"] for r in rows}
    assert len(everywhere.found(addresses)) > 2000, "the search finds what is there"
    assert everywhere.found(owners) == []
    # The Address column holds some names too, in brackets after the address.
    notes = {n for a in addresses for n in re.findall(r"\(([^)]*)\)", a)}
    named = {n for n in notes if not n.startswith("Unit ")}
    assert len(named) == 4 and sum("(" in a for a in addresses) == 49
    assert everywhere.found(named) == []
    assert not any("(" in (r.address or "") for r in requests)
    rejected = "\n".join(r.raw for r in publisher.rejects)
    assert '"Address": "' in rejected, "a reject shows the operator the address"


def test_crime_every_row_accounted_for() -> None:
    rows = _rows(SACRAMENTO)
    profile = get_profile(SACRAMENTO_PROFILE)
    report = check_file(SACRAMENTO, profile, rows=len(rows), samples=0)

    unusable = sum(1 for r in rows if not (_number(r["latitude"]) and _number(r["longitude"])))
    outside = sum(
        1
        for r in rows
        if _number(r["latitude"])
        and _number(r["longitude"])
        and not _inside((float(r["latitude"]), float(r["longitude"])), profile.bounds)
    )
    expected = {"invalid_coordinates": unusable, "outside_bounds": outside}
    assert report.records == report.rows == len(rows) == 7_584
    assert dict(report.rejects) == {k: n for k, n in expected.items() if n}
    assert report.accepted == len(rows) - unusable - outside
    assert report.anomalies == Counter()


async def test_crime_import_once_with_stable_ids_and_no_exact_place(tmp_path: Path) -> None:
    rows = _rows(SACRAMENTO)
    profile = get_profile(SACRAMENTO_PROFILE)
    store = IngestorStore.from_url(f"sqlite:///{tmp_path / 'ingestor.db'}")
    store.create_schema()
    ingestor, publisher = recording_ingestor(store)
    first = await import_file(ingestor, SACRAMENTO, profile)
    second = await import_file(ingestor, SACRAMENTO, profile)

    assert first.events == Counter({"request.opened": first.accepted})
    assert second.events == Counter() and second.unchanged == second.accepted == first.accepted
    requests = [e.request for e in publisher.events]
    # Every row is its own incident: identical rows (38 in the file) are numbered, not merged.
    assert len({r.service_request_id for r in requests}) == len(requests) == len(rows)
    duplicates = sum(n - 1 for n in Counter(tuple(r.values()) for r in rows).values())
    assert sum("-" in r.source_request_id for r in requests) >= duplicates == 38
    for r in requests:
        assert r.dataset == "crime" and r.status.value == "closed" and r.raw_status == ""
        assert r.closed_datetime == r.requested_datetime
    # No exact house number and no exact point is stored or published.
    wire = publisher.wire()
    stored = Haystack(wire, dump_tables(store))
    houses = {r["address"] for r in rows if re.fullmatch(r"\d+[A-Z]?", r["address"].split()[0])}
    points = {r["latitude"] for r in rows if len(r["latitude"].partition(".")[2]) > 4}
    assert len(houses) > 3000 and len(points) > 3000
    assert stored.found(houses) == []
    assert stored.found(points) == []
    intersections = {r["address"] for r in rows if " / " in r["address"]}
    assert len(stored.found(intersections)) == len(intersections), "kept as they are"
    assert "3100 block of OCCIDENTAL DR" in wire
