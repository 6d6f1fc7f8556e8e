"""The servers a map paint run times (bench/map_paint.py): the map API with its tile cache off
("cold") and on ("warm"), nginx in front of the warm one ("proxy"), and with `--baseline-js DIR`
the same again from a copy of this map API whose page scripts are DIR's (e.g. the previous
mapview.js), so the previous and the current page are timed in one run, against the same
database and the same server code.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from map_tiles import start_nginx, start_server

from connect311_local.broker import free_port
from connect311_map_api.settings import MapApiSettings

ROOT = Path(__file__).resolve().parents[1]
MAP_API_SRC = ROOT / "services" / "map-api" / "src"
PAGE_JS = Path("connect311_map_api") / "web" / "static" / "js"


def start_servers(
    tmp: Path, db_url: str, kinds: set[str], env: dict[str, str], suffix: str, started: list[Any]
) -> dict[str, str]:
    """The API processes and nginx that rows of these `kinds` need: {kind + suffix: URL}.
    Every process started is appended to `started` (the caller stops them)."""
    max_age = int(MapApiSettings.model_fields["tile_max_age_s"].default)
    urls: dict[str, str] = {}
    for kind, age in (("cold", 0), ("warm", max_age)):
        if kind in kinds or (kind == "warm" and "proxy" in kinds):
            port = free_port()
            started.append(start_server(db_url, port, age, env))
            urls[kind + suffix] = f"http://127.0.0.1:{port}/"
    if "proxy" in kinds:
        proxy_port = free_port()
        warm_port = int(urls["warm" + suffix].rsplit(":", 1)[1].strip("/"))
        proxy = start_nginx(tmp, warm_port, proxy_port)
        if proxy is None:
            print("nginx is not installed (scripts/install-system-packages.sh): no proxy")
        else:
            started.append(proxy)
            urls["proxy" + suffix] = f"http://127.0.0.1:{proxy_port}/"
    return urls


def baseline_tree(tmp: Path, js_dir: Path) -> Path:
    """A copy of this map API's source whose page scripts are replaced by `js_dir`'s."""
    dest = tmp / "baseline-src"
    shutil.copytree(MAP_API_SRC, dest, ignore=shutil.ignore_patterns("__pycache__"))
    scripts = sorted(js_dir.glob("*.js"))
    if not scripts:
        raise SystemExit(f"{js_dir} holds no .js file")
    for script in scripts:
        shutil.copy(script, dest / PAGE_JS / script.name)
    return dest


def baseline_env(src: Path) -> dict[str, str]:
    """Environment that makes a server process import the map API from `src` first."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": str(src) + (os.pathsep + path if path else "")}
