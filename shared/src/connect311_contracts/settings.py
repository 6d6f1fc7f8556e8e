"""Settings every service shares; each service adds its own with its own env prefix."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    secret_key: SecretStr = SecretStr("local-development-only-not-secret")
    public_base_url: str = "http://localhost:8000"
