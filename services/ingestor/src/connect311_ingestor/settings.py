"""Ingestor settings (env prefix INGESTOR_); Kafka comes from the shared KafkaSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connect311_contracts import service_levels
from connect311_contracts.settings import TimeZoneName
from connect311_ingestor.exclusions import Exclusion


class ExcludesCategories(BaseModel):
    """A feed's categories to leave out (test issues); see `exclusions`."""

    exclude_service_codes: list[str] = Field(
        default_factory=list, description="Left out by service_code (SeeClickFix: request type id)"
    )
    exclude_service_names: list[str] = Field(
        default_factory=list, description="Left out by service_name, any case (request type title)"
    )

    def exclusion(self) -> Exclusion:
        """The categories this feed leaves out."""
        return Exclusion.of(self.exclude_service_codes, self.exclude_service_names)


class Open311Feed(ExcludesCategories):
    """One Open311 GeoReport v2 endpoint to poll."""

    source: str = Field(min_length=1, max_length=100, description="Source name, e.g. 'sf311'")
    base_url: str = Field(description="Endpoint root, e.g. https://host/open311/v2")
    format: Literal["json", "xml"] = "json"
    jurisdiction_id: str | None = None
    api_key: SecretStr | None = None
    dataset: str = "311"
    window_hours: float = Field(default=24.0, gt=0, description="start_date/end_date span")
    backfill_days: float = Field(default=7.0, ge=0, description="History fetched on first run")
    overlap_minutes: float = Field(default=10.0, ge=0, description="Re-read late arrivals")
    use_page: bool = Field(default=True, description="Use the `page` extension")
    max_pages: int = Field(default=50, ge=1)
    updates: bool = Field(default=False, description="Also poll servicerequestupdates")


class SeeClickFixFeed(ExcludesCategories):
    """One SeeClickFix API v2 issue query to poll (by place_url or bounding box)."""

    source: str = Field(min_length=1, max_length=100)
    base_url: str = "https://seeclickfix.com/api/v2"
    place_url: str | None = None
    min_lat: float | None = None
    min_lng: float | None = None
    max_lat: float | None = None
    max_lng: float | None = None
    dataset: str = "311"
    per_page: int = Field(default=100, ge=1, le=100)
    backfill_days: float = Field(default=7.0, ge=0)
    max_pages: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _area(self) -> SeeClickFixFeed:
        box = (self.min_lat, self.min_lng, self.max_lat, self.max_lng)
        if self.place_url is None and any(v is None for v in box):
            raise ValueError("give place_url or all of min_lat, min_lng, max_lat, max_lng")
        return self


class IngestorSettings(BaseSettings):
    """Where state lives, the HTTP endpoint, push tokens and the feeds to poll."""

    model_config = SettingsConfigDict(env_prefix="INGESTOR_", extra="ignore")

    database_url: str = "sqlite:///var/ingestor.db"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8001, ge=1, le=65535)
    # What one push may send before the app sees it (connect311_bus.http_limits).
    http_max_request_line_bytes: int = Field(default=8_192, ge=1_024, description="Longer: 414")
    http_max_header_bytes: int = Field(default=32_768, ge=4_096, description="More: 431")
    http_header_timeout_s: float = Field(default=10.0, gt=0, description="Slower head: 408")
    http_body_timeout_s: float = Field(
        default=30.0, gt=0, description="Slower body: 408 (push bodies run to push_max_bytes)"
    )
    push_tokens: SecretStr = Field(
        default=SecretStr(""), description="Comma-separated bearer tokens; empty disables push"
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed; "
        "empty: the peer address is the client (proxy headers ignored)",
    )
    push_source: str = Field(default="push", description="Source name of pushed requests")
    push_max_bytes: int = Field(default=1_000_000, ge=1_000)
    open311_feeds: list[Open311Feed] = Field(default_factory=list)
    seeclickfix_feeds: list[SeeClickFixFeed] = Field(default_factory=list)
    poll_interval_s: float = Field(default=300.0, gt=0)
    max_response_mb: float = Field(default=20.0, gt=0)
    http_timeout_s: float = Field(default=30.0, gt=0)
    http_retries: int = Field(default=5, ge=0)
    batch_size: int = Field(default=500, ge=1)
    publish_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for the broker to acknowledge a batch"
    )
    broker_check_s: float = Field(
        default=5.0, gt=0, description="How often run/poll check whether the broker lost topics"
    )
    republish_window_s: float = Field(
        default=3600.0,
        ge=0,
        description="Published events are kept this long and re-published after a broker loss",
    )
    broker_connect_attempts: int = Field(default=5, ge=1, description="Tries at start-up")
    kafka_compression: Literal["gzip"] | None = Field(
        default="gzip", description="Producer compression: rejects carry whole raw rows"
    )
    user_agent: str = "Connect311-ingestor/0.1 (+https://github.com/connect311)"
    # The overdue clock (overdue_sweep.py): due dates by the same rule and file as the map API.
    service_levels_file: Path | None = Field(
        default=None,
        description="TOML file of target times by category or department (format: "
        "deploy/service-levels.example.toml), the map API's too; unset: only the feeds' own "
        "due dates make a request overdue",
    )
    city_timezone: TimeZoneName = Field(
        default="America/New_York",
        description="The city's IANA time zone, in which day targets count (the same as "
        "MAP_API_DISPLAY_TIMEZONE, so both services agree on every due time)",
    )
    overdue_check_s: float = Field(
        default=60.0, gt=0, description="How often `run` looks for requests that became overdue"
    )
    overdue_alert_window_s: float = Field(
        default=7 * 86_400.0,
        ge=0,
        description="An overdue noticed later than this after the due time (the ingestor was "
        "off, or history was imported) is published as backfill: recorded, never alerted",
    )

    @model_validator(mode="after")
    def _readable_service_levels(self) -> IngestorSettings:
        # Read at start, so a wrong file stops the ingestor with the reason, not each sweep.
        if self.service_levels_file is not None:
            service_levels.read_service_levels(self.service_levels_file, self.city_timezone)
        return self

    def tokens(self) -> frozenset[str]:
        """The configured push tokens (none means push is disabled)."""
        raw = self.push_tokens.get_secret_value()
        return frozenset(t.strip() for t in raw.split(",") if t.strip())
