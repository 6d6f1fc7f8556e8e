"""Notifier settings from the environment (prefix NOTIFIER_), with safe local defaults."""

from __future__ import annotations

import socket

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connect311_contracts.settings import TimeZoneName


class Branding(BaseModel):
    """How one department signs its mail."""

    from_name: str = Field(max_length=200)
    footer: str = Field(default="", max_length=2000)


class NotifierSettings(BaseSettings):
    """Everything the notifier needs beyond Kafka (KAFKA_) and link signing (CONNECT311_)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_starttls: bool | None = Field(
        default=None, description="STARTTLS: true requires it, false never, unset when offered"
    )
    smtp_implicit_tls: bool = Field(default=False, description="TLS from the first byte (465)")
    smtp_validate_certs: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    smtp_connect_timeout_s: float = Field(default=10.0, gt=0)
    smtp_connections: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Parallel SMTP connections; each recipient's emails share one, in queue order",
    )
    smtp_record_every: int = Field(
        # 1: a kill -9 resends at most one email per connection, as always. Raising it
        # trades a wider resend window (same Message-IDs) for burst throughput.
        default=1,
        ge=1,
        le=100,
        description="Emails per connection recorded as sent in one commit during a burst: at "
        "most this many per connection are sent again (same Message-ID) after a kill -9",
    )
    smtp_messages_per_connection: int = Field(
        default=0, ge=0, description="Reconnect after this many messages (0: no limit)"
    )
    smtp_probe_base_s: float = Field(
        default=0.5, gt=0, description="First probe of an unreachable SMTP server, then doubling"
    )
    smtp_probe_max_s: float = Field(
        default=10.0, gt=0, description="Longest wait between probes of an unreachable server"
    )

    # Mail identity
    from_address: str = "alerts@connect311.localhost"
    from_name: str = "Connect311"
    footer: str = "You receive this because you subscribed to 311 alerts on Connect311."
    agencies: dict[str, Branding] = Field(
        default_factory=dict, description='JSON: {"Agency name": {"from_name":..,"footer":..}}'
    )
    display_timezone: TimeZoneName = "America/New_York"
    message_id_domain: str = "connect311.localhost"

    # Storage and Kafka
    database_url: str = "sqlite:///var/notifier.db"
    group_id: str = "connect311-notifier"
    instance_id: str = Field(default_factory=socket.gethostname)
    batch_size: int = Field(default=200, ge=1, le=5000)
    fetch_max_wait_ms: int = Field(
        default=50, ge=1, description="Longest a fetch waits for new commands (latency bound)"
    )

    # Delivery policy
    instant_per_hour: int = Field(default=20, ge=1, description="Instant emails per recipient")
    global_rate_per_s: float = Field(default=50.0, gt=0, description="All emails, all recipients")
    hard_bounce_threshold: int = Field(default=3, ge=1, description="Then disable the address")
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=900.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    sending_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="Rows held by an instance that stopped renewing this long ago are taken over",
    )
    digest_hour: int = Field(default=7, ge=0, le=23, description="Local hour daily/weekly go out")
    digest_check_s: float = Field(default=30.0, gt=0)
    max_digest_items: int = Field(default=500, ge=10)
    broker_check_s: float = Field(
        default=5.0, gt=0, description="How often to check the broker still holds the topics"
    )

    # Webhooks (retries reuse retry_base_s, retry_max_s and max_attempts)
    webhook_allow: list[str] = Field(
        default_factory=list,
        description='JSON list of "host:port" or "host:*" receivers allowed http, any port and '
        'private addresses (tests, on-premise), e.g. ["127.0.0.1:*"]; the map API has its own',
    )
    webhook_connections: int = Field(
        default=8, ge=1, le=256, description="Webhooks in flight at once (one per subscription)"
    )
    webhook_timeout_s: float = Field(
        default=15.0, gt=0, le=60, description="One attempt, answer included"
    )
    webhook_disable_after: int = Field(
        default=20, ge=1, description="Failed attempts in a row that turn a webhook off"
    )

    # HTTP
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8003, ge=0, le=65535)

    def branding(self, agency: str | None) -> Branding:
        """The from-name and footer for a department, or the defaults."""
        default = Branding(from_name=self.from_name, footer=self.footer)
        return self.agencies.get(agency, default) if agency else default
