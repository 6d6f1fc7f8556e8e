"""The README's run command: `connect311 up` brings the demo to life and Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from connect311_local.broker import port_answers
from connect311_local.stack import LocalPorts

ROOT = Path(__file__).resolve().parents[3]


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _alerts(inbox: str) -> list[dict[str, object]]:
    messages = httpx.get(f"{inbox}/api/messages", timeout=5).json()
    return [m for m in messages if "confirm" not in str(m["subject"]).lower()]


def test_up_shows_requests_on_the_map_sends_alerts_and_stops_cleanly(tmp_path: Path) -> None:
    ports = LocalPorts.free()
    env = {
        **os.environ,
        **{
            f"CONNECT311_LOCAL_{name.upper()}": str(port)
            for name, port in ports.model_dump().items()
        },
    }
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "connect311"),
            "up",
            "--speed",
            "1200",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    map_api = f"http://127.0.0.1:{ports.map_api_port}"
    inbox = f"http://127.0.0.1:{ports.inbox_port}"
    try:
        _wait(lambda: port_answers(ports.map_api_port), 90, "the map API")
        _wait(
            lambda: httpx.get(f"{map_api}/api/requests?limit=5", timeout=5).json()["features"],
            90,
            "requests on the map",
        )
        assert "leaflet" in httpx.get(map_api, timeout=5).text.lower()
        _wait(lambda: _alerts(inbox), 90, "an alert email in the local inbox")
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
        log.close()
    output = (tmp_path / "up.log").read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "stopped cleanly" in output
    assert not any(port_answers(p) for p in ports.model_dump().values())
