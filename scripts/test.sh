#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs lint, types and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
uv() { python3 -m uv "$@"; }

scripts/install-system-packages.sh
uv sync --frozen --all-packages
uv run --frozen ruff check .
uv run --frozen ruff format --check .
uv run --frozen mypy shared/src shared/bus/src services/*/src deploy/local/src
uv run --frozen pytest "$@"
