"""The app the browser tests drive: the real map API (create_app) over a seeded SQLite file.

Kafka is replaced by a recording publisher (the port the API depends on), so the tests can
read the confirmation link a new subscription asks the notifier to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from connect311_contracts.notifications import ConfirmationRequested
from connect311_contracts.rejects import MessageDeadLettered
from connect311_contracts.settings import KafkaSettings, SigningSettings
from connect311_contracts.subscriptions import Subscription
from connect311_map_api.app import create_app
from connect311_map_api.db.engine import create_schema, make_engine
from connect311_map_api.db.state_store import apply_events
from connect311_map_api.settings import MapApiSettings
from tests.e2e.web.seed import CENTER_LAT, CENTER_LONG, seed_events
from tests.e2e.web.tiles import add_tile_route

TEST_ZOOM = 14
SECRET = "web-tests-only-secret"
WEBHOOK_ALLOW = "127.0.0.1:*"


@dataclass
class RecordingPublisher:
    """Keeps what the API would send to Kafka, in order."""

    changed: list[Subscription] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    confirmations: list[ConfirmationRequested] = field(default_factory=list)
    dead: list[MessageDeadLettered] = field(default_factory=list)

    async def subscription_changed(self, sub: Subscription) -> None:
        """Record a subscription's new state."""
        self.changed.append(sub)

    async def subscription_deleted(self, subscription_id: str) -> None:
        """Record a deletion."""
        self.deleted.append(subscription_id)

    async def confirmation_requested(self, command: ConfirmationRequested) -> None:
        """Record a confirmation email request."""
        self.confirmations.append(command)

    async def dead_letter(self, letter: MessageDeadLettered) -> None:
        """Record a dead letter."""
        self.dead.append(letter)

    async def healthy(self) -> bool:
        """Always reachable."""
        return True


def seed_database(database_url: str) -> None:
    """Store every seeded request event (as the state consumer would have)."""
    engine = make_engine(database_url)
    create_schema(engine)
    with engine.begin() as conn:
        apply_events(conn, seed_events())
    engine.dispose()


def web_settings(database_url: str, tile_url: str, **overrides: Any) -> MapApiSettings:
    """Map API settings for a browser test: local tiles, test zoom, no sign-up limits."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "consume": False,
        "tile_url": tile_url,
        "map_zoom": TEST_ZOOM,
        "map_center_lat": CENTER_LAT,  # the tests that need no centre override these with None
        "map_center_long": CENTER_LONG,
        "rate_limit_ip": "1000/minute",
        "rate_limit_email": "1000/minute",
        # Webhook receivers on loopback, as in tests and on-premise (issue 19): http, any port.
        "webhook_allow": [WEBHOOK_ALLOW],
    }
    return MapApiSettings(**(values | overrides))


def build_app(
    database_url: str, *, base_url: str, tile_url: str
) -> tuple[FastAPI, RecordingPublisher]:
    """The app with every seeded request stored, tiles served locally, Kafka recorded."""
    seed_database(database_url)
    signing = SigningSettings(secret_key=SECRET, public_base_url=base_url)
    publisher = RecordingPublisher()
    app = create_app(web_settings(database_url, tile_url), signing=signing, publisher=publisher)
    add_tile_route(app)
    return app, publisher


def build_kafka_app(
    database_url: str, *, base_url: str, tile_url: str, kafka: KafkaSettings, name: str
) -> FastAPI:
    """The app wired to a real broker: it consumes request events and publishes sign-ups."""
    seed_database(database_url)
    settings = web_settings(
        database_url,
        tile_url,
        consume=True,
        group_id=f"{name}-state",
        feedback_group=f"{name}-feedback",
        republish_on_start=False,
    )
    signing = SigningSettings(secret_key=SECRET, public_base_url=base_url)
    app = create_app(settings, kafka=kafka, signing=signing)
    add_tile_route(app)
    return app
