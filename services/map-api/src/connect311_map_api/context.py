"""What the routes share: the pieces the composition root wires together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_map_api.cache import AggregateCache, AnswerCache
from connect311_map_api.live import Broadcaster
from connect311_map_api.metrics import Metrics
from connect311_map_api.publisher import Publisher
from connect311_map_api.settings import MapApiSettings
from connect311_map_api.signup import SubscriptionService

__all__ = ["AppContext", "Ctx", "get_ctx"]


@dataclass
class AppContext:
    """Long-lived objects of one app instance."""

    settings: MapApiSettings
    kafka: KafkaSettings | None  # None when the app neither consumes nor publishes itself
    signing: SigningSettings
    engine: Engine
    publisher: Publisher
    service: SubscriptionService
    broadcaster: Broadcaster
    metrics: Metrics
    broker_enabled: bool
    cache: AggregateCache
    answers: AnswerCache  # heavy rendered pages, reused for a moment (issue 12)


async def get_ctx(request: Request) -> AppContext:
    """FastAPI dependency: this app's context (async: no thread-pool hop for a lookup)."""
    ctx: AppContext = request.app.state.ctx
    return ctx


# The one way a route gets its app's context: `def route(ctx: Ctx) -> ...`.
Ctx = Annotated[AppContext, Depends(get_ctx)]
