"""The command line: help, and a clear message when the database cannot be opened."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from connect311_map_api.cli import cli


def test_help_lists_run_options() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    assert "--no-consume" in result.output and "--http-port" in result.output


def test_unreachable_database_exits_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAP_API_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/x")
    result = CliRunner().invoke(cli, ["run", "--no-consume"])
    assert result.exit_code == 1
    assert "cannot open the database" in result.output
    assert "MAP_API_DATABASE_URL" in result.output
