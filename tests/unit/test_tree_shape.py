"""The tree's shape (issue 14): small modules, services that never import each other, and
the shared packages' public names declared.

Read from the files themselves (text and imports), so a new file is checked as it lands.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
SERVICES = {
    "ingestor": "connect311_ingestor",
    "matcher": "connect311_matcher",
    "notifier": "connect311_notifier",
    "map-api": "connect311_map_api",
}


def _python_files(*tops: str) -> Iterator[Path]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not {".venv", "node_modules", "__pycache__"} & set(path.parts):
                yield path


def _imported(path: Path) -> set[str]:
    """Top-level package names a module imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_source_file_is_over_400_lines() -> None:
    files = list(_python_files("services", "shared", "deploy", "bench", "tests", "scripts"))
    assert len(files) > 100  # the walk found the tree
    long = {
        str(path.relative_to(ROOT)): lines
        for path in files
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these by job (<= {MAX_LINES} lines each): {long}"


def test_services_never_import_each_other() -> None:
    crossings = []
    for service, package in SERVICES.items():
        others = set(SERVICES.values()) - {package}
        files = list(_python_files(f"services/{service}/src"))
        assert files, service
        for path in files:
            crossings += [(str(path.relative_to(ROOT)), name) for name in _imported(path) & others]
    assert crossings == []


def test_contracts_import_no_plumbing_and_both_shared_packages_declare_their_names() -> None:
    contracts = list(_python_files("shared/src/connect311_contracts"))
    bus = list(_python_files("shared/bus/src/connect311_bus"))
    assert contracts and bus
    plumbing = {"connect311_bus", "aiokafka", "sqlalchemy", "uvicorn", "prometheus_client"}
    assert [str(p.relative_to(ROOT)) for p in contracts if _imported(p) & plumbing] == []
    undeclared = [str(path.relative_to(ROOT)) for path in contracts + bus if not _declares(path)]
    assert undeclared == []


def _declares(path: Path) -> bool:
    """Whether a module assigns `__all__` at its top level."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False
