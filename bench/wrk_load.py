"""A load generator light enough not to be the bottleneck: `wrk` (Debian package `wrk`).

The Python generator (httpx, asyncio) of bench/map_tiles.py spends more CPU per answer than
nginx does, so on 2 shared cores it measured itself: 1 client 500 answers/s through the proxy,
64 clients 73/s. wrk is C with one event loop per thread; it asks the very same URLs (a list
made by the bench, walked in order from a different place by each thread), closed-loop like
the Python clients (each connection asks again when answered), and reports the same figures.

Optional: `apt-get install wrk` (bench machines only; the tests never need it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["available", "level"]

# wrk runs one Lua state per thread: `setup` (main state) gives each thread its own start in
# the list, `done` prints the figures as one JSON line (latencies in microseconds).
SCRIPT = """
local paths = %(paths)s
local threads = 0
function setup(thread)
  thread:set("first", threads * 7919)
  threads = threads + 1
end
local i = 0
function init(args)
  i = first or 0
end
function request()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Accept-Encoding"] = "gzip"})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %%d, "us": %%d, "errors": %%d, "p50": %%d, "p95": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def available() -> str | None:
    """The wrk binary, or None when it is not installed."""
    return shutil.which("wrk")


def _lua_list(paths: list[str]) -> str:
    for path in paths:
        if '"' in path or "\\" in path or "\n" in path:
            raise ValueError(f"a path the Lua list cannot hold as is: {path[:60]!r}")
    return "{" + ",".join(f'"{p}"' for p in paths) + "}"


def level(binary: str, base: str, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` keep-alive connections asking `paths` for `seconds`: the figures of that run
    (the keys of bench/map_tiles.py's `level`; errors = failed connections, timeouts and
    answers other than 2xx/3xx)."""
    threads = max(1, min(2, clients))  # two cores: more threads only take turns
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(SCRIPT % {"paths": _lua_list(paths)})
        command = [
            binary, "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s",
            "--timeout", "30s", "-s", str(script), base,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:300]}")
    figures = json.loads(line.removeprefix("WRK "))
    return {
        "clients": clients,
        "answers": figures["requests"],
        "rps": figures["requests"] / (figures["us"] / 1e6),
        "p50": figures["p50"] / 1000,
        "p95": figures["p95"] / 1000,
        "p99": figures["p99"] / 1000,
        "errors": figures["errors"],
    }
