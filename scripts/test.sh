#!/usr/bin/env bash
# Set up and run the whole test suite from a fresh clone: lint, type check, tests.
# PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306, root) must be running;
# under CI=true their tests fail instead of skipping when a server is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check src tests bench scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
