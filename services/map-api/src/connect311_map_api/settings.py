"""Map API settings (env prefix MAP_API_), with safe local defaults."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

OSM_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


class MapApiSettings(BaseSettings):
    """Everything the map API needs to know besides Kafka and the signing secret."""

    model_config = SettingsConfigDict(env_prefix="MAP_API_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/map-api.db", description="SQLAlchemy URL: SQLite file or PostgreSQL"
    )
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0, description="Wait for a lock")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    consume: bool = Field(default=True, description="Run the Kafka consumers and publisher")
    tile_url: str = OSM_TILE_URL
    tile_attribution: str = "&copy; OpenStreetMap contributors"
    map_center_lat: float = Field(default=27.7676, ge=-90, le=90)
    map_center_long: float = Field(default=-82.6403, ge=-180, le=180)
    map_zoom: int = Field(default=12, ge=0, le=22)
    rate_limit_ip: str = Field(default="10/minute;50/hour", description="Sign-ups per client IP")
    rate_limit_email: str = Field(default="3/hour;10/day", description="Sign-ups per address")
    max_body_bytes: int = Field(default=64_000, ge=1_000)
    max_polygon_vertices: int = Field(default=1_000, ge=4, le=5_000)
    confirm_token_max_age_s: int = Field(default=48 * 3600, ge=60)
    manage_token_max_age_s: int | None = Field(
        default=None, description="None: unsubscribe/manage links in emails never expire"
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for /api/admin; admin endpoints answer 503 unset"
    )
    consumer_group: str = "map-api-state"
    feedback_group: str = "map-api-feedback"
    republish_on_start: bool = True
    publish_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest wait for the broker to acknowledge a publish"
    )
    broker_check_s: float = Field(
        default=5.0, gt=0, description="How often to check whether the broker lost its topics"
    )
    aggregate_cache_s: float = Field(
        default=10.0, ge=0, description="How long cluster and stats answers are reused (0: off)"
    )
    sse_ping_s: float = Field(default=15.0, gt=0)
