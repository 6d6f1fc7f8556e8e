"""The servers a map paint run times (bench/map_paint.py): the map API with its tile cache off
("cold") and on ("warm"), nginx in front of the warm one ("proxy"), and with `--baseline-js DIR`
the same again from a copy of this map API whose page scripts are DIR's (e.g. the previous
mapview.js), so the previous and the current page are timed in one run, against the same
database and the same server code; and a local base-map tile server (a blank PNG), so only the
map's own data is timed.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from map_tiles import start_nginx, start_server

from connect311_local.broker import free_port
from connect311_map_api.settings import MapApiSettings
from tests.e2e.web.tiles import tile_png

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


class _BaseMapTile(BaseHTTPRequestHandler):
    """The same blank base-map tile for every path, cached a day like a real tile server's."""

    def do_GET(self) -> None:  # http.server's name
        body = tile_png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=86400")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the base's names
        return


@contextmanager
def base_map_server() -> Iterator[str]:
    """A local base-map tile server in a thread; yields its `{z}/{x}/{y}` URL template."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _BaseMapTile)
    thread = threading.Thread(target=server.serve_forever, name="base-map", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tiles/{{z}}/{{x}}/{{y}}.png"
    finally:
        server.shutdown()
        server.server_close()
