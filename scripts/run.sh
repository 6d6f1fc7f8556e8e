#!/usr/bin/env bash
# Installs everything and runs the whole system locally on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
python3 -m uv sync --frozen --all-packages -q
exec python3 -m uv run --frozen connect311 up "$@"
