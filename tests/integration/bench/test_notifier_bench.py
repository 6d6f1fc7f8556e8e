"""bench/notifier.py --quick (issue 15): what CI runs, so each change shows its figures.

Numbers are printed only, never asserted; what is asserted is that every run completed, that
the sink (which keeps every message) saw no duplicate and each recipient's emails in order,
and that the webhook receiver saw no delivery twice.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench" / "notifier.py"


def test_quick_run_prints_every_figure_with_no_duplicate_and_in_order() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)  # the figures, in the CI log
    emails, hooks = done.stdout.split("7. Webhooks")
    rows = [line for line in emails.splitlines() if line.startswith("   burst, ")]
    assert len(rows) == 3 and any("one recipient's stream" in row for row in rows)
    hook_rows = [line for line in hooks.splitlines() if line.startswith("   burst, ")]
    assert len(hook_rows) == 2 and all(row.split()[-1] == "0" for row in hook_rows), hook_rows
    for row in rows:  # ... emails/s, p50, p99, order, duplicates
        *_, order, dups = row.split()
        assert (order, dups) == ("yes", "0"), row
    fanout = emails.split("6. Fan-out")[1].strip().splitlines()[-1].split()
    assert fanout[:3] == ["200", "1", "4"] and fanout[5] == "0", fanout  # n, procs, conns, dups
