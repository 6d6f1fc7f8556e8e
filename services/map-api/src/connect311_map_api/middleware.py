"""ASGI middleware: body size limit, API latency metrics, nosniff, CORS for public reads."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connect311_map_api.metrics import Metrics


class BodyTooLarge(Exception):
    """The client sent more than the limit."""


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413 (by header, or while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body too large; the limit is {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LatencyMetrics:
    """Observe each HTTP request's duration by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], template, str(status[0])).observe(
                time.perf_counter() - start
            )


class NoSniff:
    """`X-Content-Type-Options: nosniff` on every response (JSON, XML, errors, pages)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_header)


PUBLIC_READ_PREFIXES = (
    "/api/requests",
    "/api/tiles/",
    "/api/stats",
    "/api/categories",
    "/api/agencies",
    "/api/datasets",
    "/open311/v2/",
    "/feeds/requests",  # the public Atom feeds (a view's, a request's); not the private one
)
"""Read-only open data any site may fetch from a browser; nothing else gets CORS headers."""


class PublicReadCors:
    """CORS (any origin, GET/HEAD, no credentials) on public read endpoints only.

    Sign-up, manage, admin and the live stream carry no CORS headers, so another site's
    page cannot drive them from its visitors' browsers (their JSON POSTs fail preflight).
    """

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = PUBLIC_READ_PREFIXES) -> None:
        self.app = app
        self.prefixes = prefixes
        self.cors = CORSMiddleware(
            app, allow_origins=["*"], allow_methods=["GET", "HEAD"], max_age=86_400
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith(self.prefixes):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
