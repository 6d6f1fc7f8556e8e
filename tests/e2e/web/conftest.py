"""Browser-test fixtures: the map API served by uvicorn on a free port, headless Chromium."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import ConsoleMessage, Page

from connect311_contracts.events import RequestEvent
from connect311_local.broker import free_port
from connect311_map_api.consumers import apply_and_read
from connect311_map_api.core.state import feature
from tests.e2e.web.app_under_test import RecordingPublisher, build_app
from tests.e2e.web.tiles import TILE_PATH

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--log-level=3",
    # No outside host is reachable from a test page (and no background Google lookups).
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]


@dataclass
class WebServer:
    """The running app: its URL, the app, what it published, and its event loop."""

    url: str
    app: FastAPI
    publisher: RecordingPublisher
    loop: asyncio.AbstractEventLoop

    def apply(self, events: list[RequestEvent]) -> None:
        """Store request events and push the changed requests to open live streams.

        This is what the map API's state consumer does with events from Kafka.
        """
        ctx = self.app.state.ctx
        _, rows = apply_and_read(ctx.engine, events)
        for row in rows:
            self.loop.call_soon_threadsafe(ctx.broadcaster.publish, feature(row))


class _Server(uvicorn.Server):
    """uvicorn that records its loop, so tests can hand work to it thread-safely."""

    loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)


@contextmanager
def uvicorn_thread(
    app: FastAPI | Callable[[], FastAPI], port: int, *, factory: bool = False
) -> Iterator[asyncio.AbstractEventLoop]:
    """Serve `app` on 127.0.0.1:port from a background thread; yields the server's loop.

    With `factory`, `app` is called inside the server's loop (Kafka clients bind to it).
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
        factory=factory,
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name="web-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start; see the log above")
        time.sleep(0.02)
    try:
        assert server.loop is not None
        yield server.loop
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serving(folder: Path) -> Iterator[WebServer]:
    """The app with its seeded SQLite database in `folder`, on 127.0.0.1:<free port>."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = folder / "map.db"
    app, publisher = build_app(f"sqlite:///{db}", base_url=url, tile_url=url + TILE_PATH)
    with uvicorn_thread(app, port) as loop:
        yield WebServer(url=url, app=app, publisher=publisher, loop=loop)


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """The app most tests share (they only read requests; sign-ups are told apart)."""
    with serving(tmp_path_factory.mktemp("web")) as server:
        yield server


@pytest.fixture
def own_web_server(tmp_path: Path) -> Iterator[WebServer]:
    """A separate app for a test that changes requests (use absolute URLs with it)."""
    with serving(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def base_url(web_server: WebServer) -> str:
    """pytest-playwright's base URL: the app under test."""
    return web_server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's headless Chromium (Playwright's own download cannot work here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@dataclass
class PageProblems:
    """Console errors, CSP violations and uncaught exceptions seen by a page."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def problems(page: Page) -> PageProblems:
    """Collect what went wrong in the page (tests assert it stays empty)."""
    seen = PageProblems()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seen.errors.append(f"pageerror: {exc}"))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    return seen


POPUP_INSIDE_MAP = """() => {
  const p = document.querySelector('.leaflet-popup'), m = document.getElementById('map');
  if (!p || !m) return false;
  const a = p.getBoundingClientRect(), b = m.getBoundingClientRect();
  return a.top >= b.top && a.bottom <= b.bottom && a.left >= b.left && a.right <= b.right;
}"""
"""For page.wait_for_function: the open popup lies wholly on the map (none cut off)."""


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save what a person would see to test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path
