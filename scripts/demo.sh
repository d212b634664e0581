#!/usr/bin/env bash
# The main job on the embedded default (SQLite), from a fresh clone:
# install into .venv, dump the bundled Chinook database, list and verify the archive,
# restore it into a new SQLite file, and check that the copy holds exactly the same rows.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
out=.demo
rm -rf "$out" && mkdir -p "$out"
src=examples/chinook/Chinook_Sqlite.sqlite
set -x
.venv/bin/dbcrate dump "sqlite:///$src" "$out/chinook.crate"
.venv/bin/dbcrate ls "$out/chinook.crate"
.venv/bin/dbcrate verify "$out/chinook.crate"
.venv/bin/dbcrate restore "$out/chinook.crate" "sqlite:///$out/copy.db"
.venv/bin/python scripts/compare_sqlite.py "$src" "$out/copy.db"
