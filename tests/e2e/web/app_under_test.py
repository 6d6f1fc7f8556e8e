"""The app the browser tests drive: the map API's routes over a seeded SQLite database.

INTERIM: until the backend's create_app lands, this wires the backend's request routes, a
recorded sign-up endpoint and the live stream by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from connect311_map_api.api import requests_routes
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.live import Broadcaster
from connect311_map_api.settings import MapApiSettings
from connect311_map_api.web import mount_web
from tests.e2e.web.seed import seed_events
from tests.e2e.web.tiles import add_tile_route

TEST_ZOOM = 14


def build_app(database_url: str, *, tile_url: str) -> FastAPI:
    """The app with every seeded request stored, tiles served locally."""
    settings = MapApiSettings(
        database_url=database_url, consume=False, tile_url=tile_url, map_zoom=TEST_ZOOM
    )
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        apply_events(conn, seed_events())
    app = FastAPI()
    app.state.ctx = SimpleNamespace(engine=engine, broadcaster=Broadcaster(), settings=settings)
    app.state.signups = []
    app.include_router(requests_routes.router)

    @app.post("/api/subscriptions", status_code=202)
    async def signup(body: dict[str, Any]) -> dict[str, str]:
        app.state.signups.append(body)
        return {"message": "Check your inbox: we sent a link to confirm your subscription."}

    @app.post("/api/subscriptions/preview")
    async def preview(body: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"days": 90, "total": 26, "per_week_average": 2.0, "weeks": []})

    @app.get("/api/stream")
    async def stream() -> EventSourceResponse:
        async def events() -> AsyncIterator[dict[str, str]]:
            async with app.state.ctx.broadcaster.subscribe() as queue:
                while True:
                    item = await queue.get()
                    yield {"event": "request", "data": json.dumps(item)}

        return EventSourceResponse(events())

    mount_web(app, settings)
    add_tile_route(app)
    return app
