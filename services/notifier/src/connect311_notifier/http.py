"""HTTP endpoints: /healthz and /metrics (aiohttp)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connect311_notifier.ledger import Ledger
from connect311_notifier.metrics import Metrics


def make_app(ledger: Ledger, metrics: Metrics, running: Callable[[], bool]) -> web.Application:
    """The notifier's small web app."""

    async def healthz(_request: web.Request) -> web.Response:
        try:
            queue = await asyncio.to_thread(ledger.digest_queue_size)
        except Exception as exc:  # the database is what health depends on
            return web.json_response({"status": "error", "database": str(exc)}, status=503)
        ok = running()
        body = {"status": "ok" if ok else "stopping", "digest_queue": queue}
        return web.json_response(body, status=200 if ok else 503)

    async def metrics_view(_request: web.Request) -> web.Response:
        metrics.digest_queue.set(await asyncio.to_thread(ledger.digest_queue_size))
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    return app
