"""Open311 GeoReport v2 requests documents (XML, and JSON with the open311 profile) and saved
SeeClickFix issues pages import from a file, through the same adapter the poller uses, onto
the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from defusedxml import ElementTree

from connect311_bus.kafka import decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS
from connect311_ingestor.app import Runtime
from connect311_ingestor.parsers.profiles import get_profile
from connect311_ingestor.sources.files import import_file, open311_format, seeclickfix_page

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
OPEN311 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "open311"
pytestmark = pytest.mark.skipif(not OPEN311.is_dir(), reason="../shared/data/open311 is absent")


def xml_request_ids(path: Path) -> list[str]:
    root = ElementTree.fromstring(path.read_bytes())
    return [
        (request.findtext("service_request_id") or "").strip()
        for request in root
        if request.tag == "request"
    ]


def test_the_file_kind_follows_the_extension_and_the_profile() -> None:
    nyc, open311 = get_profile("nyc"), get_profile("open311")
    assert open311_format(Path("a.xml"), nyc) == "xml"
    assert open311_format(Path("a.json"), open311) == "json"
    renamed = open311.model_copy(update={"source": "sf311"})
    assert open311_format(Path("a.json"), renamed) == "json"
    assert open311_format(Path("a.json"), nyc) is None
    assert open311_format(Path("a.csv"), open311) is None


async def test_an_open311_xml_export_imports_every_request_as_an_event(
    runtime: Runtime, source_name: str, topic_reader: Reader
) -> None:
    path = OPEN311 / "fixmystreet" / "requests_3.xml"
    ids = xml_request_ids(path)
    profile = get_profile("open311").model_copy(update={"source": source_name})
    summary = await import_file(runtime.ingestor, path, profile)
    assert summary.records == len(ids) == summary.accepted
    records = await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    events = [decode(REQUEST_EVENT_ADAPTER, r.value) for r in records]
    assert sorted(e.request.service_request_id for e in events) == sorted(
        f"{source_name}:{i}" for i in ids
    )
    assert all(e.backfill for e in events)  # a source's first import is history
    again = await import_file(runtime.ingestor, path, profile)
    assert again.unchanged == len(ids) and not again.events


async def test_a_saved_seeclickfix_page_imports_every_issue_as_an_event(
    runtime: Runtime, source_name: str, topic_reader: Reader
) -> None:
    path = OPEN311.parent / "seeclickfix" / "koop_dc_issues_list_page1.json"
    ids = [str(issue["id"]) for issue in json.loads(path.read_bytes())["issues"]]
    profile = get_profile("seeclickfix").model_copy(update={"source": source_name})
    assert seeclickfix_page(path, profile) and not seeclickfix_page(path, get_profile("nyc"))
    summary = await import_file(runtime.ingestor, path, profile)
    assert summary.records == len(ids) == summary.accepted == 20
    records = await topic_reader(REQUEST_EVENTS.name, f"{source_name}:")
    events = [decode(REQUEST_EVENT_ADAPTER, r.value) for r in records]
    assert sorted(e.request.service_request_id for e in events) == sorted(
        f"{source_name}:{i}" for i in ids
    )
    again = await import_file(runtime.ingestor, path, profile)
    assert again.unchanged == len(ids) and not again.events


def test_the_cli_imports_xml_and_open311_json_files(
    tmp_path: Path, kafka_settings: KafkaSettings, source_name: str
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "INGESTOR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "COLUMNS": "200",
    }
    options = ["--profile", "open311", "--source", source_name]
    for name in ("cfa-open311-ruby/service_requests.xml", "boston/request_single.json"):
        done = subprocess.run(
            [sys.executable, "-m", "connect311_ingestor", "import", str(OPEN311 / name), *options],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert f"({source_name})" in done.stdout and "request.opened" in done.stdout
