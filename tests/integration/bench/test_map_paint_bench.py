"""bench/map_paint.py --quick (issue 15): real Chromium times the map, figures printed only.

Asserted: the run completes and every timed step (first view, pan, zoom in, zoom out) saw the
map's `c311:painted` mark, the hook in mapview.js the benchmark depends on. One row (empty
browser cache), one repetition: ~20 s, most of it starting the API and the browser. No
timings are asserted: the figures go to the CI log.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench" / "map_paint.py"
ROWS = ("cold",)


def test_quick_run_times_every_step() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--reps", "1", "--rows", ",".join(ROWS)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)  # the figures, in the CI log
    for key in ROWS:
        row = next(line for line in done.stdout.splitlines() if line.split()[:1] == [key])
        assert row.endswith("n=1 failed=0"), row
        first_view_ms = float(re.split(r"[\s/]+", row)[1])
        assert first_view_ms > 0, row
    assert "first view p95" in done.stdout
