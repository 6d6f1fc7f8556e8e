"""Every CLI error is one line on stderr saying what to do next, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connect311_local.broker import free_port

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "data" / "demo" / "nyc311_2023-02-28_demo.csv"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The ingestor CLI as a user runs it, with a throwaway database and no reachable broker."""
    base = {
        **os.environ,
        "COLUMNS": "80",  # a narrow terminal must not wrap the line either
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "INGESTOR_BROKER_CONNECT_ATTEMPTS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "connect311_ingestor", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line; fails if there is a traceback or more than one line."""
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def test_a_missing_file_is_one_line(tmp_path: Path, db: str) -> None:
    line = one_line_error(
        cli("import", str(tmp_path / "nope.csv"), "--profile", "nyc", INGESTOR_DATABASE_URL=db)
    )
    assert "no file" in line and "check the path" in line
    line = one_line_error(cli("check", str(tmp_path)))
    assert "is a folder" in line
    odd = tmp_path / "export.txt"
    odd.write_text("x", encoding="utf-8")
    assert ".csv, .json, .jsonl or .xml" in one_line_error(cli("check", str(odd)))


def test_a_bad_profile_path_or_profile_file_is_one_line(tmp_path: Path, db: str) -> None:
    line = one_line_error(
        cli("import", str(DEMO), "--profile", str(tmp_path / "city.json"), INGESTOR_DATABASE_URL=db)
    )
    assert "unknown profile" in line and "docs/feeds.md" in line
    broken = tmp_path / "broken.json"
    broken.write_text('{"source": "x", "columns": {', encoding="utf-8")
    line = one_line_error(cli("check", str(DEMO), "--profile", str(broken)))
    assert "cannot read profile" in line and "fix the file" in line
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"source": "x", "colums": {}}', encoding="utf-8")
    line = one_line_error(cli("check", str(DEMO), "--profile", str(wrong)))
    assert "is invalid" in line and "columns" in line


def test_invalid_settings_name_the_variable_in_one_line(db: str) -> None:
    line = one_line_error(cli("status", INGESTOR_DATABASE_URL=db, INGESTOR_HTTP_PORT="eighty"))
    assert "INGESTOR_HTTP_PORT is invalid" in line
    feeds = '[{"source": "sf", "base_url": "https://x", "window_hours": -1}]'
    line = one_line_error(cli("poll", INGESTOR_DATABASE_URL=db, INGESTOR_OPEN311_FEEDS=feeds))
    assert "INGESTOR_OPEN311_FEEDS is invalid (at 0.window_hours)" in line
    line = one_line_error(cli("status", INGESTOR_DATABASE_URL=db, KAFKA_SESSION_TIMEOUT_MS="5"))
    assert "KAFKA_SESSION_TIMEOUT_MS is invalid" in line


def test_an_unreachable_broker_is_one_line_with_its_address(db: str) -> None:
    port = free_port()
    result = cli(
        "import",
        str(DEMO),
        "--profile",
        "nyc",
        "--limit",
        "5",
        INGESTOR_DATABASE_URL=db,
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
    )
    line = one_line_error(result)
    assert f"127.0.0.1:{port}" in line and "connect311 broker" in line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    postgres = f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/nothing"
    line = one_line_error(cli("status", INGESTOR_DATABASE_URL=postgres))
    assert "INGESTOR_DATABASE_URL" in line and "database problem" in line
    line = one_line_error(
        cli("import", str(DEMO), "--profile", "nyc", INGESTOR_DATABASE_URL=postgres)
    )
    assert "INGESTOR_DATABASE_URL" in line
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")  # a file where the database folder should be
    line = one_line_error(cli("status", INGESTOR_DATABASE_URL=f"sqlite:///{blocked}/sub/x.db"))
    assert "INGESTOR_DATABASE_URL" in line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("import", str(DEMO), "--profile", "nyc", "--bogus"), "No such option: --bogus"),
        (("check",), "Missing argument 'file'"),
        (("check", str(DEMO), "--rows", "0"), "'--rows'"),
        (("frobnicate",), "No such command 'frobnicate'"),
        (("--log-level", "LOUD", "status"), "DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_usage_mistakes_are_one_line_naming_the_help(args: tuple[str, ...], said: str) -> None:
    line = one_line_error(cli(*args))
    command = " ".join(a for a in args[:1] if not a.startswith("-") and a != "frobnicate")
    help_of = f"connect311-ingestor {command}".strip()
    assert said in line and f"(see `{help_of} --help`)" in line, line
