"""A short `connect311 up`: a quiet console that ends with the banner, then one-line summaries;
every service's output in its own log file; the demo going on to a second lap with fresh ids."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connect311_local.broker import free_port
from connect311_local.demo_laps import ID_STRIDE

ROOT = Path(__file__).resolve().parents[3]
CONNECT311 = Path(sys.executable).parent / "connect311"
SUMMARY = re.compile(
    r"^\d\d:\d\d:\d\d  events (?P<events>[\d,]+) · matches [\d,]+ · emails sent [\d,]+ · "
    r"errors \d+"
)
SPEED = 6000  # the demo day's 12.2 hours of openings in 7.3 s: lap 2 starts within the test
TIMEOUT_S = 120


class Output:
    """The command's console lines, read by a thread; waits are on lines, not on sleeps."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, deadline: float) -> re.Match[str]:
        """The first line from now on that matches, or fail with everything seen."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match
        pytest.fail(f"no line matching {pattern!r}; the console said:\n" + "\n".join(self.lines))


@pytest.fixture
def local_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Output, Path]]:
    names = ("broker", "map_api", "ingestor", "matcher", "notifier", "smtp", "inbox")
    env = {
        **os.environ,
        **{f"CONNECT311_LOCAL_{n.upper()}_PORT": str(free_port()) for n in names},
        "COLUMNS": "200",
    }
    process = subprocess.Popen(
        [
            str(CONNECT311),
            "up",
            "--state-dir",
            str(tmp_path),
            "--speed",
            str(SPEED),
            "--summary-every",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, Output(process), tmp_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_quiet_console_log_files_and_a_demo_that_keeps_flowing(
    local_run: tuple[subprocess.Popen[str], Output, Path],
) -> None:
    process, output, state = local_run
    deadline = time.monotonic() + TIMEOUT_S
    output.wait_for(r"Connect311 is running", deadline)
    logs = output.wait_for(r"logs\s+(\S+)/<service>\.log", deadline).group(1)
    assert Path(logs) == state / "log"
    output.wait_for(r"stop\s+Ctrl-C", deadline)
    banner_end = len(output.lines) + 1  # the closing rule
    # Summaries until one shows the demo's events flowing and its second lap has started.
    # Lap 1 carries the shipped numbers (56,906,522 to 56,975,887); lap 2 the same + 100,000.
    assert ID_STRIDE == 100_000
    lap_two = re.compile(r"request nyc311:570\d{5}\b")
    demo_log = state / "log" / "demo.log"
    while True:
        match = output.wait_for(r"events ([\d,]+)", deadline)
        if int(match.group(1).replace(",", "")) > 0 and lap_two.search(_read(demo_log)):
            break
    process.send_signal(signal.SIGTERM)
    output.wait_for(r"stopped cleanly", deadline)
    assert process.wait(timeout=30) == 0

    # Quiet: after the banner only summary lines, no service's log line.
    after = output.lines[banner_end:]
    summaries = [line for line in after if SUMMARY.match(line)]
    assert summaries, after
    assert set(after) - set(summaries) == {"stopping…", "stopped cleanly"}, after
    assert not [line for line in output.lines if " INFO " in line or " WARNING " in line]

    # Every process's output is in its own file.
    for service in ("map-api", "matcher", "notifier", "ingestor", "demo", "broker"):
        assert (state / "log" / f"{service}.log").stat().st_size > 0, service
    assert "published request.opened" in _read(demo_log)
    # The databases are where each service's own `status` command looks (see stack.STATE_DIR).
    assert {p.name for p in state.glob("*.db")} == {"map-api.db", "notifier.db", "ingestor.db"}


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
