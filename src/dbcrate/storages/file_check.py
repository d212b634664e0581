"""The row <-> file check: columns that hold paths of storage files, against the files.

A *file column* (declared with ``--file-column TABLE.COLUMN[=ROOT]``, or detected for Django's
``FileField``/``ImageField``) holds paths relative to a storage root, as Django stores them
relative to ``MEDIA_ROOT``. The check reports *missing* files (a row names a path the storage
does not hold) and *orphans* (a file of that root no row names). Both sides can be millions of
paths, so they go through a private temporary SQLite database on disk, not through memory.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbcrate.errors import UsageError
from dbcrate.storages.index import FileColumn

#: example paths shown per kind of problem
EXAMPLES = 10


def parse_file_column(spec: str, default_root: str | None) -> FileColumn:
    """``TABLE.COLUMN`` or ``TABLE.COLUMN=ROOT`` (ROOT: a storage's name in the archive)."""
    target, _, root = spec.partition("=")
    table, dot, column = target.rpartition(".")
    if not dot or not table or not column:
        raise UsageError(f"bad file column {spec!r}", hint="write TABLE.COLUMN or TABLE.COLUMN=ROOT")
    root = root or default_root or ""
    if not root:
        raise UsageError(f"the file column {spec!r} needs a storage",
                         hint="add --storage DIR, or name the storage: TABLE.COLUMN=ROOT")
    return FileColumn(table, column, root)


@dataclass
class FileCheck:
    """Collects stored paths and referenced paths, then compares them."""

    def __post_init__(self) -> None:
        self._tmp = tempfile.NamedTemporaryFile(prefix="dbcrate-filecheck-", suffix=".db")
        self._db = sqlite3.connect(self._tmp.name)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE files (root TEXT, path TEXT, PRIMARY KEY (root, path)) WITHOUT ROWID;"
            "CREATE TABLE refs (root TEXT, path TEXT, source TEXT, PRIMARY KEY (root, path, source))"
            " WITHOUT ROWID;"
        )

    def add_file(self, root: str, path: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO files VALUES (?, ?)", (root, path))

    def add_files(self, root: str, paths: Iterable[str]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO files VALUES (?, ?)",
                             ((root, p) for p in paths))

    def add_references(self, column: FileColumn, values: Iterable[Any]) -> None:
        source = f"{column.table}.{column.column}"
        self._db.executemany(
            "INSERT OR IGNORE INTO refs VALUES (?, ?, ?)",
            ((column.root, str(v), source) for v in values if v is not None and str(v) != ""),
        )

    def result(self) -> dict[str, Any]:
        """``{"missing": n, "orphans": n, "missing_examples": [...], "orphan_examples": [...]}``"""
        missing_q = ("FROM refs r WHERE NOT EXISTS (SELECT 1 FROM files f "
                     "WHERE f.root = r.root AND f.path = r.path)")
        orphan_q = ("FROM files f WHERE f.root IN (SELECT DISTINCT root FROM refs) AND NOT EXISTS "
                    "(SELECT 1 FROM refs r WHERE r.root = f.root AND r.path = f.path)")
        db = self._db
        missing = db.execute(f"SELECT count(*) {missing_q}").fetchone()[0]
        orphans = db.execute(f"SELECT count(*) {orphan_q}").fetchone()[0]
        return {
            "missing": missing,
            "orphans": orphans,
            "missing_examples": [f"{s}: {r}/{p}" for r, p, s in db.execute(
                f"SELECT r.root, r.path, r.source {missing_q} ORDER BY 1, 2 LIMIT {EXAMPLES}")],
            "orphan_examples": [f"{r}/{p}" for r, p in db.execute(
                f"SELECT f.root, f.path {orphan_q} ORDER BY 1, 2 LIMIT {EXAMPLES}")],
        }

    def close(self) -> None:
        self._db.close()
        self._tmp.close()


def describe(result: dict[str, Any]) -> list[str]:
    """Warnings for a report (empty when every row's file exists and no file is orphaned)."""
    out = []
    if result.get("missing"):
        out.append(f"{result['missing']} referenced file(s) missing from the storages, e.g. "
                   + ", ".join(result.get("missing_examples", [])[:3]))
    if result.get("orphans"):
        out.append(f"{result['orphans']} storage file(s) no row refers to (orphans), e.g. "
                   + ", ".join(result.get("orphan_examples", [])[:3]))
    return out
