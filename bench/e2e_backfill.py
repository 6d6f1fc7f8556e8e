"""bench/e2e.py's backfill stage: N historic requests imported with --backfill, timed until
the matcher has read every one (no email expected: history is never alerted on)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from e2e_stack import QUIET, events_read

from connect311_local.stack import LocalPorts

Record = Callable[[int, datetime, float, float, str], dict[str, Any]]


def backfill(
    ports: LocalPorts, state: Path, rows: int, env: dict[str, str], record: Record
) -> dict[str, float]:
    """Import `rows` historic requests with --backfill; time ingest, then ingest + match."""
    path = state / "backfill.csv"
    then = datetime(2020, 1, 1, tzinfo=UTC)
    fields = list(record(0, then, 27.7731, -82.64, "Bench Works"))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for n in range(rows):
            lat = 27.7731 + (n % 1000) * 1e-5
            row = record(10_000_000 + n, then + timedelta(seconds=n), lat, -82.64, "Bench Works")
            row["service_request_id"] = f"hist-{n}"
            writer.writerow(row)
    before = events_read(ports)
    start = time.monotonic()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "connect311-ingestor"),
            *QUIET,
            "import",
            str(path),
            "--profile",
            "open311",
            "--backfill",
        ],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    ingested = time.monotonic() - start
    while events_read(ports) - before < rows:
        time.sleep(0.5)
    return {"rows": rows, "ingest_s": ingested, "ingest_and_match_s": time.monotonic() - start}
