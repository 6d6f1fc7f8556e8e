"""bench/e2e.py --quick (issue 15): the whole stack, one short stage, figures printed only.

Asserted: the run completes, every request sent was emailed once, and the services were
started with the log level they actually read (not a LOG_LEVEL variable nobody reads), the
ingestor's included.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench" / "e2e.py"


def test_services_get_the_level_option_they_read() -> None:
    sys.path.insert(0, str(BENCH.parent))  # the bench imports its neighbour machine_info
    spec = importlib.util.spec_from_file_location("e2e_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from connect311_local.stack import LocalPorts, service_specs

    specs = [module.quiet(s) for s in service_specs(LocalPorts.free(), ROOT / "var")]
    levelled = {s.name for s in specs if s.argv[-2:] == ("--log-level", "warning")}
    assert levelled == {"map-api", "matcher", "notifier"}
    # The ingestor reads it before its command (one option for all of them).
    [ingestor] = [s for s in specs if s.name == "ingestor"]
    assert ingestor.argv[1:] == ("--log-level", "warning", "run")
    assert all("LOG_LEVEL" not in s.env for s in specs)


def test_quick_run_emails_every_request_once() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)  # the figures, in the CI log
    row = next(line for line in done.stdout.splitlines() if line.split()[:1] == ["50"])
    emailed, sent = row.split()[2].split("/")
    assert emailed == sent and int(sent) > 0, row
    assert "duplicates: 0;" in done.stdout
