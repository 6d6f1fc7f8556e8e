"""Matcher settings (env prefix MATCHER_); Kafka comes from the shared KafkaSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from connect311_contracts.topics import NOTIFICATIONS, REQUEST_EVENTS, SUBSCRIPTIONS


class MatcherSettings(BaseSettings):
    """How the matcher runs; every default suits a local run."""

    model_config = SettingsConfigDict(env_prefix="MATCHER_", extra="ignore")

    group_id: str = Field(default="connect311-matcher", description="Request-event consumer group")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8002, ge=0, le=65535, description="0 picks a free port")
    cell_m: float = Field(default=500.0, ge=50.0, le=10_000.0, description="Cover-grid cell size")
    rebuild_min_delta: int = Field(
        default=2_000, ge=1, description="Live circle changes before the grid is rebuilt"
    )
    max_batch: int = Field(default=500, ge=1, description="Request events matched per commit")
    broker_check_s: float = Field(
        default=5.0, gt=0, description="How often to check the broker still holds the topics"
    )
    create_topics: bool = Field(default=True, description="Create missing topics at start-up")
    events_topic: str = Field(default=REQUEST_EVENTS.name, description="Tests use their own")
    subscriptions_topic: str = SUBSCRIPTIONS.name
    notifications_topic: str = NOTIFICATIONS.name
