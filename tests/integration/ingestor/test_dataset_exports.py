"""The code-violations and crime exports in ../shared/data/datasets imported with the
`import` command and the profiles in deploy/profiles, onto the real broker, as an operator
runs it: the summary accounts for every row, a second run publishes nothing, and no
property owner's name reaches a topic or the command's output."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from connect311_bus.kafka import decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_contracts.rejects import RecordRejected
from connect311_contracts.settings import KafkaSettings
from connect311_contracts.topics import REQUEST_EVENTS, REQUEST_REJECTS

Reader = Callable[[str, str], Awaitable[list[ConsumerRecord[bytes, bytes]]]]
ROOT = Path(__file__).resolve().parents[3]
DATASETS = ROOT.parent / "shared" / "data" / "datasets"
PROFILES = ROOT / "deploy" / "profiles"
pytestmark = pytest.mark.skipif(not DATASETS.is_dir(), reason="../shared/data is absent")

ROW = re.compile(r"^│\s*(.+?)\s*│\s*(\d+)(?: \((\d+) new\))?\s*│$", re.MULTILINE)


def _import(
    path: Path, profile: str, source: str, env: dict[str, str], output: list[str]
) -> dict[str, int]:
    """Run `connect311-ingestor import`; its summary table as {line: count}. What the
    command printed (summary and logs) is added to `output`."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "connect311_ingestor", "import", str(path)),
            *("--profile", str(PROFILES / profile), "--source", source),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output += [done.stdout, done.stderr]
    return {name: int(count) for name, count, _ in ROW.findall(done.stdout)}


async def test_both_exports_import_once_with_every_row_accounted_for(
    tmp_path: Path, kafka_settings: KafkaSettings, source_name: str, topic_reader: Reader
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "INGESTOR_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "COLUMNS": "200",
    }
    code, crime = f"{source_name}-code", f"{source_name}-crime"
    violations = DATASETS / "code_violations" / "syracuse_DOCECases.csv"
    incidents = DATASETS / "crime" / "SacramentocrimeJanuary2006.csv"
    with violations.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with incidents.open(newline="", encoding="utf-8") as handle:
        crime_rows = sum(1 for _ in csv.DictReader(handle))

    output: list[str] = []
    first = _import(violations, "syracuse_code_violations.toml", code, env, output)
    cases = len({r["Complaint.."] for r in rows})
    assert first["records read"] == cases
    assert first["from export rows (several rows per record)"] == len(rows)
    rejected = first["missing_coordinates"] + first["outside_bounds"]
    assert first["accepted"] + rejected == cases == first["event request.opened"] + rejected
    assert first["rejected"] == rejected

    crime_first = _import(incidents, "sacramento_crime.toml", crime, env, output)
    assert crime_first["records read"] == crime_first["accepted"] == crime_rows
    assert crime_first["event request.opened"] == crime_rows

    # A second run publishes nothing (the crime file's re-import is checked, faster, in
    # tests/unit/ingestor_service/test_datasets_real_files.py).
    again = _import(violations, "syracuse_code_violations.toml", code, env, output)
    assert not any(name.startswith("event ") for name in again), "no event the 2nd time"
    assert again["unchanged (no event)"] == first["accepted"]
    assert again["rejected"] == rejected, "rejects are counted again, published once"

    events = [
        decode(REQUEST_EVENT_ADAPTER, r.value)
        for prefix in (f"{code}:", f"{crime}:")
        for r in await topic_reader(REQUEST_EVENTS.name, prefix)
    ]
    by_dataset = Counter(e.request.dataset for e in events)
    assert by_dataset == {"code_violations": first["accepted"], "crime": crime_rows}
    rejects = [
        RecordRejected.model_validate_json(r.value)
        for r in await topic_reader(REQUEST_REJECTS.name, code)
    ]
    rejects = [r for r in rejects if r.source == code]
    assert Counter(r.reason.value for r in rejects) == {
        "missing_coordinates": first["missing_coordinates"],
        "outside_bounds": first["outside_bounds"],
    }

    # Owners' names: on no topic, in no output of the command.
    owners = {r["Owner.s."].strip() for r in rows if len(r["Owner.s."].strip()) >= 6}
    text = "\n".join([*(e.model_dump_json() for e in events), *(r.raw for r in rejects), *output])
    words = set(re.findall(r"\w+", text))
    # Only names whose every word occurs anywhere are searched for in full (fast).
    candidates = [o for o in owners if set(re.findall(r"\w+", o)) <= words]
    assert [o for o in candidates if o in text] == []
