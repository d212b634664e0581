#!/usr/bin/env bash
# Set up and run the whole test suite from a fresh clone: lint, type check, tests.
# PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB (127.0.0.1:3306, root) must be running;
# under CI=true their tests fail instead of skipping when a server is unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# mysqlclient (the optional C reader of MariaDB dumps) compiles against libmariadb's headers,
# found with pkg-config: install them from Debian's packages when missing and we can
missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists libmariadb 2>/dev/null || missing+=(libmariadb-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# the age tool: tests/test_encryption.py opens a sealed archive's key with it (interoperability)
command -v age >/dev/null 2>&1 || missing+=(age)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || echo "warning: could not install ${missing[*]}" >&2
fi
# CI must test the mysqlclient path (tests/test_mysql_fastpath.py fails there without it);
# elsewhere the MariaDB tests then run the PyMySQL path only
if ! .venv/bin/pip install -q --disable-pip-version-check -e '.[test,mysqlclient]'; then
  if [ "${CI:-}" = true ]; then
    echo "mysqlclient did not install (needs libmariadb-dev, pkg-config and a C compiler)" >&2
    exit 1
  fi
  echo "warning: mysqlclient not installed: MariaDB dumps are read with PyMySQL" >&2
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
fi
.venv/bin/ruff check src tests bench scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
