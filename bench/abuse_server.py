"""bench/abuse.py's server: the map API as production runs it (`connect311-map-api run`), from
this checkout or another one (--src), on a loopback port, and the page maxima it advertises."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from abuse_attacks import FALLBACK_MAX_LIMIT, FALLBACK_MAX_PAGE_SIZE, HOST, Server


def src_paths(src: Path | None) -> list[str]:
    """The map API and contracts source directories of another checkout."""
    if src is None:
        return []
    paths = [src / "services" / "map-api" / "src", src / "shared" / "src"]
    missing = [str(p) for p in paths if not p.is_dir()]
    if missing:
        raise SystemExit(f"--src {src}: no {', '.join(missing)}; point it at a Connect311 checkout")
    return [str(p) for p in paths]


def server_env(paths: list[str], db_url: str, port: int, bootstrap: str | None) -> dict[str, str]:
    """The environment of the map API process: production defaults, a loopback base URL."""
    env = {
        **os.environ,
        "MAP_API_DATABASE_URL": db_url,
        "MAP_API_CONSUME": "true" if bootstrap else "false",
        "CONNECT311_SECRET_KEY": "abuse-bench-secret-not-for-production",
        "CONNECT311_PUBLIC_BASE_URL": f"http://{HOST}:{port}",
        "LOG_FORMAT": "text",
    }
    if bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])
    return env


def code_in_use(env: dict[str, str]) -> str:
    """Where the server process will import the map API from (checked, not assumed)."""
    probe = "import connect311_map_api as m, pathlib; print(pathlib.Path(m.__file__).parent)"
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`connect311-map-api run` (info logs, access lines, redaction) on the loopback port."""
    command = [
        sys.executable, "-m", "connect311_map_api", "run", "--http-host", HOST,
        "--http-port", str(port), "--log-level", "info",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    tail = log.read_text(errors="replace")[-2000:]
    raise SystemExit(f"the map API did not start; its log ends:\n{tail}")


def page_maxima(port: int) -> Server:
    """The largest `limit` and `page_size` the server's OpenAPI document allows."""

    def maximum(spec: dict[str, Any], path: str, name: str, fallback: int) -> int:
        for param in spec.get("paths", {}).get(path, {}).get("get", {}).get("parameters", []):
            if param.get("name") == name:
                return int(param.get("schema", {}).get("maximum", fallback))
        return fallback

    try:
        spec = httpx.get(f"http://{HOST}:{port}/openapi.json", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        spec = {}
    return Server(
        port,
        maximum(spec, "/api/requests", "limit", FALLBACK_MAX_LIMIT),
        maximum(spec, "/open311/v2/requests.xml", "page_size", FALLBACK_MAX_PAGE_SIZE),
    )
