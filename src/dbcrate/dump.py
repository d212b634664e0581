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

from . import __version__
from .connect import open_engine, public_url
from .container import ArchiveWriter
from .dialects import Dialect, engine_name
from .errors import DatabaseError, DbcrateError, driver_message
from .formats import ChunkWriter, get_format
from .hooks import load_hooks
from .journal import JOURNAL_TABLE
from .manifest import Chunk, Manifest, Source, TableEntry
from .options import DumpOptions
from .progress import Event, drain
from .schema import Table
from .selection import select_tables


@dataclass
class DumpPlan:
    """What a dump will do: the tables, in order, with their schema and an estimate of rows."""

    source: Source
    tables: list[Table]
    estimated_rows: dict[str, int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.to_dict(),
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


def _estimate_rows(conn: sa.Connection, dialect: Dialect, name: str) -> int | None:
    try:
        if dialect.name == "postgresql":
            value = conn.execute(
                sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
                {"t": f"{dialect.quote('public')}.{dialect.quote(name)}"},
            ).scalar()
        elif dialect.name == "mysql":
            value = conn.execute(
                sa.text(
                    "SELECT TABLE_ROWS FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
                ),
                {"t": name},
            ).scalar()
        else:
            value = conn.exec_driver_sql(f"SELECT count(*) FROM {dialect.quote(name)}").scalar()
    except sa.exc.DBAPIError:
        return None
    return int(value) if value is not None and int(value) >= 0 else None


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
    hooks = load_hooks(options.hooks)
    if hooks.dump_table_filter is not None:
        tables = [t for t in tables if hooks.dump_table_filter(t)]
        names = [t.name for t in tables]
    return DumpPlan(source, tables, {n: _estimate_rows(conn, dialect, n) for n in names})


def plan(url: str, options: DumpOptions | None = None) -> DumpPlan:
    """What :func:`dump` would read, without writing anything (``dbcrate dump --dry-run``)."""
    options = options or DumpOptions()
    engine, dialect, parsed = open_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            dialect.begin_snapshot(conn)
            try:
                return plan_dump(conn, dialect, parsed, options)
            finally:
                dialect.end_snapshot(conn)
    except sa.exc.DBAPIError as exc:
        raise _db_error("reading the source schema", exc) from None
    finally:
        engine.dispose()


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

    try:
        for batch in dialect.read_table(conn, task.table, options.batch_rows, task.key_range):
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
    except BaseException:
        if chunk_writer is not None:  # before its file: a writer collected later would write
            with contextlib.suppress(Exception):  # to the closed file and print a traceback
                chunk_writer.close()
        if spool is not None:
            spool.close()
        for chunk in chunks:
            chunk.spool.close()
        raise
    return chunks


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


def iter_dump(
    url: str, output: str | os.PathLike[str], options: DumpOptions | None = None
) -> Generator[Event, None, DumpResult]:
    """Dump the database at ``url`` into the archive ``output`` (``"-"`` = stdout).

    Yields progress events; the generator's return value is the :class:`DumpResult`.
    The archive appears under ``output`` only when complete (temp file, fsync, rename).
    With ``options.jobs > 1`` tables and key ranges of big tables are read in parallel, every
    connection in the same snapshot.
    """
    options = options or DumpOptions()
    fmt = get_format(options.data_format)
    started = time.monotonic()
    created = dt.datetime.now(dt.UTC)
    engine, dialect, parsed = open_engine(url, read_only=True)
    written = 0
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
            yield Event("plan", 0, len(plan.tables), f"{len(plan.tables)} tables to dump")
            manifest = Manifest(
                source=plan.source,
                created_at=created.isoformat().replace("+00:00", "Z"),
                dbcrate_version=__version__,
                data_format=fmt.name,
                schema_version=options.schema_version,
            )
            entries = {t.name: TableEntry(schema=t) for t in plan.tables}
            manifest.tables = [entries[t.name] for t in plan.tables]
            pool = _ConnectionPool(conn, extra)
            with ArchiveWriter(output, created.timestamp()) as writer, ThreadPoolExecutor(
                max_workers=jobs, thread_name_prefix="dbcrate-dump"
            ) as executor:
                todo = [] if options.schema_only else tasks
                futures = [executor.submit(pool.run, encode_task, dialect, t, fmt, options)
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
                            for chunk in f.result():
                                chunk.spool.close()
                    raise
                for c in [conn, *extra]:
                    dialect.end_snapshot(c)
                writer.commit(manifest)
    finally:
        for c in extra:
            with contextlib.suppress(Exception):
                c.invalidate()
        engine.dispose()
    yield Event("done", len(manifest.tables), len(manifest.tables), "Dump complete", bytes=written)
    return DumpResult(str(output), manifest, time.monotonic() - started)


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


def default_name(url: str, directory: Path) -> Path:
    """``<database>_<UTC timestamp>.crate`` inside ``directory``."""
    parsed = sa.engine.make_url(url) if "://" in url else None
    base = Path(parsed.database or "db").stem if parsed else Path(url).stem
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"{base}_{stamp}.crate"
