"""docs/feeds.md cannot drift: each settings table names exactly the fields of its model, and
every command it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from connect311_ingestor.cli import app
from connect311_ingestor.parsers.profiles import ColumnProfile, Columns, RowGroup
from connect311_ingestor.settings import IngestorSettings, Open311Feed, SeeClickFixFeed

DOC = Path(__file__).resolve().parents[3] / "docs" / "feeds.md"
MODELS: dict[str, type[BaseModel]] = {
    "ColumnProfile": ColumnProfile,
    "Columns": Columns,
    "RowGroup": RowGroup,
    "Open311Feed": Open311Feed,
    "SeeClickFixFeed": SeeClickFixFeed,
    "IngestorSettings": IngestorSettings,
}
MARKER = re.compile(r"<!-- settings: (\w+)(?: (\w+))? -->")


def documented_tables() -> dict[str, tuple[str, set[str]]]:
    """Model name -> (env prefix, the names in the first column of the table after its marker)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    tables: dict[str, tuple[str, set[str]]] = {}
    for number, line in enumerate(lines):
        marker = MARKER.fullmatch(line.strip())
        if marker is None:
            continue
        names: set[str] = set()
        for row in lines[number + 3 :]:  # marker, header, separator
            if not row.startswith("|"):
                break
            first = row.split("|")[1].strip()
            names.add(first.strip("`"))
        tables[marker.group(1)] = (marker.group(2) or "", names)
    return tables


def test_every_settings_model_has_a_table() -> None:
    assert set(documented_tables()) == set(MODELS)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_table_names_exactly_the_fields_of_its_model(model: str) -> None:
    prefix, names = documented_tables()[model]
    fields = {f"{prefix}{name.upper()}" if prefix else name for name in MODELS[model].model_fields}
    assert names - fields == set(), "documented but not a setting"
    assert fields - names == set(), "a setting missing from docs/feeds.md"


def test_every_command_the_doc_shows_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    shown = set(re.findall(r"connect311-ingestor ((?:sources )?[a-z][a-z-]+)", text))
    assert {"check", "import", "backfill", "sources set-watermark", "sources reset"} <= shown
    runner = CliRunner()
    for command in shown:
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, f"`connect311-ingestor {command}` does not exist"


def test_the_readme_links_the_feeds_guide() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/feeds.md)" in readme
