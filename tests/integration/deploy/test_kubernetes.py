"""Kubernetes manifests validate offline against the Kubernetes schemas and fit together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from connect311_contracts.topics import NOTIFICATIONS, REQUEST_EVENTS

BASE = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "base"


def _resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((BASE / name).read_text()) if d)
    return docs


RESOURCES = _resources()
CORE = [r for r in RESOURCES if r["apiVersion"] != "keda.sh/v1alpha1"]


@pytest.mark.parametrize("resource", CORE, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_core_resources_are_valid_kubernetes(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, "1.33.0", strict=True)


def test_every_service_has_probes_resources_and_its_config() -> None:
    deployments = [r for r in RESOURCES if r["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "map-api",
        "ingestor",
        "matcher",
        "notifier",
    }
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        liveness = "/livez" if deployment["metadata"]["name"] == "matcher" else "/healthz"
        assert container["livenessProbe"]["httpGet"]["path"] == liveness
        assert container["resources"]["requests"] and container["resources"]["limits"]
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"connect311-config", "connect311-secrets"}


def test_lag_autoscaling_targets_the_consumers_and_caps_at_partitions() -> None:
    scaled = {r["metadata"]["name"]: r for r in RESOURCES if r["kind"] == "ScaledObject"}
    expected = {"matcher": REQUEST_EVENTS, "notifier": NOTIFICATIONS}
    assert set(scaled) == set(expected)
    for name, topic in expected.items():
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["topic"] == topic.name
        assert spec["maxReplicaCount"] == topic.partitions


def test_no_secret_values_are_committed() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (generator,) = kustomization["secretGenerator"]
    assert generator["envs"] == ["secrets.env"]
    assert not (BASE / "secrets.env").exists()
    assert not any(r["kind"] == "Secret" for r in RESOURCES)
