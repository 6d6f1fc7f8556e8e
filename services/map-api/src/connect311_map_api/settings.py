"""Map API settings (env prefix MAP_API_), with safe local defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connect311_contracts import service_levels
from connect311_contracts.settings import TimeZoneName
from connect311_contracts.webhook_url import TargetPolicy
from connect311_map_api.mailbox import MailboxRules

OSM_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


class MapApiSettings(BaseSettings):
    """Everything the map API needs to know besides Kafka and the signing secret."""

    model_config = SettingsConfigDict(env_prefix="MAP_API_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/map-api.db", description="SQLAlchemy URL: SQLite file or PostgreSQL"
    )
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0, description="Wait for a lock")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    # What one request may send before the app sees it (connect311_bus.http_limits).
    max_request_line_bytes: int = Field(default=8_192, ge=1_024, description="Longer: 414")
    max_header_bytes: int = Field(default=32_768, ge=4_096, description="More: 431")
    header_timeout_s: float = Field(default=10.0, gt=0, description="Slower request head: 408")
    body_timeout_s: float = Field(default=10.0, gt=0, description="Slower request body: 408")
    consume: bool = Field(default=True, description="Run the Kafka consumers and publisher")
    tile_url: str = OSM_TILE_URL
    tile_attribution: str = "&copy; OpenStreetMap contributors"
    # The map opens here when both are set (the deployment's city); unset: on its data.
    map_center_lat: float | None = Field(default=None, ge=-90, le=90)
    map_center_long: float | None = Field(default=None, ge=-180, le=180)
    map_zoom: int = Field(default=12, ge=0, le=22, description="Zoom at the configured centre")
    geocoder_url: str | None = Field(
        default=None,
        description="Base URL of a Nominatim-compatible geocoder (GET /search?format=json&q=) "
        "asked server-side by address search; unset: only the requests' own addresses",
    )
    geocoder_timeout_s: float = Field(default=3.0, gt=0, le=30, description="Then local only")
    display_timezone: TimeZoneName = Field(
        default="America/New_York",
        description="The city's IANA time zone: pages show times in it, with its abbreviation "
        "(set it like NOTIFIER_DISPLAY_TIMEZONE, which does the same for emails)",
    )
    feed_author: str = Field(
        default="City 311",
        min_length=1,
        max_length=200,
        description="The author every Atom feed entry names: the city, never a resident",
    )
    accessibility_contact: str = Field(
        default="",
        max_length=320,
        description="Where a person reports an accessibility barrier (an email address or a "
        "URL), shown on /accessibility; empty: the page points to the city's 311 line",
    )
    rate_limit_ip: str = Field(default="10/minute;50/hour", description="Sign-ups per client IP")
    rate_limit_email: str = Field(
        default="3/hour;10/day", description="Sign-ups per mailbox (folded: case, +tag, dots)"
    )
    rate_limit_domain: str = Field(
        default="300/hour;3000/day",
        description="Confirmation emails per mail domain (gmail.com counts as one domain)",
    )
    rate_limit_confirmations: str = Field(
        default="1000/hour;10000/day",
        description="Confirmation emails in all: caps what sign-up can make the mail server send",
    )
    mailbox_tag_separators: str = Field(
        default="+", description="Characters that start a sub-address tag (a+tag@); '' for none"
    )
    mailbox_dotless_domains: str = Field(
        default="gmail.com,googlemail.com",
        description="Comma-separated domains whose mailboxes ignore dots in the local part",
    )
    mailbox_domain_aliases: str = Field(
        default="googlemail.com=gmail.com",
        description="Comma-separated alias=domain pairs counted as one domain",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed; "
        "empty: the peer address is the client (proxy headers ignored)",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for /metrics (the admin token works too); 503 when neither set",
    )
    max_body_bytes: int = Field(default=64_000, ge=1_000)
    max_polygon_vertices: int = Field(default=1_000, ge=4, le=5_000)
    confirm_token_max_age_s: int = Field(default=48 * 3600, ge=60)
    manage_token_max_age_s: int | None = Field(
        default=None, description="None: unsubscribe/manage links in emails never expire"
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for /api/admin; admin endpoints answer 503 unset"
    )
    group_id: str = Field(default="map-api-state", description="Request-event consumer group")
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
    stream_max_per_client: int = Field(
        default=10, ge=1, description="Open live streams one client (IP) may hold; 429 beyond"
    )
    stream_max_total: int = Field(
        default=1_000, ge=1, description="Open live streams in all (per process); 503 beyond"
    )
    read_limit: str = Field(
        # A full map view (5 pages of 1,000 features, ~35 units) fits in a second, and a busy
        # map session (a light call every ~100 ms for minutes) never meets the minute window;
        # a loop of whole-world pages (~7 units each) gets ~3 a second (issue 12,
        # bench/abuse.py: at 400/minute its own paced normal client met the limit).
        default="40/second;200/10seconds;1200/minute",
        description="Public reads (map data, stats, Open311, preview) per client IP, in units "
        "of read_limit_unit_bytes of answer (a light call is one unit); '' for off",
    )
    heavy_answer_cache_s: float = Field(
        default=2.0,
        ge=0,
        description="How long a heavy page (many features, a full Open311 page) is reused for "
        "the same question (0: off); the live stream carries changes meanwhile",
    )
    tile_max_age_s: int = Field(
        default=10,
        ge=0,
        description="How long a map data tile may be reused by browsers and proxies (and by "
        "this process) without asking again; live changes come over the stream meanwhile",
    )
    tile_stale_s: int = Field(
        default=30,
        ge=0,
        description="How long after max-age a cache may still answer with a tile while it "
        "revalidates it (stale-while-revalidate)",
    )
    heavy_threads: int = Field(
        default=2,
        ge=1,
        le=40,
        description="Routes building large bodies in Python (request pages, tiles, clusters, "
        "stats, feeds) at once; more wait on the event loop, so it is never one runnable "
        "thread among many (heavy_work.py; bench/map_threads.py measured the default)",
    )
    read_limit_unit_bytes: int = Field(
        default=65_536,
        ge=1_024,
        description="Answer bytes one read-limit unit pays for: heavy answers cost more units",
    )
    service_levels_file: Path | None = Field(
        default=None,
        description="TOML file of target times by category or department (format: "
        "deploy/service-levels.example.toml); unset: only the feeds' own due dates",
    )
    stats_max_age_s: int = Field(
        default=60,
        ge=0,
        description="How long browsers and proxies may reuse the department numbers, their "
        "CSV and the stats widget (they are measured to the minute)",
    )
    department_digest_hour: int = Field(
        default=7,
        ge=0,
        le=23,
        description="Local hour (display_timezone) each department's daily overdue and "
        "oldest-open digest goes out; a new subscription gets the day's digest on confirming",
    )
    department_digest_check_s: float = Field(
        default=60.0, gt=0, description="How often the digest schedule is looked at"
    )
    department_digest_items: int = Field(
        default=25, ge=1, le=50, description="Requests each list of a department digest names"
    )

    webhook_allow: list[str] = Field(
        default_factory=list,
        description='JSON list of "host:port" or "host:*" webhook receivers allowed http, any '
        'port and private addresses (tests, on-premise), e.g. ["127.0.0.1:*"]; set the '
        "notifier's NOTIFIER_WEBHOOK_ALLOW alike, since it checks again before every delivery",
    )

    @model_validator(mode="after")
    def _readable_service_levels(self) -> MapApiSettings:
        # Read at start, so a wrong file stops the app with the reason instead of a 503 later.
        if self.service_levels_file is not None:
            service_levels.read_service_levels(self.service_levels_file, self.display_timezone)
        return self

    @field_validator("webhook_allow")
    @classmethod
    def _allow_entries(cls, value: list[str]) -> list[str]:
        TargetPolicy(allow=tuple(value))  # a typo stops the app at start, with the entry
        return value

    def webhook_policy(self) -> TargetPolicy:
        """What a webhook URL may be (https to a public host, or on the allow-list)."""
        return TargetPolicy(allow=tuple(self.webhook_allow))

    def map_data_cache_control(self) -> str:
        """Cache-Control of the map's data (tiles, category and department lists)."""
        return f"public, max-age={self.tile_max_age_s}, stale-while-revalidate={self.tile_stale_s}"

    def mailbox_rules(self) -> MailboxRules:
        """How addresses fold into mailboxes for the per-mailbox limit."""
        return MailboxRules.from_lists(
            self.mailbox_tag_separators,
            self.mailbox_dotless_domains.split(","),
            self.mailbox_domain_aliases.split(","),
        )
