"""docker-compose.yml is valid and matches the contract (checked by docker-compose, no engine)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from connect311_contracts.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("ingestor", "matcher", "notifier", "map-api")
SECRETS = {"CONNECT311_SECRET_KEY": "test-secret", "POSTGRES_PASSWORD": "test-password"}


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: run scripts/install-system-packages.sh")
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = _compose(SECRETS)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_missing_secrets_fail_fast_with_their_names() -> None:
    result = _compose({})
    assert result.returncode != 0
    assert "CONNECT311_SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr


def test_every_service_has_its_own_image_and_a_healthcheck(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in SERVICES:
        assert services[name]["build"]["args"]["SERVICE"] == name
        assert services[name]["healthcheck"]["test"]
        assert services[name]["depends_on"]["kafka-topics"]["condition"] == (
            "service_completed_successfully"
        )
    for engine in ("kafka", "postgres", "mailpit"):
        assert services[engine]["healthcheck"]["test"]


def test_consumers_can_scale_out(config: dict[str, Any]) -> None:
    """--scale needs no fixed container name and no host port on the scaled services."""
    for name in ("matcher", "notifier", "ingestor"):
        service = config["services"][name]
        assert "container_name" not in service
        assert "ports" not in service


def test_topics_created_match_the_contract(config: dict[str, Any]) -> None:
    script = config["services"]["kafka-topics"]["command"][0]
    created = {m[0]: (int(m[1]), m[2]) for m in re.findall(r"create (\S+) (\d+) (\w+)", script)}
    expected = {t.name: (t.partitions, "compact" if t.compacted else "delete") for t in ALL_TOPICS}
    assert created == expected


def test_real_kafka_gets_idempotence_and_legal_timeouts(config: dict[str, Any]) -> None:
    env = config["services"]["matcher"]["environment"]
    assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert int(env["KAFKA_SESSION_TIMEOUT_MS"]) >= 6000
