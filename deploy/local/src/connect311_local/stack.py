"""The local stack: which process runs on which port, with which environment."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from connect311_local.broker import free_port
from connect311_local.supervisor import ProcessSpec

DEMO_FILE = Path("data/demo/nyc311_2023-02-28_demo.csv")
DEMO_PROFILE = Path("data/demo/nyc_demo.toml")
"""The built-in nyc profile, plus housing and buildings complaints as a second layer."""

STATE_DIR = Path("var")
"""Where the local run keeps its databases: the services' own default paths (`var/<service>.db`),
so `connect311-notifier status` and `connect311-ingestor status`, run from the project root,
read the same databases as the running stack with no settings."""

DATABASES = ("map-api.db", "notifier.db", "ingestor.db")
"""The databases the local run owns in its state folder (a fresh start deletes only these)."""


def log_dir(state: Path) -> Path:
    """Where each process's log goes: `<state>/log/<name>.log`."""
    return state / "log"


def demo_dir(state: Path) -> Path:
    """Where the demo's lap files are written while they play."""
    return state / "demo"


def clear_state(state: Path) -> list[Path]:
    """Delete the local run's databases (with SQLite's side files) and logs; returns them.

    The local broker keeps nothing across restarts, so fresh databases keep the demo coherent.
    Nothing else in the folder is touched.
    """
    doomed = [
        state / f"{name}{suffix}"
        for name in DATABASES
        for suffix in ("", "-wal", "-shm", "-journal")
    ]
    doomed += sorted(log_dir(state).glob("*.log")) + sorted(demo_dir(state).glob("demo-lap-*.csv"))
    doomed.append(demo_dir(state) / "laps-played")
    removed = [path for path in doomed if path.exists()]
    for path in removed:
        path.unlink()
    return removed


class LocalPorts(BaseSettings):
    """Local ports (env CONNECT311_LOCAL_<NAME>_PORT); fixed defaults so README links work."""

    model_config = SettingsConfigDict(env_prefix="CONNECT311_LOCAL_", frozen=True)

    broker_port: int = 9092
    map_api_port: int = 8000
    ingestor_port: int = 8001
    matcher_port: int = 8002
    notifier_port: int = 8003
    smtp_port: int = 1025
    inbox_port: int = 8025

    @classmethod
    def free(cls) -> LocalPorts:
        """Every port picked free (tests run stacks side by side)."""
        names = ("broker", "map_api", "ingestor", "matcher", "notifier", "smtp", "inbox")
        return cls.model_validate({f"{name}_port": free_port() for name in names})

    def http_services(self) -> dict[str, int]:
        """Services that answer /healthz over HTTP."""
        return {
            "map-api": self.map_api_port,
            "ingestor": self.ingestor_port,
            "matcher": self.matcher_port,
            "notifier": self.notifier_port,
        }

    def all(self) -> dict[str, int]:
        """Every port the local run needs."""
        return {
            **self.http_services(),
            "broker": self.broker_port,
            "smtp": self.smtp_port,
            "inbox": self.inbox_port,
        }


def _bin(name: str) -> str:
    # The services' console scripts live beside the interpreter running us (the uv venv).
    return str(Path(sys.executable).parent / name)


LOCAL_METRICS_TOKEN = "local-metrics"  # noqa: S105 (loopback-only local run; `status` sends it)
"""The map API's /metrics needs a bearer token; the local run uses this fixed one."""


def common_env(ports: LocalPorts) -> dict[str, str]:
    """Environment every service gets locally."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports.broker_port}",
        "CONNECT311_PUBLIC_BASE_URL": f"http://localhost:{ports.map_api_port}",
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
                "MAP_API_HTTP_PORT": str(ports.map_api_port),
                "MAP_API_METRICS_TOKEN": LOCAL_METRICS_TOKEN,
                # The demo city (NYC, data/demo): the map opens on it, not on the default.
                "MAP_API_MAP_CENTER_LAT": "40.73",
                "MAP_API_MAP_CENTER_LONG": "-73.93",
                "MAP_API_MAP_ZOOM": "11",
            },
            f"http://127.0.0.1:{ports.map_api_port}/healthz",
        ),
        ProcessSpec(
            "matcher",
            (_bin("connect311-matcher"), "run"),
            {
                **env,
                "MATCHER_HTTP_PORT": str(ports.matcher_port),
            },
            f"http://127.0.0.1:{ports.matcher_port}/healthz",
        ),
        ProcessSpec(
            "notifier",
            (_bin("connect311-notifier"), "run"),
            {
                **env,
                "NOTIFIER_DATABASE_URL": f"{db}/notifier.db",
                "NOTIFIER_SMTP_HOST": "127.0.0.1",
                "NOTIFIER_SMTP_PORT": str(ports.smtp_port),
                "NOTIFIER_HTTP_PORT": str(ports.notifier_port),
            },
            f"http://127.0.0.1:{ports.notifier_port}/healthz",
        ),
        ProcessSpec(
            "ingestor",
            (_bin("connect311-ingestor"), "run"),
            {
                **env,
                "INGESTOR_DATABASE_URL": f"{db}/ingestor.db",
                "INGESTOR_HTTP_PORT": str(ports.ingestor_port),
            },
            f"http://127.0.0.1:{ports.ingestor_port}/healthz",
        ),
    ]


def lap_spec(ports: LocalPorts, state: Path, lap_file: Path, speed: float) -> ProcessSpec:
    """One demo lap: a lap file replayed as live at `speed` x real time, starting now."""
    env = {**common_env(ports), "INGESTOR_DATABASE_URL": f"sqlite:///{state.resolve()}/ingestor.db"}
    return ProcessSpec(
        "demo",  # every lap logs to demo.log (its output names the lap file)
        (
            _bin("connect311-ingestor"),
            "replay",
            str(lap_file),
            "--profile",
            str(DEMO_PROFILE.resolve()),  # the project root is the working directory
            "--speed",
            str(speed),
            "--shift-to-now",
        ),
        env,
        essential=False,
    )


__all__ = [
    "DATABASES",
    "DEMO_FILE",
    "DEMO_PROFILE",
    "LOCAL_METRICS_TOKEN",
    "STATE_DIR",
    "LocalPorts",
    "clear_state",
    "common_env",
    "demo_dir",
    "lap_spec",
    "log_dir",
    "service_specs",
]
