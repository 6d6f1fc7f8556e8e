"""The local stack: which process runs on which port, with which environment."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from connect311_local.broker import free_port
from connect311_local.supervisor import ProcessSpec

DEMO_FILE = Path("data/demo/nyc311_2023-02-28_demo.csv")


@dataclass(frozen=True)
class LocalPorts:
    """Fixed local ports, so links in the README and emails work."""

    broker: int = 9092
    map_api: int = 8000
    ingestor: int = 8001
    matcher: int = 8002
    notifier: int = 8003
    smtp: int = 1025
    inbox: int = 8025

    @classmethod
    def free(cls) -> LocalPorts:
        """Every port picked free (tests run stacks side by side)."""
        return cls(*(free_port() for _ in range(7)))

    def http_services(self) -> dict[str, int]:
        """Services that answer /healthz over HTTP."""
        return {
            "map-api": self.map_api,
            "ingestor": self.ingestor,
            "matcher": self.matcher,
            "notifier": self.notifier,
        }

    def all(self) -> dict[str, int]:
        """Every port the local run needs."""
        return {
            **self.http_services(),
            "broker": self.broker,
            "smtp": self.smtp,
            "inbox": self.inbox,
        }


def _bin(name: str) -> str:
    # The services' console scripts live beside the interpreter running us (the uv venv).
    return str(Path(sys.executable).parent / name)


def common_env(ports: LocalPorts) -> dict[str, str]:
    """Environment every service gets locally."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports.broker}",
        "CONNECT311_PUBLIC_BASE_URL": f"http://localhost:{ports.map_api}",
        "LOG_FORMAT": "text",
    }


def service_specs(
    ports: LocalPorts, state: Path, extra_env: Mapping[str, str] | None = None
) -> list[ProcessSpec]:
    """The four services, in start order (the map API first: it owns subscriptions)."""
    env = {**common_env(ports), **(extra_env or {})}
    db = f"sqlite:///{state.resolve()}"
    return [
        ProcessSpec(
            "map-api",
            (_bin("connect311-map-api"), "run"),
            {
                **env,
                "MAP_API_DATABASE_URL": f"{db}/map-api.db",
                "MAP_API_PORT": str(ports.map_api),
            },
            f"http://127.0.0.1:{ports.map_api}/healthz",
        ),
        ProcessSpec(
            "matcher",
            (_bin("connect311-matcher"), "run"),
            {
                **env,
                "MATCHER_HTTP_PORT": str(ports.matcher),
            },
            f"http://127.0.0.1:{ports.matcher}/healthz",
        ),
        ProcessSpec(
            "notifier",
            (_bin("connect311-notifier"), "run"),
            {
                **env,
                "NOTIFIER_DATABASE_URL": f"{db}/notifier.db",
                "NOTIFIER_SMTP_HOST": "127.0.0.1",
                "NOTIFIER_SMTP_PORT": str(ports.smtp),
                "NOTIFIER_HTTP_PORT": str(ports.notifier),
            },
            f"http://127.0.0.1:{ports.notifier}/healthz",
        ),
        ProcessSpec(
            "ingestor",
            (_bin("connect311-ingestor"), "serve"),
            {
                **env,
                "INGESTOR_DATABASE_URL": f"{db}/ingestor.db",
                "INGESTOR_HTTP_PORT": str(ports.ingestor),
            },
            f"http://127.0.0.1:{ports.ingestor}/healthz",
        ),
    ]


def replay_spec(ports: LocalPorts, state: Path, root: Path, speed: float) -> ProcessSpec:
    """The demo feed: the shipped NYC day replayed as live at `speed` x real time."""
    env = {**common_env(ports), "INGESTOR_DATABASE_URL": f"sqlite:///{state.resolve()}/ingestor.db"}
    return ProcessSpec(
        "replay",
        (
            _bin("connect311-ingestor"),
            "replay",
            str(root / DEMO_FILE),
            "--profile",
            "nyc",
            "--speed",
            str(speed),
            "--shift-to-now",
        ),
        env,
    )
