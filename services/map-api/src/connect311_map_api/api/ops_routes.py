"""Operations: health, bearer-protected metrics, live stream and bearer-protected admin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select, text, update
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from connect311_bus.auth import bearer_matches
from connect311_bus.kafka import UndecodableMessage, decode
from connect311_contracts.events import REQUEST_EVENT_ADAPTER
from connect311_map_api.api.models import DeadLetter, Health, ReplayResult, SubscriberCounts
from connect311_map_api.context import AppContext, Ctx
from connect311_map_api.core.state import naive_utc
from connect311_map_api.db import subscription_store
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.db.tables import dead_letters
from connect311_map_api.live import RETRY_AFTER_S, HeldEventSourceResponse, StreamsFull

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(ctx: Ctx) -> Any:
    """Database and broker reachability (503 when either is down)."""

    def ping() -> None:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
        database = "ok"
    except Exception as exc:  # any driver error means the database is not usable
        database = f"unavailable: {type(exc).__name__}"
    if ctx.broker_enabled:
        broker = "ok" if await ctx.publisher.healthy() else "unavailable"
    else:
        broker = "disabled"
    ok = database == "ok" and broker in ("ok", "disabled")
    body = {"status": "ok" if ok else "degraded", "database": database, "broker": broker}
    return JSONResponse(body, status_code=200 if ok else 503)


def require_metrics_reader(
    ctx: Ctx, authorization: Annotated[str | None, Header()] = None
) -> AppContext:
    """Bearer check for /metrics: the metrics token or the admin token (503 when neither set).

    Metrics show sign-up and subscription volumes, which are the operator's business only.
    """
    tokens = [
        t.get_secret_value() for t in (ctx.settings.metrics_token, ctx.settings.admin_token) if t
    ]
    if not tokens:
        raise HTTPException(
            503, detail="metrics are disabled: set MAP_API_METRICS_TOKEN and scrape with it"
        )
    if not bearer_matches(authorization, tokens):
        raise HTTPException(
            401,
            detail="send Authorization: Bearer <MAP_API_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return ctx


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(ctx: Annotated[AppContext, Depends(require_metrics_reader)]) -> Response:
    """Prometheus metrics (bearer token: MAP_API_METRICS_TOKEN or MAP_API_ADMIN_TOKEN)."""
    ctx.metrics.sse_clients.set(ctx.broadcaster.clients)
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/api/stream",
    tags=["requests"],
    summary="Live request changes (server-sent events)",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event: request"}},
)
async def stream(request: Request, ctx: Ctx) -> EventSourceResponse:
    """Each changed request as `event: request` with the map's Feature JSON as data.

    Open streams are capped per client (429) and in all (503), both with Retry-After.
    """
    client = request.client.host if request.client else "unknown"
    try:
        release = ctx.broadcaster.reserve(client)
    except StreamsFull as exc:
        raise HTTPException(
            exc.status, detail=exc.detail, headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from exc

    async def events() -> AsyncIterator[dict[str, str]]:
        async with ctx.broadcaster.subscribe() as queue:
            ctx.metrics.sse_clients.set(ctx.broadcaster.clients)
            try:
                while not await request.is_disconnected():
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout=1.0)
                    except TimeoutError:
                        continue
                    yield {"event": "request", "data": json.dumps(item)}
            finally:
                ctx.metrics.sse_clients.set(ctx.broadcaster.clients - 1)

    return HeldEventSourceResponse(events(), release=release, ping=int(ctx.settings.sse_ping_s))


def require_admin(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> AppContext:
    """Bearer-token check; 503 when no admin token is configured."""
    expected = ctx.settings.admin_token
    if expected is None:
        raise HTTPException(503, detail="admin endpoints are disabled: set MAP_API_ADMIN_TOKEN")
    if not bearer_matches(authorization, [expected.get_secret_value()]):
        raise HTTPException(
            401, detail="a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return ctx


Admin = Annotated[AppContext, Depends(require_admin)]


@router.get("/api/admin/deadletters", response_model=list[DeadLetter], tags=["admin"])
def list_dead_letters(ctx: Admin) -> list[dict[str, Any]]:
    """Messages the map API could not process, newest first (raw payload not shown)."""
    c = dead_letters.c
    query = (
        select(c.id, c.topic, c.partition, c.offset, c.reason, c.received_at, c.replayed_at)
        .order_by(c.id.desc())
        .limit(500)
    )
    with ctx.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


@router.post("/api/admin/deadletters/replay", response_model=ReplayResult, tags=["admin"])
def replay_dead_letters(ctx: Admin) -> dict[str, int]:
    """Try every unreplayed request-event dead letter again (e.g. after a fix)."""
    c = dead_letters.c
    replayed = failing = 0
    with ctx.engine.begin() as conn:
        rows = conn.execute(
            select(c.id, c.raw).where(c.replayed_at.is_(None), c.topic == "requests.events.v1")
        ).all()
        for row in rows:
            try:
                event = decode(REQUEST_EVENT_ADAPTER, row.raw.encode())
            except UndecodableMessage:
                failing += 1
                continue
            apply_events(conn, [event])
            conn.execute(
                update(dead_letters)
                .where(c.id == row.id)
                .values(replayed_at=naive_utc(datetime.now(UTC)))
            )
            replayed += 1
    return {"replayed": replayed, "still_failing": failing}


@router.get("/api/admin/subscribers", response_model=SubscriberCounts, tags=["admin"])
def subscriber_counts(ctx: Admin) -> dict[str, Any]:
    """How many subscriptions are in each status (counts only, no addresses)."""
    with ctx.engine.connect() as conn:
        return {"counts": subscription_store.counts_by_status(conn)}
