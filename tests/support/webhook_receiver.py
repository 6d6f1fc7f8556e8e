"""A real webhook receiver on loopback (aiohttp) that verifies every signature it gets.

Each subscription posts to `/hook/<subscription id>`; the receiver derives that
subscription's secret from the server key as the map API shows it (contracts.webhooks),
verifies the Standard Webhooks headers with the notifier's own `verify`, answers the
verification handshake with its challenge, and answers deliveries as scripted per
subscription (a list of statuses in turn, then `status`). It keeps every request, so tests
count deliveries per webhook-id (a receiver's de-duplication key).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from connect311_contracts.webhooks import webhook_secret
from connect311_local.broker import free_port
from connect311_notifier.webhook_payload import VERIFICATION_TYPE
from connect311_notifier.webhook_signing import SignatureError, verify


@dataclass(frozen=True)
class Hit:
    """One request: whose, its webhook-id and type, and whether its signature verified."""

    subscription_id: str
    webhook_id: str
    type: str
    event_id: str | None
    verified: bool
    status: int


@dataclass
class WebhookReceiver:
    """The receiver's behaviour and what it received (see the module docstring)."""

    server_key: str
    status: int = 204
    script: dict[str, list[int]] = field(default_factory=dict)
    """Per subscription: the statuses its next deliveries get, in turn (then `status`)."""
    hold_delivery: int | None = None
    """Park the n-th delivery (1-based, handshakes not counted) until `released` is set."""
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0

    def url(self, subscription_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{subscription_id}"

    def deliveries(self, subscription_id: str | None = None) -> list[Hit]:
        """Event deliveries (not handshakes), of one subscription or all."""
        return [
            h
            for h in self.hits
            if h.type != VERIFICATION_TYPE
            and (subscription_id is None or h.subscription_id == subscription_id)
        ]

    async def handle(self, request: web.Request) -> web.Response:
        sub_id = request.match_info["sub"]
        raw = await request.read()
        secret = webhook_secret(self.server_key, sub_id, 1)
        try:
            verify(secret, request.headers, raw, now=time.time())
            verified = True
        except SignatureError:
            verified = False
        payload = json.loads(raw)
        kind = str(payload.get("type", ""))
        if kind == VERIFICATION_TYPE:
            self.hits.append(Hit(sub_id, request.headers["webhook-id"], kind, None, verified, 200))
            return web.json_response({"challenge": payload["challenge"]})
        steps = self.script.get(sub_id)
        status = steps.pop(0) if steps else self.status
        event_id = payload.get("event_id")
        self.hits.append(
            Hit(sub_id, request.headers["webhook-id"], kind, event_id, verified, status)
        )
        if self.hold_delivery is not None and len(self.deliveries()) == self.hold_delivery:
            self.holding.set()
            await self.released.wait()  # the sender is killed meanwhile: no answer reaches it
        return web.Response(status=status)


@asynccontextmanager
async def serve_receiver(receiver: WebhookReceiver) -> AsyncIterator[WebhookReceiver]:
    """Run the receiver on 127.0.0.1 (a free port) until the block ends."""
    app = web.Application()
    app.router.add_post("/hook/{sub}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    receiver.port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port)
    await site.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        await runner.cleanup()
