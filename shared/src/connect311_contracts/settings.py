"""Settings every service shares; each service adds its own with its own env prefix."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEVELOPMENT_SECRET",
    "DevelopmentSecretRefused",
    "KafkaSettings",
    "SigningSettings",
    "TimeZoneName",
    "is_local_url",
]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}: use an IANA name such as America/New_York"
        ) from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""A setting naming an IANA time zone (checked at start: a typo stops the service, saying so)."""

DEVELOPMENT_SECRET = "local-development-only-not-secret"  # noqa: S105 (public by design)
"""Public (it is in the source): anyone can forge links signed with it."""


class KafkaSettings(BaseSettings):
    """How to reach Kafka (env prefix KAFKA_).

    Defaults suit the local Kafka-protocol broker. On Apache Kafka set
    KAFKA_ENABLE_IDEMPOTENCE=true and KAFKA_SESSION_TIMEOUT_MS>=6000 (see docs/operations.md).
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id_prefix: str = "connect311"
    enable_idempotence: bool = Field(
        default=False, description="On for Apache Kafka; the local broker rejects it"
    )
    session_timeout_ms: int = Field(default=2000, ge=1000)
    heartbeat_interval_ms: int = Field(default=500, ge=100)
    fetch_max_wait_ms: int = Field(
        default=50, ge=1, description="Longest a fetch waits for data: bounds end-to-end latency"
    )
    replication_factor: int = Field(default=1, ge=1)
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def connection_kwargs(self) -> dict[str, Any]:
        """Arguments aiokafka clients share (bootstrap and security)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return kwargs


class SigningSettings(BaseSettings):
    """The secret that signs confirm/unsubscribe/manage links (env CONNECT311_SECRET_KEY).

    The local default is for development only; compose and Kubernetes require a real one.
    """

    model_config = SettingsConfigDict(env_prefix="CONNECT311_", extra="ignore")

    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    public_base_url: str = "http://localhost:8000"

    def refuse_development_secret(self) -> None:
        """Raise DevelopmentSecretRefused if the public secret would sign real links.

        The built-in secret is in the source code, so tokens forged with it would be accepted;
        it is allowed only while the public base URL is this machine (localhost, 127.x, ::1).
        """
        if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET and not is_local_url(
            self.public_base_url
        ):
            raise DevelopmentSecretRefused(
                f"refusing to start: CONNECT311_SECRET_KEY is the public development secret but "
                f"CONNECT311_PUBLIC_BASE_URL is {self.public_base_url!r}; set "
                "CONNECT311_SECRET_KEY to a long random string (the same in every service)"
            )


class DevelopmentSecretRefused(RuntimeError):
    """A service was about to sign public links with the built-in development secret."""


def is_local_url(url: str) -> bool:
    """True when the URL's host is this machine: localhost, 127.0.0.0/8 or ::1."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
