"""Reading the ``sqlite`` kind (the layout is described in :mod:`dbcrate.containers.sqlite`,
which writes it): the file is opened read-only, its metadata tables and data tables are checked
against the manifest before any row is read, and each chunk's rows are hashed and decoded back
into Arrow batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dbcrate.containers.base import (
    MANIFEST,
    MANIFEST_DIGEST,
    MARKER,
    Archive,
    arrow_schema,
    check_marker,
    checked_manifest,
    refuse_edits,
)
from dbcrate.containers.sqlite import (
    APPLICATION_ID,
    BATCH_ROWS,
    KIND,
    META_ARCHIVE,
    META_COLUMNS,
    META_TABLES,
    RESERVED_PREFIXES,
    ROW_COLUMN,
    Layout,
    decode_column,
    digest_header,
    digest_rows,
    fold,
    is_identifier,
    quote,
    storage_of,
)
from dbcrate.containers.traits import is_sqlite_file as is_sqlite_file
from dbcrate.errors import ArchiveCorrupt, NotAnArchive
from dbcrate.model.manifest import Chunk, TableEntry


@dataclass(frozen=True)
class _ChunkPlace:
    layout: Layout
    entry: TableEntry
    first_row: int  # dbcrate_row of the chunk's first row


class SqliteArchive(Archive):
    """The ``sqlite`` kind, read (see the module docstring). Each read opens its own read-only
    connection, so chunks can be read from several threads at once."""

    kind = KIND

    def __init__(self, path: str | os.PathLike[str], *, accept_edits: bool = False,
                 keys: object = None) -> None:  # keys: only a tar is sealed
        if accept_edits:
            refuse_edits(self.kind, str(path))
        self.path = str(path)
        file = Path(path)
        if self.path == "-" or not file.is_file():
            raise NotAnArchive(f"{self.path} is not an SQLite file",
                               hint="an SQLite archive is read from a file, not a stream")
        if not is_sqlite_file(file):
            raise NotAnArchive(f"{self.path} is not an SQLite database file")
        # immutable=1: no lock, no journal or WAL file is created or read beside it
        self._uri = file.resolve().as_uri() + "?mode=ro&immutable=1"
        self._places: dict[str, _ChunkPlace] = {}
        with self._connection() as db:
            try:
                self._open(db)
            except sqlite3.Error as exc:
                raise NotAnArchive(f"{self.path}: unreadable SQLite archive: {exc}") from None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise NotAnArchive(f"cannot open {self.path}: {exc}") from None
        try:
            db.execute("PRAGMA query_only = ON")
            # no function or virtual table named in the schema runs (views and triggers are
            # refused anyway)
            db.execute("PRAGMA trusted_schema = OFF")
            yield db
        finally:
            db.close()

    def _open(self, db: sqlite3.Connection) -> None:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        names = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id != APPLICATION_ID or META_ARCHIVE not in names:
            raise NotAnArchive(f"{self.path} is an SQLite database, but not a dbcrate archive",
                               hint="dbcrate SQLite archives are written by "
                               "'dbcrate dump --as sqlite' or 'dbcrate convert'")
        documents: dict[str, Any] = {}
        for name, content in db.execute(f"SELECT name, content FROM {META_ARCHIVE}"):
            documents[name] = content
        for name in (MARKER, MANIFEST, MANIFEST_DIGEST):
            if not isinstance(documents.get(name), str):
                raise ArchiveCorrupt(f"{self.path}: {META_ARCHIVE} has no {name}", member=name)
        version = check_marker(documents[MARKER].encode("utf-8"), self.path)
        self.manifest = checked_manifest(
            documents[MANIFEST].encode("utf-8"), documents[MANIFEST_DIGEST].encode("utf-8"),
            self.path, version)
        if self.manifest.data_format != KIND:
            raise NotAnArchive(f"{self.path}: the manifest says data format "
                               f"{self.manifest.data_format!r}, not {KIND!r}")
        if getattr(self.manifest, "storage", None):
            raise ArchiveCorrupt(f"{self.path}: an SQLite archive cannot hold storages")
        layouts = self._read_layouts(db)
        self._check_schema_objects(db, {lay.data_table for lay in layouts.values()})
        for entry in self.manifest.tables:
            layout = layouts.get(entry.name)
            if layout is None:
                raise ArchiveCorrupt(f"{self.path}: table {entry.name!r} has no data table")
            self._check_data_table(db, entry, layout)
            first = 1
            for chunk in entry.chunks:
                self._places[chunk.member] = _ChunkPlace(layout, entry, first)
                first += chunk.rows

    def _read_layouts(self, db: sqlite3.Connection) -> dict[str, Layout]:
        """The metadata tables' mapping, checked to be well-formed and to name exactly the
        manifest's tables (names from the file only ever reach SQL quoted)."""
        layouts: dict[str, Layout] = {}
        numbers: dict[int, Layout] = {}
        used: set[str] = set()

        def bad(table: str) -> ArchiveCorrupt:
            return ArchiveCorrupt(f"{self.path}: the metadata table {table} is malformed")

        for number, name, data_table, rows in db.execute(
                f"SELECT number, name, data_table, rows FROM {META_TABLES} ORDER BY number"):
            if not (isinstance(name, str) and is_identifier(data_table) and name not in layouts
                    and fold(data_table) not in used and type(rows) is int
                    and not fold(data_table).startswith(RESERVED_PREFIXES)):
                raise bad(META_TABLES)
            used.add(fold(data_table))
            layouts[name] = numbers[number] = Layout(number, name, data_table, [], [], rows, [])
        if set(layouts) != {t.name for t in self.manifest.tables}:
            raise ArchiveCorrupt(f"{self.path}: {META_TABLES} does not list the manifest's tables")
        for number, position, name, data_column in db.execute(
                f"SELECT table_number, position, name, data_column FROM {META_COLUMNS} "
                "ORDER BY table_number, position"):
            layout = numbers.get(number)
            if (layout is None or layout.names is None or position != len(layout.columns) + 1
                    or not isinstance(name, str) or not is_identifier(data_column)):
                raise bad(META_COLUMNS)
            layout.columns.append(data_column)
            layout.names.append(name)
        return layouts

    def _check_schema_objects(self, db: sqlite3.Connection, data_tables: set[str]) -> None:
        """Nothing but the metadata and data tables (and SQLite's automatic indexes of their
        keys): a view or trigger could run SQL, an unknown table would be data nobody lists."""
        allowed = {META_ARCHIVE, META_TABLES, META_COLUMNS, *data_tables}
        for kind, name, table in db.execute("SELECT type, name, tbl_name FROM sqlite_master"):
            ok = (kind == "table" and name in allowed) or (
                kind == "index" and isinstance(name, str)
                and name.startswith("sqlite_autoindex_") and table in allowed)
            if not ok:
                raise NotAnArchive(f"{self.path}: unexpected {kind} {name!r} in the SQLite file; "
                                   "a dbcrate SQLite archive holds only its data and metadata "
                                   "tables")

    def _check_data_table(self, db: sqlite3.Connection, entry: TableEntry,
                          layout: Layout) -> None:
        if layout.names != [c.name for c in entry.schema.columns] or layout.rows != entry.rows:
            raise ArchiveCorrupt(f"{self.path}: the metadata of table {entry.name!r} differs "
                                 "from the manifest")
        layout.storages = [storage_of(f.type) for f in arrow_schema(entry)]
        info = db.execute(f"PRAGMA table_info({quote(layout.data_table)})").fetchall()
        found = [row[1] for row in info]
        if found != [ROW_COLUMN, *layout.columns] or info[0][5] != 1:
            raise ArchiveCorrupt(f"{self.path}: data table {layout.data_table!r} (table "
                                 f"{entry.name!r}) does not have the recorded columns")
        low, high = db.execute(
            f"SELECT min({quote(ROW_COLUMN)}), max({quote(ROW_COLUMN)}) FROM "
            f"{quote(layout.data_table)}").fetchone()
        # dbcrate_row is the key (unique integers), so min 1 and max n = entry.rows leave room
        # for no other row (O(log n), not a count); each chunk read checks its range has no gap
        expected = (1, entry.rows) if entry.rows else (None, None)
        if (low, high) != expected:
            raise ArchiveCorrupt(f"{self.path}: data table {layout.data_table!r} (table "
                                 f"{entry.name!r}) holds rows the manifest does not list")

    def _place(self, chunk: Chunk) -> _ChunkPlace:
        place = self._places.get(chunk.member)
        if place is None:
            raise ArchiveCorrupt(f"{self.path}: no chunk {chunk.member}", member=chunk.member)
        return place

    def _rows(self, db: sqlite3.Connection, chunk: Chunk) -> Iterator[list[tuple[Any, ...]]]:
        """The stored rows of a chunk, in batches, row numbers checked consecutive."""
        place = self._place(chunk)
        layout = place.layout
        sql = (f"SELECT {', '.join(quote(c) for c in [ROW_COLUMN, *layout.columns])} "
               f"FROM {quote(layout.data_table)} WHERE {quote(ROW_COLUMN)} >= ? AND "
               f"{quote(ROW_COLUMN)} < ? ORDER BY {quote(ROW_COLUMN)}")
        cursor = db.execute(sql, (place.first_row, place.first_row + chunk.rows))
        expected = place.first_row
        while rows := cursor.fetchmany(BATCH_ROWS):
            for row in rows:
                if row[0] != expected:
                    raise ArchiveCorrupt(f"{self.path}: chunk {chunk.member} (table "
                                         f"{place.entry.name!r}) misses row {expected}",
                                         member=chunk.member)
                expected += 1
            yield rows
        if expected != place.first_row + chunk.rows:
            raise ArchiveCorrupt(f"{self.path}: chunk {chunk.member} (table {place.entry.name!r}) "
                                 f"holds {expected - place.first_row} rows, the manifest says "
                                 f"{chunk.rows}", member=chunk.member)

    def check_chunk(self, chunk: Chunk) -> None:
        place = self._place(chunk)
        sha = hashlib.sha256()
        header = digest_header(place.layout.data_table, place.layout.columns)
        sha.update(header)
        size = len(header)
        with self._connection() as db:
            try:
                for rows in self._rows(db, chunk):
                    size += digest_rows(sha, rows)
            except (sqlite3.Error, TypeError) as exc:
                raise ArchiveCorrupt(f"{self.path}: cannot read chunk {chunk.member}: {exc}",
                                     member=chunk.member) from None
        if size != chunk.size or sha.hexdigest() != chunk.sha256:
            raise ArchiveCorrupt(
                f"{self.path}: chunk {chunk.member} (table {place.entry.name!r}) does not match "
                "its SHA-256 in the manifest", member=chunk.member)

    def chunk_batches(self, entry: TableEntry, chunk: Chunk, *,
                      verify: bool = True) -> Iterator[pa.RecordBatch]:
        if verify:
            self.check_chunk(chunk)
        place = self._place(chunk)
        if place.entry is not entry and place.entry.name != entry.name:
            raise ArchiveCorrupt(f"{self.path}: chunk {chunk.member} is not of table "
                                 f"{entry.name!r}", member=chunk.member)
        schema = arrow_schema(entry)
        storages = place.layout.storages
        with self._connection() as db:
            try:
                for rows in self._rows(db, chunk):
                    columns = list(zip(*rows))[1:] if rows else []
                    arrays = [decode_column(list(values), storage, field)
                              for values, storage, field in zip(columns, storages, schema)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            except ArchiveCorrupt:
                raise
            except (sqlite3.Error, ValueError, TypeError, OverflowError,
                    pa.ArrowException) as exc:
                raise ArchiveCorrupt(
                    f"{self.path}: chunk {chunk.member} (table {entry.name!r}) cannot be "
                    f"decoded: {exc}", member=chunk.member) from None

    def check_chunk_structure(self, entry: TableEntry, chunk: Chunk) -> None:
        for _ in self.chunk_batches(entry, chunk, verify=False):
            pass

    def close(self) -> None:
        """Nothing to release: every read opens and closes its own connection."""
