"""Dump: plan the tables to read, then stream each one into bounded data members.

All tables are read inside one snapshot on one connection (see each dialect's
``begin_snapshot``). Each data member is encoded into a private temp file (bounded memory),
hashed while it is appended to the tar, and the manifest is written last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import sqlite3
import tempfile
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
import pymysql
import sqlalchemy as sa

from dbcrate import __version__
from dbcrate.connect import open_engine, public_url
from dbcrate.containers.kinds import get_kind
from dbcrate.containers.tar import ArchiveWriter
from dbcrate.containers.writers import open_dump_writer
from dbcrate.dialects import Dialect, engine_name
from dbcrate.dump.readahead import ReadAhead
from dbcrate.errors import (
    DatabaseError,
    DbcrateError,
    OutputError,
    SourceValueError,
    UsageError,
    driver_message,
)
from dbcrate.formats.registry import ChunkWriter, get_format
from dbcrate.hooks import load_hooks
from dbcrate.model.manifest import BASE_FORMAT_VERSION, FORMAT_VERSION, Chunk, Manifest, Source, TableEntry
from dbcrate.model.schema import Table
from dbcrate.model.selection import select_tables
from dbcrate.options import DumpOptions
from dbcrate.progress import Event, drain
from dbcrate.restore.journal import JOURNAL_TABLE
from dbcrate.storages.dump import (
    MemberSink,
    StorageSpec,
    StorageWriter,
    check_output_outside,
    resolve_storages,
    survey,
)
from dbcrate.storages.file_check import FileCheck, parse_file_column
from dbcrate.storages.index import FileColumn, StorageManifest


@dataclass
class DumpPlan:
    """What a dump will do: the tables, in order, with their schema and an estimate of rows."""

    source: Source
    tables: list[Table]
    estimated_rows: dict[str, int | None] = field(default_factory=dict)
    #: per storage: name, path, files, bytes, directories, warnings (``dump --check``)
    storages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.to_dict(),
            "storages": self.storages,
            "tables": [
                {
                    "name": t.name,
                    "columns": len(t.columns),
                    "estimated_rows": self.estimated_rows.get(t.name),
                    "skipped_objects": t.skipped,
                }
                for t in self.tables
            ],
        }


@dataclass
class DumpResult:
    """What a finished dump wrote."""

    path: str
    manifest: Manifest
    seconds: float
    warnings: list[str] = field(default_factory=list)


def _estimate_rows(conn: sa.Connection, dialect: Dialect, name: str) -> int | None:
    try:
        return dialect.estimate_rows(conn, name)
    except sa.exc.DBAPIError:
        return None


def plan_dump(conn: sa.Connection, dialect: Dialect, url: sa.URL, options: DumpOptions) -> DumpPlan:
    """Reflect the selected tables (inside the snapshot already begun on ``conn``)."""
    available = [n for n in dialect.list_tables(conn) if n != JOURNAL_TABLE]
    names = select_tables(available, options.include, options.exclude, "the source")
    source = Source(
        engine=engine_name(dialect),
        server_version=dialect.server_version(conn),
        url=public_url(url),
        database=url.database,
        driver=url.get_driver_name(),
    )
    tables = [dialect.reflect(conn, n) for n in names]
    _refuse_empty_names(tables)
    hooks = load_hooks(options.hooks)
    if hooks.dump_table_filter is not None:
        tables = [t for t in tables if hooks.dump_table_filter(t)]
        names = [t.name for t in tables]
    return DumpPlan(source, tables, {n: _estimate_rows(conn, dialect, n) for n in names})


def _refuse_empty_names(tables: list[Table]) -> None:
    """SQLite accepts a table or column named ``""``; no archive can name it (the manifest
    requires non-empty names), so the dump refuses it before writing anything."""
    for table in tables:
        empty = [i for i, c in enumerate(table.columns, start=1) if not c.name]
        if not table.name or empty:
            where = ("a table named ''" if not table.name else
                     f"table {table.name!r}, column {empty[0]} is named ''")
            raise SourceValueError(f"{where}: an archive cannot name it",
                                   hint="rename it in the source, or leave the table out with -T")


def plan(url: str, options: DumpOptions | None = None) -> DumpPlan:
    """What :func:`dump` would read, without writing anything (``dbcrate dump --check``):
    the tables with estimated rows, and the storages' file counts and sizes."""
    options = options or DumpOptions()
    specs, _columns = _storage_plan(options)
    storages = survey(specs, options.storage_exclude)
    if options.no_data:
        return DumpPlan(_offline_source(url), [], {}, storages)
    engine, dialect, parsed = open_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            dialect.begin_snapshot(conn)
            try:
                result = plan_dump(conn, dialect, parsed, options)
                result.storages = storages
                return result
            finally:
                dialect.end_snapshot(conn)
    except sa.exc.DBAPIError as exc:
        raise _db_error("reading the source schema", exc) from None
    finally:
        engine.dispose()


def _offline_source(url: str) -> Source:
    """The source as the URL names it, without connecting (``--no-data``)."""
    parsed = sa.engine.make_url(url) if "://" in url else None
    if parsed is None:
        return Source(engine="", server_version="", url="")
    return Source(engine=parsed.get_backend_name(), server_version="", url=public_url(parsed),
                  database=parsed.database)


@dataclass
class DumpTask:
    """One independent unit of reading: a table, or a key range of a big table."""

    number: int
    table: Table
    key_range: tuple[int, int] | None = None


@dataclass
class EncodedChunk:
    """A data member encoded into a private temp file, waiting to be appended to the tar."""

    spool: IO[bytes]
    rows: int
    size: int


def plan_tasks(conn: sa.Connection, dialect: Dialect, plan: DumpPlan, options: DumpOptions) -> list[DumpTask]:
    """Tables in plan order; with several jobs, big tables split by primary-key ranges."""
    tasks: list[DumpTask] = []
    for number, table in enumerate(plan.tables, start=1):
        estimate = plan.estimated_rows.get(table.name) or 0
        ranges = None
        if options.jobs > 1 and dialect.parallel_dump and estimate > options.chunk_rows:
            parts = min(64, -(-estimate // options.chunk_rows))
            ranges = dialect.key_ranges(conn, table, max(parts, options.jobs))
        if ranges:
            tasks.extend(DumpTask(number, table, r) for r in ranges)
        else:
            tasks.append(DumpTask(number, table))
    return tasks


def encode_task(
    conn: sa.Connection, dialect: Dialect, task: DumpTask, fmt: Any, options: DumpOptions
) -> list[EncodedChunk]:
    """Read one task's rows and encode them into chunk files of at most ``chunk_rows`` rows."""
    chunks: list[EncodedChunk] = []
    spool: IO[bytes] | None = None
    chunk_writer: ChunkWriter | None = None
    rows = 0
    nbytes = 0

    def finish() -> None:
        nonlocal spool, chunk_writer, rows, nbytes
        assert spool is not None and chunk_writer is not None
        chunk_writer.close()
        size = spool.tell()
        spool.seek(0)
        chunks.append(EncodedChunk(spool, rows, size))
        spool, chunk_writer, rows, nbytes = None, None, 0, 0

    rows_of = dialect.read_table(conn, task.table, options.batch_rows, task.key_range)
    try:
        ahead = ReadAhead(rows_of) if dialect.read_ahead else contextlib.nullcontext(rows_of)
        with ahead as batches:  # the next batch is read while this one encodes
            for batch in batches:
                start = 0
                while start < batch.num_rows:
                    if chunk_writer is None:
                        spool = tempfile.TemporaryFile(prefix="dbcrate-chunk-")
                        chunk_writer = fmt.open_writer(spool, batch.schema, options.compression_level)
                    take = min(batch.num_rows - start, options.chunk_rows - rows)
                    if nbytes and batch.num_rows:
                        per_row = max(1, batch.nbytes // batch.num_rows)
                        take = max(1, min(take, (options.chunk_bytes - nbytes) // per_row))
                    piece = batch.slice(start, take)
                    chunk_writer.write(piece)
                    rows += take
                    nbytes += piece.nbytes
                    start += take
                    if rows >= options.chunk_rows or nbytes >= options.chunk_bytes:
                        finish()
        if chunk_writer is not None and rows:
            finish()
    except SourceValueError as exc:  # a value the format cannot write: name the table
        _discard(chunk_writer, spool, chunks)
        if task.table.name in exc.message:
            raise
        raise SourceValueError(f"table {task.table.name!r}: {exc.message}", hint=exc.hint) \
            from None
    except BaseException:
        _discard(chunk_writer, spool, chunks)
        raise
    return chunks


def _discard(chunk_writer: ChunkWriter | None, spool: IO[bytes] | None,
             chunks: list[EncodedChunk]) -> None:
    """Drop a failed task's spools."""
    if chunk_writer is not None:  # before its file: a writer collected later would write
        with contextlib.suppress(Exception):  # to the closed file and print a traceback
            chunk_writer.close()
    if spool is not None:
        spool.close()
    for chunk in chunks:
        chunk.spool.close()


class _ConnectionPool:
    """Connections that all read the same snapshot; one per job."""

    def __init__(self, leader: sa.Connection, workers: list[sa.Connection]) -> None:
        self._free: queue.Queue[sa.Connection] = queue.Queue()
        for conn in [leader, *workers]:
            self._free.put(conn)

    def run(self, fn: Any, *args: Any) -> Any:
        conn = self._free.get()
        try:
            return fn(conn, *args)
        finally:
            self._free.put(conn)


def _storage_plan(options: DumpOptions) -> tuple[list[StorageSpec], list[FileColumn]]:
    if options.no_data and options.no_storages:
        raise UsageError("--no-data and --no-storages leave nothing to dump")
    specs = [] if options.no_storages else resolve_storages(options.storages,
                                                            options.storages_basepath)
    if options.no_data and not specs:
        raise UsageError("--no-data needs at least one --storage")
    default_root = specs[0].name if specs else None
    columns = [parse_file_column(c, default_root) for c in options.file_columns]
    names = {s.name for s in specs}
    for column in columns:
        if column.root not in names:
            raise UsageError(f"the file column {column.table}.{column.column} names the storage "
                             f"{column.root!r}, which is not dumped",
                             hint="storages: " + (", ".join(sorted(names)) or "none"))
    return specs, columns


def iter_dump(
    url: str, output: str | os.PathLike[str], options: DumpOptions | None = None
) -> Generator[Event, None, DumpResult]:
    """Dump the database at ``url`` (and the storages of ``options``) into the archive
    ``output`` (``"-"`` = stdout).

    Yields progress events; the generator's return value is the :class:`DumpResult`.
    The archive appears under ``output`` only when complete (temp file, fsync, rename).
    With ``options.jobs > 1`` tables and key ranges of big tables are read in parallel, every
    connection in the same snapshot. Storages are written after the data, then the manifest.
    """
    options = options or DumpOptions()
    get_kind(options.container)  # an unknown kind is refused before anything is opened
    fmt = get_format(options.data_format)
    specs, file_columns = _storage_plan(options)
    check_output_outside(str(output), specs)
    started = time.monotonic()
    created = dt.datetime.now(dt.UTC)
    version = FORMAT_VERSION if specs else BASE_FORMAT_VERSION
    if options.no_data:
        result = yield from _dump_storages_only(url, output, options, specs, created, version)
        result.seconds = time.monotonic() - started
        return result
    engine, dialect, parsed = open_engine(url, read_only=True)
    written = 0
    warnings: list[str] = []
    extra: list[sa.Connection] = []
    try:
        with _connection(engine) as conn:
            try:
                dialect.begin_snapshot(conn)
                plan = plan_dump(conn, dialect, parsed, options)
                tasks = plan_tasks(conn, dialect, plan, options)
                jobs = min(options.jobs, len(tasks)) if dialect.parallel_dump else 1
                if jobs > 1:
                    extra = [engine.connect() for _ in range(jobs - 1)]
                    dialect.share_snapshot(conn, extra)
            except DRIVER_ERRORS as exc:
                raise _db_error("reading the source schema", exc) from None
            _check_file_columns(file_columns, plan)
            yield Event("plan", 0, len(plan.tables), f"{len(plan.tables)} tables to dump")
            manifest = Manifest(
                source=plan.source,
                created_at=created.isoformat().replace("+00:00", "Z"),
                dbcrate_version=__version__,
                data_format=fmt.name,
                schema_version=options.schema_version,
                format_version=version,
            )
            entries = {t.name: TableEntry(schema=t) for t in plan.tables}
            manifest.tables = [entries[t.name] for t in plan.tables]
            pool = _ConnectionPool(conn, extra)
            with _open_writer(output, created, version, options, fmt.name,
                              plan.tables) as writer, ThreadPoolExecutor(
                max_workers=jobs, thread_name_prefix="dbcrate-dump"
            ) as executor:
                todo = [] if options.schema_only else tasks
                run_task = _tolerant_task if options.tolerate else encode_task
                futures = [executor.submit(pool.run, run_task, dialect, t, fmt, options)
                           for t in todo]
                try:
                    for task, future in zip(todo, futures):
                        entry = entries[task.table.name]
                        estimate = plan.estimated_rows.get(task.table.name)
                        try:
                            encoded = future.result()
                        except DRIVER_ERRORS as exc:
                            raise _db_error(f"reading table {task.table.name!r}", exc) from None
                        except DatabaseError as exc:
                            raise DatabaseError(
                                f"the database failed while reading table "
                                f"{task.table.name!r}: {exc.message}", hint=exc.hint
                            ) from None
                        if isinstance(encoded, _Failed):
                            entry.status, entry.error = "failed", entry.error or encoded.message
                            manifest.complete = False
                            warnings.append(f"table {task.table.name!r} failed and is recorded "
                                            f"as failed: {encoded.message}")
                            yield Event("data", entry.rows, estimate,
                                        f"Failed table {task.table.name}", task.table.name)
                            continue
                        for chunk in encoded:
                            index = len(entry.chunks)
                            member = f"data/t{task.number:04d}/c{index:06d}.{fmt.extension}"
                            with chunk.spool:
                                sha = writer.add_file(member, chunk.spool, chunk.size)
                            entry.chunks.append(Chunk(member, chunk.rows, chunk.size, sha))
                            written += chunk.size
                        yield Event("data", entry.rows, estimate, f"Dump table {task.table.name}",
                                    task.table.name, rows=entry.rows, bytes=written)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    for f in futures:
                        if f.done() and not f.cancelled() and f.exception() is None:
                            for chunk in f.result() if isinstance(f.result(), list) else []:
                                chunk.spool.close()
                    raise
                if specs:
                    check = FileCheck() if file_columns else None
                    try:
                        manifest.storage = yield from _write_storages(
                            writer, specs, options, warnings, check, file_columns)
                        if check is not None:
                            for column in file_columns:
                                check.add_references(
                                    column, _column_values(conn, dialect, column))
                            manifest.storage.file_columns = file_columns
                            manifest.storage.file_check = check.result()
                    except DRIVER_ERRORS as exc:
                        raise _db_error("reading the file columns", exc) from None
                    finally:
                        if check is not None:
                            check.close()
                for c in [conn, *extra]:
                    dialect.end_snapshot(c)
                writer.commit(manifest)
    finally:
        for c in extra:
            with contextlib.suppress(Exception):
                c.invalidate()
        engine.dispose()
    yield Event("done", len(manifest.tables), len(manifest.tables), "Dump complete", bytes=written)
    return DumpResult(str(output), manifest, time.monotonic() - started, warnings)


def _open_writer(output: str | os.PathLike[str], created: dt.datetime, version: int,
                 options: DumpOptions, data_format: str, tables: list[Table]) -> Any:
    """The archive writer for ``options.container``: the tar writer itself, or an adapter that
    writes the same members into another kind (docs/CONTAINERS.md)."""
    if options.container == "tar":
        return ArchiveWriter(output, created.timestamp(), version, options.archive_mode)
    if str(output) == "-":
        raise UsageError(f"the {options.container} kind cannot be written to standard output",
                         hint="give a path, or dump --as tar")
    if options.storages and not options.no_storages and options.container != "directory":
        raise UsageError(f"storages (files beside the data) need the tar or directory kind, "
                         f"the {options.container} kind cannot hold them",
                         hint="dump with --as tar or --as directory, or leave out --storage")
    return open_dump_writer(output, options.container, tables=tables, data_format=data_format,
                            mtime=created.timestamp(), format_version=version,
                            overwrite=options.overwrite)


def _check_file_columns(columns: list[FileColumn], plan: DumpPlan) -> None:
    tables = {t.name: t for t in plan.tables}
    for column in columns:
        table = tables.get(column.table)
        if table is None or column.column not in table.column_names:
            raise UsageError(f"the file column {column.table}.{column.column} is not among the "
                             "dumped tables and columns")


def _column_values(conn: sa.Connection, dialect: Dialect, column: FileColumn) -> Iterator[Any]:
    """Non-empty values of one column, streamed (inside the dump's snapshot)."""
    sql = (f"SELECT {dialect.quote(column.column)} FROM {dialect.quote(column.table)} "
           f"WHERE {dialect.quote(column.column)} IS NOT NULL")
    # execution options on the statement, not the connection: Connection.execution_options()
    # changes the connection itself, and its later statements would stream too
    result = conn.exec_driver_sql(sql, execution_options={"stream_results": True,
                                                          "yield_per": 10_000})
    for (value,) in result:
        yield value


def _write_storages(writer: MemberSink, specs: list[StorageSpec], options: DumpOptions,
                    warnings: list[str], check: FileCheck | None,
                    file_columns: list[FileColumn]) -> Generator[Event, None, StorageManifest]:
    """Store every storage (after the data); the manifest section describing them. The stored
    paths of the storages that ``file_columns`` name go into ``check``."""
    storages = StorageWriter(writer, level=options.compression_level)
    checked = {c.root for c in file_columns}

    def on_file(root: str, path: str) -> None:
        if check is not None and root in checked:
            check.add_file(root, path)

    try:
        for name, files, size in storages.add_storages(specs, options.storage_exclude, on_file):
            yield Event("storage", files, None, f"Dump storage {name}", bytes=size)
        section = storages.finish(options.storage_exclude)
    except OSError as exc:  # the temp spools (disk full); a source file is handled in _add_file
        storages.close()
        raise OutputError(f"cannot store the storages: {exc.strerror or exc}",
                          hint="free space in the temporary directory (TMPDIR) and the output's"
                          ) from None
    except BaseException:
        storages.close()
        raise
    warnings.extend(storages.warnings)
    return section


def _dump_storages_only(url: str, output: str | os.PathLike[str], options: DumpOptions,
                        specs: list[StorageSpec], created: dt.datetime,
                        version: int) -> Generator[Event, None, DumpResult]:
    """``--no-data``: the storages alone; the database is not opened."""
    manifest = Manifest(
        source=_offline_source(url),
        created_at=created.isoformat().replace("+00:00", "Z"),
        dbcrate_version=__version__,
        schema_version=options.schema_version,
        format_version=version,
    )
    warnings: list[str] = []
    with _open_writer(output, created, version, options, options.data_format, []) as writer:
        manifest.storage = yield from _write_storages(writer, specs, options, warnings, None, [])
        writer.commit(manifest)
    yield Event("done", 0, 0, "Dump complete", bytes=manifest.storage.bytes)
    return DumpResult(str(output), manifest, 0.0, warnings)


@dataclass
class _Failed:
    """A task that failed under ``--tolerate``: the table is recorded as failed."""

    message: str


def _tolerant_task(conn: sa.Connection, dialect: Dialect, task: DumpTask, fmt: Any,
                   options: DumpOptions) -> list[EncodedChunk] | _Failed:
    """:func:`encode_task` inside a savepoint: a table that cannot be read (no privilege, a
    value dbcrate cannot carry, a broken table) is reported instead of ending the dump, and the
    savepoint keeps the snapshot's transaction usable for the next tables."""
    conn.exec_driver_sql("SAVEPOINT dbcrate_task")
    try:
        chunks = encode_task(conn, dialect, task, fmt, options)
    except TOLERATED as exc:
        try:
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT dbcrate_task")
        except DRIVER_ERRORS as again:  # the connection itself is gone: that ends the dump
            raise _db_error(f"reading table {task.table.name!r}", again) from None
        return _Failed(driver_message(exc))
    conn.exec_driver_sql("RELEASE SAVEPOINT dbcrate_task")
    return chunks


@contextlib.contextmanager
def _connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that, when an error is already on its way out, is dropped instead of rolled
    back: a rollback over a killed connection would raise and hide the error that matters."""
    conn = engine.connect()
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(Exception):
            conn.invalidate()
        raise
    else:
        conn.close()


#: what database drivers raise when used directly (bulk paths), besides SQLAlchemy's wrapper
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.DBAPIError, psycopg.Error, pymysql.err.Error, sqlite3.Error,
)


#: what --tolerate turns into a failed table
TOLERATED: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, DbcrateError)


def _db_error(doing: str, exc: BaseException) -> DbcrateError:
    return DatabaseError(f"the database failed while {doing}: {driver_message(exc)}")


def dump(
    url: str,
    output: str | os.PathLike[str],
    options: DumpOptions | None = None,
    **kwargs: Any,
) -> DumpResult:
    """Dump a database into an archive; options may be given as keyword arguments.

    >>> dbcrate.dump("sqlite:///app.db", "app.crate", include=["order*"])  # doctest: +SKIP
    """
    if kwargs:
        options = DumpOptions(**{**(options.__dict__ if options else {}), **kwargs})
    return drain(iter_dump(url, output, options))


def default_name(url: str, directory: Path, *, data: bool = True,
                 storages: bool = False, suffix: str = ".crate") -> Path:
    """``<database>_<UTC timestamp>[_data][_storages].crate`` inside ``directory`` (the
    suffixes say which halves the archive holds, as diskette names its archives)."""
    try:
        parsed = sa.engine.make_url(url) if "://" in url else None
    except sa.exc.ArgumentError:
        parsed = None
    base = Path(parsed.database or "db").stem if parsed else Path(url).stem
    base = "".join(c if c.isalnum() or c in "-_." else "_" for c in base) or "db"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    halves = ("_data" if data else "") + ("_storages" if storages else "")
    return directory / f"{base}_{stamp}{halves}{suffix}"
