"""Every service has the same shape (issue 14): entry point, `python -m`, verb, settings names.

A newcomer who knows one service knows where things are in the others: `<pkg>.cli:main`, a
`__main__.py`, `run` for the long-running process, and `http_host`, `http_port`, `group_id`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from importlib.metadata import entry_points
from typing import Any

import pytest
import typer
from typer.main import get_command

from connect311_matcher.clients import MatcherClients
from connect311_matcher.service import Matcher
from connect311_matcher.settings import MatcherSettings

# service -> (package, settings class, consumes from a group)
SERVICES = {
    "ingestor": ("connect311_ingestor", "IngestorSettings", False),
    "matcher": ("connect311_matcher", "MatcherSettings", True),
    "notifier": ("connect311_notifier", "NotifierSettings", True),
    "map-api": ("connect311_map_api", "MapApiSettings", True),
}


def _typer_app(package: str) -> typer.Typer:
    module = importlib.import_module(f"{package}.cli")
    app = getattr(module, "app", None) or module.cli  # the one `main()` runs
    assert isinstance(app, typer.Typer)
    return app


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_entry_point_is_cli_main_and_python_dash_m_works(service: str) -> None:
    package = SERVICES[service][0]
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts[f"connect311-{service}"] == f"{package}.cli:main"
    assert importlib.util.find_spec(f"{package}.__main__") is not None
    assert callable(importlib.import_module(f"{package}.cli").main)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_long_running_process_is_run(service: str) -> None:
    command: Any = get_command(_typer_app(SERVICES[service][0]))
    assert "run" in command.commands
    assert "serve" not in command.commands


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_settings_use_the_same_names(service: str) -> None:
    package, class_name, consumes = SERVICES[service]
    fields = getattr(importlib.import_module(f"{package}.settings"), class_name).model_fields
    assert {"http_host", "http_port"} <= set(fields)
    assert ("group_id" in fields) is consumes
    assert not {"host", "port", "consumer_group"} & set(fields)


def test_the_matcher_is_handed_its_clients_and_settings() -> None:
    """The composition root (`connect311_matcher.app`) builds them; the constructor does not."""
    params = inspect.signature(Matcher.__init__).parameters
    assert params["settings"].default is inspect.Parameter.empty
    assert params["clients"].default is inspect.Parameter.empty
    assert "kafka" not in params  # no Kafka settings to build clients from


def test_the_matcher_uses_the_clients_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATCHER_GROUP_ID", "from-the-environment")
    producer, subscriptions, events = object(), object(), object()
    clients = MatcherClients(producer, subscriptions, events, watch=lambda _: None)  # type: ignore[arg-type, return-value]
    matcher = Matcher(MatcherSettings(group_id="given"), clients)
    assert matcher.settings.group_id == "given"
    assert matcher._clients is clients and matcher._producer is producer
