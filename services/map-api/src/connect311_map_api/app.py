"""Composition root: settings, database, publisher, consumers, routes and web pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from connect311_bus.broker_watch import BrokerWatch
from connect311_bus.kafka import ensure_topics
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_map_api import heavy_work, tokenlog
from connect311_map_api.api import (
    breakdown_routes,
    departments_routes,
    docs_routes,
    feeds_routes,
    open311_routes,
    ops_routes,
    places_routes,
    requests_routes,
    subscriptions_routes,
    tiles_routes,
    validation_errors,
)
from connect311_map_api.cache import AggregateCache, AnswerCache
from connect311_map_api.consumers import FeedbackConsumer, StateConsumer, supervise
from connect311_map_api.context import AppContext
from connect311_map_api.db import aggregates, subscription_store
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.department_digests import DepartmentDigests
from connect311_map_api.live import Broadcaster
from connect311_map_api.metrics import Metrics
from connect311_map_api.middleware import BodySizeLimit, LatencyMetrics, NoSniff, PublicReadCors
from connect311_map_api.publisher import KafkaPublisher, NoPublisher, Publisher, PublishUnavailable
from connect311_map_api.readlimit import PublicReadLimit
from connect311_map_api.settings import MapApiSettings
from connect311_map_api.signup import SubscriptionService

log = logging.getLogger(__name__)


def app_from_environment() -> FastAPI:
    """The app with every setting read from the environment (MAP_API_*, KAFKA_*, CONNECT311_*),
    for `uvicorn --factory connect311_map_api.app:app_from_environment`."""
    return create_app(MapApiSettings(), kafka=KafkaSettings(), signing=SigningSettings())


def create_app(
    settings: MapApiSettings,
    *,
    signing: SigningSettings,
    kafka: KafkaSettings | None = None,
    publisher: Publisher | None = None,
) -> FastAPI:
    """The map API application; consumers run in its lifespan when `settings.consume`.

    It reads no environment: the caller passes every setting. `kafka` is needed (and used)
    only by an app that consumes and publishes itself (`settings.consume`, no `publisher`).
    """
    if settings.consume and publisher is None and kafka is None:
        raise ValueError("an app that consumes needs its Kafka settings: pass kafka=")
    signing.refuse_development_secret()  # before anything starts: one line, what to set
    engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_ms)
    create_schema(engine)
    aggregates.ensure_built(engine)
    kafka_publisher = (
        KafkaPublisher(kafka, settings.publish_timeout_s)
        if kafka is not None and settings.consume and publisher is None
        else None
    )
    chosen: Publisher = publisher or kafka_publisher or NoPublisher()
    metrics = Metrics()
    metrics.watch_subscriptions(lambda: _counts(engine))
    ctx = AppContext(
        settings=settings,
        kafka=kafka,
        signing=signing,
        engine=engine,
        publisher=chosen,
        service=SubscriptionService(engine, chosen, settings, signing),
        broadcaster=Broadcaster(settings.stream_max_total, settings.stream_max_per_client),
        metrics=metrics,
        broker_enabled=settings.consume or publisher is not None,
        cache=AggregateCache(settings.aggregate_cache_s),
        answers=AnswerCache(settings.heavy_answer_cache_s),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = await _start(ctx, kafka_publisher)
        try:
            async with ctx.metrics.loop_lag.running():  # every app, with or without consumers
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if kafka_publisher is not None:
                await kafka_publisher.stop()
            engine.dispose()

    app = FastAPI(
        title="Connect311 map API",
        version="1.0.0",
        description="Every 311 service request on a live map, with email alerts.",
        lifespan=lifespan,
        docs_url=None,  # served by docs_routes from local assets (works offline)
        redoc_url=None,  # ReDoc would come from a CDN; /docs covers it
    )
    app.state.ctx = ctx
    heavy_work.install(app, settings.heavy_threads)
    app.state.settings = settings
    for router in (
        breakdown_routes.router,
        departments_routes.router,
        requests_routes.router,
        subscriptions_routes.router,
        open311_routes.router,
        ops_routes.router,
        places_routes.router,
        feeds_routes.router,
        feeds_routes.manage_router,
    ):
        app.include_router(router)
    _error_handlers(app)
    validation_errors.install(app)
    docs_routes.install(app)
    tiles_routes.install(app, ctx)
    app.add_middleware(  # inside CORS and metrics
        PublicReadLimit, spec=settings.read_limit, unit_bytes=settings.read_limit_unit_bytes
    )
    app.add_middleware(LatencyMetrics, metrics=metrics)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(PublicReadCors)
    app.add_middleware(NoSniff)  # outermost: also on 413s and CORS answers
    _mount_web(app, settings)
    tokenlog.install()  # last: every module of the package (and so its logger) is loaded
    return app


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return subscription_store.counts_by_status(conn)


async def _start(
    ctx: AppContext, kafka_publisher: KafkaPublisher | None
) -> list[asyncio.Task[Any]]:
    if kafka_publisher is None or ctx.kafka is None:
        return []
    kafka = ctx.kafka
    try:
        await ensure_topics(kafka)
        await kafka_publisher.start()
    except KafkaError:
        log.error(
            "Kafka at %s is not reachable: start the broker (scripts/run.sh) or set "
            "KAFKA_BOOTSTRAP_SERVERS, or run without consumers: connect311-map-api run "
            "--no-consume",
            kafka.bootstrap_servers,
        )
        raise
    if ctx.settings.republish_on_start:
        await ctx.service.republish()
    common: dict[str, Any] = {
        "engine": ctx.engine,
        "publisher": ctx.publisher,
        "metrics": ctx.metrics,
    }
    state = StateConsumer(kafka, ctx.settings.group_id, broadcaster=ctx.broadcaster, **common)
    feedback = FeedbackConsumer(kafka, ctx.settings.feedback_group, service=ctx.service, **common)

    async def restore() -> None:
        ctx.metrics.broker_recoveries.inc()
        await ctx.service.republish()
        state.rewind.request()  # applying events and bounces again is idempotent
        feedback.rewind.request()

    watch = BrokerWatch(
        kafka, restore, ctx.settings.broker_check_s, client_id="connect311-map-api-watch"
    )
    digests = DepartmentDigests(ctx.engine, ctx.publisher, ctx.settings)
    return [
        asyncio.create_task(supervise("state", state.run)),
        asyncio.create_task(supervise("feedback", feedback.run)),
        asyncio.create_task(watch.run()),
        asyncio.create_task(digests.run()),
    ]


def _error_handlers(app: FastAPI) -> None:
    async def database_down(_request: Request, exc: Exception) -> JSONResponse:
        orig = getattr(exc, "orig", None) or exc
        reason = str(orig).splitlines()[0][:200] if str(orig) else type(orig).__name__
        log.warning("database unavailable: %s", reason)
        return JSONResponse(
            {"detail": f"database unavailable ({reason}); try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def broker_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("broker unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "alerts cannot be processed right now; try again in a few minutes"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    for db_error in (OperationalError, DBAPIError, PoolTimeout):
        app.add_exception_handler(db_error, database_down)
    for kafka_error in (KafkaError, PublishUnavailable):
        app.add_exception_handler(kafka_error, broker_down)


def _mount_web(app: FastAPI, settings: MapApiSettings) -> None:
    try:
        from connect311_map_api.web import mount_web
    except ImportError:  # the web pages package is built separately; the API works alone
        log.warning("web pages are not installed; serving the API only")
        return
    mount_web(app, settings)
