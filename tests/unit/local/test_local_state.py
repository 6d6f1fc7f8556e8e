"""The local run keeps its databases where the services' own commands look for them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from connect311_local.stack import STATE_DIR, LocalPorts, clear_state, service_specs
from connect311_notifier import cli as notifier_cli
from connect311_notifier.ledger import Ledger, emails

_ENV = ("NOTIFIER_DATABASE_URL", "INGESTOR_DATABASE_URL", "MAP_API_DATABASE_URL")


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///")).resolve()


def test_notifier_status_reads_the_ledger_of_a_local_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the project root, as `make run` and a second terminal use
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    specs = {s.name: s for s in service_specs(LocalPorts(), STATE_DIR)}
    ledger_url = specs["notifier"].env["NOTIFIER_DATABASE_URL"]
    _path(ledger_url).parent.mkdir(parents=True)
    Ledger(create_engine(ledger_url)).create_schema()  # what the running notifier does

    result = CliRunner().invoke(notifier_cli.app, ["status"])
    assert result.exit_code == 0, result.output
    assert "digest queue" in result.output
    assert "no ledger" not in result.output

    # The outbox holds webhooks too: the status counts them apart from the emails.
    ledger = Ledger(create_engine(ledger_url))
    rows = [("alert", "sent"), ("digest", "sent"), ("webhook", "sent"), ("webhook", "dead")]
    with ledger.db.transaction() as conn:
        for n, (kind, state) in enumerate(rows):
            conn.execute(
                emails.insert().values(
                    kind=kind,
                    subscription_id="s1",
                    recipient_key="k1",
                    to_addr="",
                    status=state,
                    attempts=1,
                    next_attempt_at=0.0,
                    message_id=f"<m{n}@example.city>",
                    created_at=0.0,
                    source_ts=0.0,
                )
            )
    ledger.engine.dispose()
    result = CliRunner().invoke(notifier_cli.app, ["status"])
    assert result.exit_code == 0, result.output
    table = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()}
    assert table["state"] == ["emails", "webhooks"]
    assert table["sent"] == ["2", "1"] and table["dead"] == ["0", "1"]
    assert table["pending"] == ["0", "0"]


def test_every_database_is_at_its_services_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connect311_ingestor.settings import IngestorSettings
    from connect311_map_api.settings import MapApiSettings
    from connect311_notifier.settings import NotifierSettings

    monkeypatch.chdir(tmp_path)
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    env = {k: v for s in service_specs(LocalPorts(), STATE_DIR) for k, v in s.env.items()}
    defaults = {
        "NOTIFIER_DATABASE_URL": NotifierSettings().database_url,
        "INGESTOR_DATABASE_URL": IngestorSettings().database_url,
        "MAP_API_DATABASE_URL": MapApiSettings().database_url,
    }
    for name, default in defaults.items():
        assert _path(env[name]) == _path(default), name


def test_a_fresh_start_deletes_only_what_the_local_run_owns(tmp_path: Path) -> None:
    owned = [
        "notifier.db",
        "notifier.db-wal",
        "map-api.db",
        "ingestor.db-shm",
        "log/map-api.log",
        "demo/demo-lap-00002.csv",
        "demo/laps-played",
    ]
    kept = ["keep.txt", "other.db", "local/notifier.db", "log/notes.txt"]
    for name in owned + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    removed = clear_state(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == sorted(owned)
    assert all((tmp_path / name).exists() for name in kept)
    assert not any(os.path.exists(tmp_path / name) for name in owned)
