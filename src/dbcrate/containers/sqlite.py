"""The ``sqlite`` kind: a whole dump as one SQLite database file.

The file opens with the ``sqlite3`` shell (or any SQLite tool) and shows the data readably:

* one **data table** per archived table, named like it when the name is safe in SQLite (no
  control character, no ``sqlite_``/``dbcrate_`` prefix, no case-insensitive clash), else
  ``tNNNN`` (the table's 1-based position); its first column ``dbcrate_row INTEGER PRIMARY KEY``
  numbers the rows 1..n in archive order, then one column per archived column, named likewise
  (else ``cNNNN``). Every identifier goes through SQLite's double-quote quoting.
* **metadata tables**: ``dbcrate_archive(name, content)`` holds the three documents of a tar
  archive as text (``dbcrate-archive.json``, ``manifest.json`` - with the portable schema -
  and ``manifest.sha256``); ``dbcrate_tables`` and ``dbcrate_columns`` map archived names to
  data table and column names, with each column's logical type.

Values are stored so that every logical type round-trips exactly (docs/CONTAINERS.md):
integers and booleans as INTEGER; ``uint64`` as decimal TEXT (SQLite integers are signed);
floats as REAL in an *untyped* column (a REAL column turns -0.0 into 0) with NaN as the text
``'NaN'`` (SQLite stores a NaN REAL as NULL); decimal, string, json, uuid and other as TEXT;
binary as BLOB; dates, times and timestamps as the ISO text of the text data formats
(``2024-02-29``, ``24:00:00``, ``2024-02-29T12:00:00.5``, ``...Z`` in UTC, ``infinity`` /
``-infinity`` sentinels, years outside 1..9999 as ``+YYYYY`` / ``-YYYY``).

A chunk is a range of ``dbcrate_row`` numbers (chunk k of a table starts after the rows of the
chunks before it). Its ``sha256`` in the manifest is the SHA-256 of a canonical serialization
of the data table name, the column names and the stored values of its rows (see
:func:`chunk_digest`), and ``size`` the length of that serialization: ``verify`` recomputes it,
so changed values, names or row numbers are detected. The manifest says ``data_format:
"sqlite"`` and names chunks ``data/tTTTT/cCCCCCC.sqlite``.

The file is written under a temp name beside the final one (0600), fsynced and renamed, with
SQLite's journal off (a failed write is discarded whole). It is read with ``mode=ro`` and
``immutable=1`` (no lock, no journal or WAL file is touched), ``trusted_schema=OFF``, and only
after checking that the schema holds nothing but the expected tables (no view, trigger or
other object); the manifest is checked against its digest first.

This module holds the layout, the value codec, the chunk digest and the writer; the reader is
:mod:`dbcrate.containers.sqlite_reader`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dbcrate.atomic import check_parent, create_private_file, fsync_path, temp_name
from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    ContainerWriter,
    arrow_schema,
    row_kind_format,
)
from dbcrate.containers.traits import SQLITE_HEADER as SQLITE_HEADER
from dbcrate.errors import OutputError, UsageError
from dbcrate.formats.registry import DEFAULT_COMPRESSION_LEVEL
from dbcrate.formats.textvalues import codec_of
from dbcrate.model.chunks import member_name
from dbcrate.model.manifest import FORMAT_NAME, Chunk, Manifest, TableEntry
from dbcrate.model.temporal import (
    format_date,
    format_time,
    format_timestamp,
    parse_date,
    parse_time,
    parse_timestamp,
)

KIND = "sqlite"
#: PRAGMA application_id of a dbcrate file ("dbCr"): SQLite tools and ``file`` can tell it
APPLICATION_ID = 0x64624372
ROW_COLUMN = "dbcrate_row"
META_ARCHIVE = "dbcrate_archive"
META_TABLES = "dbcrate_tables"
META_COLUMNS = "dbcrate_columns"
#: rows per INSERT batch and per decoded record batch
BATCH_ROWS = 4096
_INT64 = struct.Struct(">q")
_FLOAT = struct.Struct(">d")
_LENGTH = struct.Struct(">Q")
_UNSIGNED = re.compile(r"[0-9]{1,20}", re.ASCII)
#: names SQLite reserves, or dbcrate uses for its metadata, are never data table names
RESERVED_PREFIXES = ("sqlite_", "dbcrate_")


def quote(name: str) -> str:
    """SQLite's identifier quoting (the only way a name reaches SQL text)."""
    if "\x00" in name:
        raise ValueError("an SQLite identifier cannot hold NUL")
    return '"' + name.replace('"', '""') + '"'


def fold(name: str) -> str:
    """SQLite compares identifiers case-insensitively, folding ASCII letters only."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def is_identifier(value: Any) -> bool:
    """A string SQLite can hold as an identifier (a name read from a file is checked before it
    is quoted)."""
    return isinstance(value, str) and 0 < len(value) <= 10_000 and "\x00" not in value


def _safe_name(name: str) -> bool:
    """A name kept as it is: printable (no control character, so the shell shows it on one
    line) and not reserved."""
    return (0 < len(name) <= 200 and not any(ord(c) < 32 or ord(c) == 127 for c in name)
            and not fold(name).startswith(RESERVED_PREFIXES))


def _pick(name: str, fallback: str, used: set[str]) -> str:
    """``name`` if it is safe and free (case-insensitively), else ``fallback`` (``_`` appended
    until free); records the choice in ``used``."""
    choice = name if _safe_name(name) and fold(name) not in used else fallback
    while fold(choice) in used:
        choice += "_"
    used.add(fold(choice))
    return choice


# --------------------------------------------------------------------------------------------
# values: Arrow columns <-> stored SQLite values
# --------------------------------------------------------------------------------------------


def storage_of(arrow_type: pa.DataType) -> str:
    """How a column is stored: a text-format codec (``bool``, ``int``, ``float``, ``text``,
    ``binary``, ``date``, ``time``, ``datetime``, ``timestamptz``) or ``uint``."""
    return "uint" if arrow_type == pa.uint64() else codec_of(arrow_type)


#: storage -> (declared SQLite type, what the column comment adds)
_DECLARED: dict[str, tuple[str, str]] = {
    "bool": ("INTEGER", "0 or 1"),
    "int": ("INTEGER", ""),
    "uint": ("TEXT", "decimal text: SQLite integers are signed"),
    "float": ("", "REAL, NaN as 'NaN'; untyped so that SQLite keeps -0.0"),
    "text": ("TEXT", ""),
    "binary": ("BLOB", ""),
    "date": ("TEXT", "ISO date, 'infinity'/'-infinity'"),
    "time": ("TEXT", "ISO time of day"),
    "datetime": ("TEXT", "ISO timestamp, 'infinity'/'-infinity'"),
    "timestamptz": ("TEXT", "ISO timestamp in UTC, 'infinity'/'-infinity'"),
}


def _nan_to_text(value: float | None) -> float | str | None:
    return "NaN" if value is not None and math.isnan(value) else value


def stored_values(array: pa.Array, storage: str) -> list[Any]:
    """One column of a batch as the Python values bound into SQLite (``None`` = NULL)."""
    if storage == "bool":
        return [None if v is None else int(v) for v in array.to_pylist()]
    if storage == "uint":
        return [None if v is None else str(v) for v in array.to_pylist()]
    if storage == "float":
        return [_nan_to_text(v) for v in array.to_pylist()]
    if storage in ("int", "text", "binary"):
        return list(array.to_pylist())
    if storage == "date":
        return [None if v is None else format_date(v) for v in array.view(pa.int32()).to_pylist()]
    ints = array.view(pa.int64()).to_pylist()
    if storage == "time":
        return [None if v is None else format_time(v) for v in ints]
    utc = storage == "timestamptz"
    return [None if v is None else format_timestamp(v, utc) for v in ints]


def _bad(value: Any, what: str) -> ValueError:
    return ValueError(f"expected {what}, found {value!r:.60}")


def _decode_value(value: Any, storage: str) -> Any:
    """A stored value back to what Arrow builds the column from (ints for temporal kinds)."""
    if value is None:
        return None
    kind = type(value)
    if storage == "bool":
        if kind is not int or value not in (0, 1):
            raise _bad(value, "0 or 1")
        return value == 1
    if storage == "int":
        if kind is not int:
            raise _bad(value, "an integer")
        return value
    if storage == "uint":
        if kind is not str or not _UNSIGNED.fullmatch(value):
            raise _bad(value, "unsigned decimal text")
        return int(value)
    if storage == "float":
        if kind is float or kind is int:
            return float(value)
        if value == "NaN":
            return math.nan
        raise _bad(value, "a REAL or 'NaN'")
    if storage == "text":
        if kind is not str:
            raise _bad(value, "TEXT")
        return value
    if storage == "binary":
        if kind is not bytes:
            raise _bad(value, "a BLOB")
        return value
    if kind is not str:
        raise _bad(value, "ISO TEXT")
    if storage == "date":
        return parse_date(value)
    if storage == "time":
        return parse_time(value)
    return parse_timestamp(value, storage == "timestamptz")


def decode_column(values: list[Any], storage: str, field: pa.Field) -> pa.Array:
    """Stored values of one column to an Arrow array of the field's type (raises
    ``ValueError``/``TypeError``/Arrow errors on a value that does not fit)."""
    decoded = [_decode_value(v, storage) for v in values]
    if storage in ("date", "time", "datetime", "timestamptz"):
        ints = pa.array(decoded, pa.int32() if storage == "date" else pa.int64())
        return ints.view(field.type)
    return pa.array(decoded, field.type)


def digest_header(data_table: str, columns: list[str]) -> bytes:
    return b"dbcrate sqlite chunk\n" + json.dumps([data_table, columns]).encode() + b"\n"


def digest_rows(sha: Any, rows: Iterable[tuple[Any, ...]]) -> int:
    """Feed stored rows to ``sha`` in the canonical serialization; returns its length.

    Per value: ``N`` (NULL); ``I`` + 8-byte big-endian signed integer; ``F`` + 8-byte
    big-endian IEEE 754 double (keeps -0.0); ``T`` + 8-byte big-endian length + UTF-8;
    ``B`` + 8-byte big-endian length + bytes. Rows are ``dbcrate_row`` then the columns.
    """
    size = 0
    parts: list[bytes] = []
    for row in rows:
        for value in row:
            kind = type(value)
            if value is None:
                parts.append(b"N")
            elif kind is int:
                parts.append(b"I" + _INT64.pack(value))
            elif kind is float:
                parts.append(b"F" + _FLOAT.pack(value))
            elif kind is str:
                data = value.encode("utf-8", "surrogatepass")
                parts.append(b"T" + _LENGTH.pack(len(data)) + data)
            elif kind is bytes:
                parts.append(b"B" + _LENGTH.pack(len(value)) + value)
            else:
                raise TypeError(f"unexpected stored value {value!r:.40}")
        block = b"".join(parts)
        parts.clear()
        sha.update(block)
        size += len(block)
    return size


def chunk_digest(data_table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> tuple[str, int]:
    """(SHA-256 hex, size) of a chunk: a header naming the data table and columns (JSON),
    then the rows (see :func:`digest_rows`)."""
    sha = hashlib.sha256()
    header = digest_header(data_table, columns)
    sha.update(header)
    size = len(header) + digest_rows(sha, rows)
    return sha.hexdigest(), size


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


@dataclass
class Layout:
    """Where one archived table lives in the file."""

    number: int
    name: str
    data_table: str
    columns: list[str]  # data column names, in the archived column order
    storages: list[str]  # storage_of() of each column
    rows: int = 0
    #: the archived column names (as dbcrate_columns records them)
    names: list[str] | None = None


class SqliteWriter(ContainerWriter):
    """Writes the ``sqlite`` kind (see the module docstring). An existing file at the final
    name is replaced when the new one is complete, like a tar archive; a directory is refused.
    """

    kind = KIND
    member_based = False

    def __init__(self, path: str | os.PathLike[str], *, data_format: str | None = None,
                 mtime: float | None = None, overwrite: bool = False, format_version: int = 1,
                 compression_level: int = DEFAULT_COMPRESSION_LEVEL) -> None:
        self.data_format = row_kind_format(KIND, data_format)
        if str(path) == "-":
            raise UsageError("an SQLite file cannot be written to standard output",
                             hint="give a file name, or use the tar kind")
        self.final = Path(path)
        if self.final.is_dir():
            raise OutputError(f"the output {self.final} is a directory",
                              hint="give a file name, e.g. backup.sqlite")
        check_parent(self.final)
        self._tmp: Path | None = temp_name(self.final)
        os.close(create_private_file(self._tmp))  # 0600 and O_EXCL before SQLite opens it
        self._layouts: dict[int, Layout] = {}
        self._used = {fold(n) for n in (META_ARCHIVE, META_TABLES, META_COLUMNS)}
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self._tmp, isolation_level=None, check_same_thread=False)
            # no journal, no fsync per transaction: the whole file is discarded on failure and
            # fsynced once at the end
            for pragma in ("journal_mode = OFF", "synchronous = OFF",
                           f"application_id = {APPLICATION_ID}"):
                self._conn.execute(f"PRAGMA {pragma}")
            self._conn.execute("BEGIN")
            self._conn.execute(f"CREATE TABLE {META_ARCHIVE} (name TEXT PRIMARY KEY, "
                               "content TEXT NOT NULL)")
            self._conn.execute(f"CREATE TABLE {META_TABLES} (number INTEGER PRIMARY KEY, "
                               "name TEXT NOT NULL, data_table TEXT NOT NULL, "
                               "rows INTEGER NOT NULL)")
            self._conn.execute(f"CREATE TABLE {META_COLUMNS} (table_number INTEGER NOT NULL, "
                               "position INTEGER NOT NULL, name TEXT NOT NULL, "
                               "data_column TEXT NOT NULL, logical_type TEXT NOT NULL, "
                               "PRIMARY KEY (table_number, position))")
        except sqlite3.Error as exc:
            self.abort()
            raise OutputError(f"cannot write {self.final}: {exc}") from None
        except BaseException:
            self.abort()
            raise

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutputError(f"{self.final}: the writer is closed")
        return self._conn

    def begin_table(self, number: int, entry: TableEntry) -> None:
        schema = arrow_schema(entry)
        data_table = _pick(entry.name, f"t{number:04d}", self._used)
        used_columns = {fold(ROW_COLUMN)}
        columns = [_pick(c.name, f"c{i:04d}", used_columns)
                   for i, c in enumerate(entry.schema.columns, start=1)]
        storages = [storage_of(f.type) for f in schema]
        layout = Layout(number, entry.name, data_table, columns, storages)
        definitions = [f"{quote(ROW_COLUMN)} INTEGER PRIMARY KEY"]
        for column, logical, storage in zip(columns, entry.schema.columns, storages):
            declared, note = _DECLARED[storage]
            # the comment is kept in sqlite_master, so '.schema' shows the logical type; it is
            # built from closed vocabularies (kind names and integers), never from names
            comment = logical.type.describe() + (f"; {note}" if note else "")
            parts = [quote(column), declared, f"/* {comment} */"]
            definitions.append(" ".join(p for p in parts if p))
        db = self._db()
        try:
            db.execute(f"CREATE TABLE {quote(data_table)} (\n  " + ",\n  ".join(definitions)
                       + "\n)")
            db.executemany(
                f"INSERT INTO {META_COLUMNS} VALUES (?, ?, ?, ?, ?)",
                [(number, i, c.name, column, c.type.describe())
                 for i, (c, column) in enumerate(zip(entry.schema.columns, columns), start=1)])
        except sqlite3.Error as exc:
            raise OutputError(f"cannot write {self.final}: {exc}") from None
        self._layouts[number] = layout

    def write_chunk(self, number: int, index: int, entry: TableEntry,
                    batches: Iterable[pa.RecordBatch]) -> Chunk:
        layout = self._layouts[number]
        sql = (f"INSERT INTO {quote(layout.data_table)} ("
               + ", ".join(quote(c) for c in [ROW_COLUMN, *layout.columns]) + ") VALUES ("
               + ", ".join("?" * (len(layout.columns) + 1)) + ")")
        sha = hashlib.sha256()
        header = digest_header(layout.data_table, layout.columns)
        sha.update(header)
        size = len(header)
        rows = 0
        db = self._db()
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                piece = batch.slice(start, BATCH_ROWS)
                first = layout.rows + 1
                numbers = range(first, first + piece.num_rows)
                values = [stored_values(piece.column(i), s) for i, s in enumerate(layout.storages)]
                stored = list(zip(numbers, *values))
                try:
                    db.executemany(sql, stored)
                except sqlite3.Error as exc:
                    raise OutputError(f"cannot write {self.final}: {exc}") from None
                size += digest_rows(sha, stored)
                layout.rows += piece.num_rows
                rows += piece.num_rows
        return Chunk(member_name(number, index, KIND), rows, size, sha.hexdigest())

    def commit(self, manifest: Manifest) -> None:
        """Record the row totals and the three documents, close, fsync, rename into place."""
        self.check_manifest(manifest)
        for number, entry in enumerate(manifest.tables, start=1):
            if number not in self._layouts:  # a table without rows may not have been begun
                self.begin_table(number, entry)
        raw = manifest.to_json()
        marker = json.dumps({"format": FORMAT_NAME, "format_version": manifest.format_version})
        db = self._db()
        try:
            db.executemany(f"INSERT INTO {META_TABLES} VALUES (?, ?, ?, ?)",
                           [(t.number, t.name, t.data_table, t.rows)
                            for t in self._layouts.values()])
            db.executemany(f"INSERT INTO {META_ARCHIVE} VALUES (?, ?)", [
                (MARKER, marker),
                (MANIFEST, raw.decode("utf-8")),
                (MANIFEST_DIGEST, hashlib.sha256(raw).hexdigest() + "\n"),
            ])
            db.execute("COMMIT")
            db.close()
            self._conn = None
            assert self._tmp is not None
            fsync_path(self._tmp)
            os.replace(self._tmp, self.final)
            self._tmp = None
            fsync_path(self.final.parent)
        except (sqlite3.Error, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot finish {self.final}: {exc}") from None

    def abort(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if self._tmp is not None:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(str(self._tmp) + suffix).unlink(missing_ok=True)
            self._tmp = None
