"""Issue 11: data-quality anomalies are visible to the operator (import summary, `check`),
and excluded categories (test issues) are left out in one place for every source, counted
as `excluded` (not rejects, not published), shown by `check`. On the real NYC sample."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from connect311_contracts.request import RequestStatus, ServiceRequest
from connect311_ingestor.check import check_file
from connect311_ingestor.cli import app
from connect311_ingestor.cli.common import summary_table
from connect311_ingestor.exclusions import Exclusion
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.pipeline import IngestSummary
from connect311_ingestor.records import Accepted
from connect311_ingestor.settings import IngestorSettings
from connect311_ingestor.sources.files import import_file, parse_file
from connect311_ingestor.sources.open311 import Open311Poller
from connect311_ingestor.store import IngestorStore
from tests.support.ingestor_rejects import recording_ingestor

SAMPLE = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/city311/nyc/nyc311_2023-02-28_sample4999.csv"
)
needs_sample = pytest.mark.skipif(not SAMPLE.is_file(), reason="../shared/data is absent")
NOISE = "noise - RESIDENTIAL "  # any case, spaces around: still the category
WIDE = {"COLUMNS": "400", "NO_COLOR": "1"}


def recount() -> tuple[Counter[str], int]:
    """(anomalies per kind, accepted 'Noise - Residential' requests) by parsing alone."""
    anomalies: Counter[str] = Counter()
    noise = 0
    for result in parse_file(SAMPLE, get_profile("nyc")):
        if isinstance(result, Accepted):
            anomalies.update(result.request.anomalies)
            noise += (result.request.service_name or "").casefold() == "noise - residential"
    return anomalies, noise


def rendered(summary: IngestSummary) -> str:
    console = Console(width=200, record=True, no_color=True)
    console.print(summary_table("t", summary))
    return console.export_text()


@needs_sample
def test_check_shows_anomalies_per_kind_with_an_example(tmp_path: Path) -> None:
    anomalies, _ = recount()
    assert anomalies == {"closed_datetime:before_requested": 2}  # the real file's two

    result = CliRunner().invoke(app, ["check", str(SAMPLE), "--rows", "5000"], env=WIDE)

    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "closed_datetime:before_requested" in x)
    assert re.search(r"│ 2\s*│ nyc311_2023-02-28_sample4999\.csv:row \d+: nyc311:\d+", line), line


@needs_sample
def test_import_summary_prints_anomalies_and_exclusions_and_nothing_is_unaccounted(
    tmp_path: Path,
) -> None:
    anomalies, noise = recount()
    profile = get_profile("nyc").model_copy(update={"exclude_service_names": (NOISE,)})
    store = IngestorStore.from_url(f"sqlite:///{tmp_path}/i.db")
    ingestor, publisher = recording_ingestor(store)

    summary = asyncio.run(import_file(ingestor, SAMPLE, profile))

    assert noise > 300 and summary.excluded == noise
    assert summary.records == summary.accepted + summary.excluded + sum(summary.rejects.values())
    assert summary.anomalies == anomalies
    names = {(e.request.service_name or "").casefold() for e in publisher.events}
    assert "noise - residential" not in names, "an excluded category is never published"
    assert len(publisher.rejects) == sum(summary.rejects.values()), "nor a reject"
    assert store.count_requests("nyc311") == summary.accepted, "nor stored"
    metric = ingestor.metrics.registry.get_sample_value(
        "ingestor_records_excluded_total", {"source": "nyc311"}
    )
    assert metric == noise
    text = rendered(summary)
    assert re.search(r"closed_datetime:before_requested\s*│\s*2", text), text
    assert re.search(rf"excluded \(exclude_service_codes/names\)\s*│\s*{noise}", text), text


@needs_sample
def test_check_counts_what_a_profile_excludes(tmp_path: Path) -> None:
    _, noise = recount()
    profile = get_profile("nyc").model_copy(update={"exclude_service_names": (NOISE,)})
    report = check_file(SAMPLE, profile, rows=5000)
    assert report.excluded == noise
    assert report.records == report.accepted + report.excluded + sum(report.rejects.values())
    assert report.excluded_example is not None
    assert "Noise - Residential" in report.excluded_example.detail


def request(code: str | None, name: str | None) -> ServiceRequest:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    return ServiceRequest(
        service_request_id=f"sf:{code}-{name}",
        source="sf",
        source_request_id=f"{code}-{name}",
        status=RequestStatus.OPEN,
        raw_status="open",
        lat=37.7,
        long=-122.4,
        requested_datetime=at,
        service_code=code,
        service_name=name,
    )


class StubFetcher:
    """Answers the services list with nothing and the requests list with `records`."""

    def __init__(self, records: list[dict[str, object]]) -> None:
        self.records = records

    async def get(self, url: str, params: dict[str, str] | None = None) -> bytes:
        if "/services." in url or params is None or params.get("page", "1") != "1":
            return b"[]"
        return json.dumps(self.records).encode()


def georeport(rid: str, code: str | None, name: str | None) -> dict[str, object]:
    return {
        "service_request_id": rid,
        "status": "open",
        "service_code": code,
        "service_name": name,
        "requested_datetime": "2024-05-01T09:00:00Z",
        "lat": 37.7,
        "long": -122.4,
    }


def test_a_feed_setting_excludes_by_code_or_name_when_it_is_polled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "INGESTOR_OPEN311_FEEDS",
        '[{"source": "sf", "base_url": "https://x/v2", "exclude_service_codes": ["TEST"],'
        ' "exclude_service_names": ["Test Issue"]}]',
    )
    feed = IngestorSettings().open311_feeds[0]
    ingestor, publisher = recording_ingestor(IngestorStore.from_url(f"sqlite:///{tmp_path}/i.db"))
    records = [
        georeport("1", "TEST", "Pothole"),
        georeport("2", "PT", "  test issue "),
        georeport("3", "test", "Pothole"),  # codes match exactly
        georeport("4", None, None),
    ]
    poller = Open311Poller(feed, StubFetcher(records), ingestor)  # type: ignore[arg-type]
    since = datetime(2024, 5, 1, tzinfo=UTC)

    summary = asyncio.run(poller.backfill_window(since, since + timedelta(days=1)))

    assert (summary.records, summary.excluded, summary.accepted) == (4, 2, 2)
    assert sorted(e.request.source_request_id for e in publisher.events) == ["3", "4"]
    assert not publisher.rejects and not summary.rejects
    metric = ingestor.metrics.registry.get_sample_value(
        "ingestor_records_excluded_total", {"source": "sf"}
    )
    assert metric == 2
    other, outcomes = asyncio.run(ingestor.ingest([Accepted(request("TEST", "x"))], source="o"))
    assert other.excluded == 0 and not outcomes[0].excluded, "a setting is its own source's"


def test_an_empty_exclusion_excludes_nothing() -> None:
    nothing = Exclusion.of(["", "  "], [" "])
    assert not nothing
    assert not nothing.excludes(request("", ""))
