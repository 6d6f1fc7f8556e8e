"""The matcher's small HTTP server: /healthz (ready after catch-up), /livez and /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connect311_matcher.service import Matcher


def make_app(matcher: Matcher) -> web.Application:
    """An aiohttp app reporting on one matcher."""

    async def healthz(_: web.Request) -> web.Response:
        if matcher.ready.is_set():
            return web.json_response({"status": "ready", "subscriptions": len(matcher.index)})
        return web.json_response({"status": "catching up on subscriptions"}, status=503)

    async def livez(_: web.Request) -> web.Response:
        # Alive while catching up too: a large catch-up must not look like a hung process.
        return web.json_response({"status": "alive"})

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(matcher.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/metrics", metrics)
    return app


async def start_http(matcher: Matcher, host: str, port: int) -> web.AppRunner:
    """Serve the app; returns the runner (call `cleanup()` to stop) with the bound port."""
    runner = web.AppRunner(make_app(matcher), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port the runner listens on (useful when asked for port 0)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the HTTP server is not listening")
