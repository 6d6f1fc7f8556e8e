"""Run one bench's quick mode (what CI runs) and hand back what it printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_quick(bench: str, timeout: float = 300) -> str:
    """stdout of `bench/<bench> --quick` from the project root; fails the test if it failed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / bench), "--quick"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    print(done.stdout)  # the figures, in the CI log
    return done.stdout
