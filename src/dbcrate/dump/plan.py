"""The dump plan: what a dump will read and write, as frozen data.

:func:`plan_dump` reflects the selected tables inside the snapshot and resolves the options
into a :class:`DumpPlan`: the tables in manifest order with their schemas and estimated rows,
the chunking values, the data format, compression, the number of jobs, the storages, and the
:class:`DumpTask` values that the runner (:mod:`dbcrate.dump.run`) executes. :func:`plan` is
the same without writing anything (``dbcrate dump --check``); :meth:`DumpPlan.to_dict` is what
``dump --print-plan`` and ``dump --dry-run --json`` print (docs/CLI.md, "JSON output").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from dbcrate.connect import JOURNAL_TABLE, public_url
from dbcrate.dialects import Dialect, driver_errors, engine_name
from dbcrate.dump.source import db_error, open_snapshot
from dbcrate.errors import SourceValueError, UsageError
from dbcrate.formats.registry import get_format
from dbcrate.hooks import load_hooks
from dbcrate.model.manifest import Source
from dbcrate.model.schema import Table
from dbcrate.model.selection import select_tables
from dbcrate.options import DumpOptions
from dbcrate.storages.dump import StorageSpec, resolve_storages, storage_patterns, survey
from dbcrate.storages.file_check import parse_file_column
from dbcrate.storages.index import FileColumn

#: a big table is split into at most this many key ranges
MAX_PARTS = 64


@dataclass(frozen=True)
class DumpTask:
    """One independent unit of reading: a table, or one key range (a part) of a big table.

    ``number`` is the table's 1-based number in manifest order, the one its chunk member names
    carry (:func:`dbcrate.model.chunks.member_name`); a table's chunks are indexed from 0 on,
    continuing across its parts in ``part`` order. ``key_range`` is the half-open primary-key
    range ``[lo, hi)`` of the part, ``None`` for the whole table.
    """

    number: int
    table: Table
    key_range: tuple[int, int] | None = None
    part: int = 0  #: 0-based, in key order
    parts: int = 1  #: how many parts the table is read in

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.name, "number": self.number, "part": self.part,
                "parts": self.parts,
                "key_range": list(self.key_range) if self.key_range is not None else None}


@dataclass(frozen=True)
class StoragePlan:
    """The storages a dump stores and the file columns checked against them."""

    specs: tuple[StorageSpec, ...] = ()
    file_columns: tuple[FileColumn, ...] = ()


@dataclass(frozen=True)
class DumpPlan:
    """What a dump will do, with the options resolved into it.

    ``tasks`` are in the order their chunks are written: the tables in ``tables`` order, a
    split table's parts in key order; every table has at least one task unless the dump is
    ``schema_only`` (then there are none) or its rows live in other tables (a partitioned
    table, see :meth:`~dbcrate.dialects.base.Dialect.rows_elsewhere`). ``storages`` is the
    survey of the storages (files, bytes, warnings), made only by :func:`plan` (``dump
    --check``).
    """

    source: Source
    tables: tuple[Table, ...] = ()
    estimated_rows: Mapping[str, int | None] = field(default_factory=dict)
    #: the engine's estimate of each table's size in bytes (its weight in the progress)
    estimated_bytes: Mapping[str, int | None] = field(default_factory=dict)
    #: per storage: name, path, files, bytes, directories, warnings (``dump --check``)
    storages: tuple[dict[str, Any], ...] = ()
    tasks: tuple[DumpTask, ...] = ()
    data_format: str = "parquet"
    compression_level: int = DumpOptions.compression_level
    chunk_rows: int = DumpOptions.chunk_rows
    chunk_bytes: int = DumpOptions.chunk_bytes
    batch_rows: int = DumpOptions.batch_rows
    #: connections reading at once (1 when the dialect cannot share its snapshot)
    jobs: int = 1
    schema_only: bool = False
    tolerate: bool = False
    storage: StoragePlan = StoragePlan()
    storage_exclude: tuple[str, ...] = ()
    #: the schemas read (``-n``/``-N`` resolved; empty on an engine without schemas)
    schemas: tuple[str, ...] = ()

    def expected_bytes(self, name: str) -> int:
        """Table ``name``'s size as the engine estimates it, else its estimated rows times 100
        bytes, else 64 KiB: its weight in the progress and in the order a copy reads."""
        rows = self.estimated_rows.get(name)
        return self.estimated_bytes.get(name) or (rows or 0) * 100 or 64 * 1024

    def to_dict(self) -> dict[str, Any]:
        """The fields documented in docs/CLI.md (``dump --dry-run --json``)."""
        return {
            "source": self.source.to_dict(),
            "storages": list(self.storages),
            "schemas": list(self.schemas),
            "tables": [
                {
                    "name": t.name,
                    "columns": len(t.columns),
                    "estimated_rows": self.estimated_rows.get(t.name),
                    "skipped_objects": t.skipped,
                }
                for t in self.tables
            ],
            "settings": {
                "data_format": self.data_format,
                "compression_level": self.compression_level,
                "chunk_rows": self.chunk_rows,
                "chunk_bytes": self.chunk_bytes,
                "jobs": self.jobs,
                "schema_only": self.schema_only,
                "tolerate": self.tolerate,
            },
            "tasks": self.tasks_dict(),
        }

    def tasks_dict(self) -> list[dict[str, Any]]:
        """Every task as data, in the order their chunks are written."""
        return [t.to_dict() for t in self.tasks]


def storage_plan(options: DumpOptions) -> StoragePlan:
    """The storages and file columns of ``options``, checked against each other.

    :raises UsageError: nothing to dump, ``--no-data`` without a storage, or a file column
        naming a storage that is not dumped.
    """
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
    return StoragePlan(tuple(specs), tuple(columns))


def plan_dump(conn: sa.Connection, dialect: Dialect, url: sa.URL, options: DumpOptions,
              storage: StoragePlan | None = None,
              storages: tuple[dict[str, Any], ...] = (), *,
              before_locks: Callable[[list[Table], list[str]], None] | None = None) -> DumpPlan:
    """Reflect the selected tables (inside the snapshot already begun on ``conn``) and resolve
    ``options`` into the plan; big tables are split into key ranges when ``jobs > 1``.
    ``before_locks(tables, schemas)`` is called once the tables are known, before ``conn``
    locks any of them (reading a key range's bounds): the native schema's capture.

    :raises SourceValueError: a table or column named ``""``.
    :raises UsageError: a format of another engine's own rows (``pgcopy`` from MariaDB).
    """
    _check_native_rows(dialect, options.data_format)
    source = Source(
        engine=engine_name(dialect),
        server_version=dialect.server_version(conn),
        url=public_url(url),
        database=url.database,
        driver=url.get_driver_name(),
    )
    schemas = _chosen_schemas(conn, dialect, options)
    tables = _select_tables(conn, dialect, options, schemas)
    elsewhere = dialect.rows_elsewhere(conn)
    for table in tables:
        if table.name in elsewhere:
            table.skipped.append(elsewhere[table.name])
    sizes = dialect.estimate_sizes(conn, [t.name for t in tables])
    estimates = {t.name: sizes[t.name][0] for t in tables}
    if before_locks is not None:
        before_locks(tables, schemas)
    if not options.schema_only:
        dialect.lock_for_reading(conn, [t.name for t in tables if t.name not in elsewhere])
    tasks = () if options.schema_only else _tasks(
        conn, dialect, [t for t in tables if t.name not in elsewhere], estimates, options,
        {t.name: n for n, t in enumerate(tables, start=1)})
    jobs = max(1, min(options.jobs, len(tasks))) if dialect.parallel_dump else 1
    return DumpPlan(
        source=source, tables=tuple(tables), estimated_rows=estimates, storages=storages,
        estimated_bytes={name: size for name, (_, size) in sizes.items()},
        tasks=tasks, data_format=options.data_format,
        compression_level=options.compression_level, chunk_rows=options.chunk_rows,
        chunk_bytes=options.chunk_bytes, batch_rows=options.batch_rows, jobs=jobs,
        schema_only=options.schema_only, tolerate=options.tolerate,
        storage=storage if storage is not None else storage_plan(options),
        storage_exclude=tuple(storage_patterns(options)), schemas=tuple(schemas),
    )


def _check_native_rows(dialect: Dialect, data_format: str) -> None:
    """A data format of an engine's own rows is written only from that engine."""
    fmt = get_format(data_format)
    if fmt.native_rows and dialect.native_rows != fmt.name:
        raise UsageError(
            f"the {fmt.name} data format holds another engine's own rows ({fmt.description}); "
            f"this {engine_name(dialect)} database cannot write them",
            hint="leave out --format (Parquet, the default, holds every engine's rows)")


def offline_plan(url: str, options: DumpOptions, storage: StoragePlan | None = None,
                 storages: tuple[dict[str, Any], ...] = ()) -> DumpPlan:
    """The plan of ``--no-data``: the storages alone; the database is not opened."""
    return DumpPlan(
        source=offline_source(url), storages=storages, data_format=options.data_format,
        compression_level=options.compression_level, schema_only=options.schema_only,
        storage=storage if storage is not None else storage_plan(options),
        storage_exclude=tuple(storage_patterns(options)),
    )


def plan(url: str, options: DumpOptions | None = None) -> DumpPlan:
    """What :func:`dbcrate.dump` would read, without writing anything (``dbcrate dump
    --check``): the tables with estimated rows, the tasks, and the storages' file counts and
    sizes."""
    options = options or DumpOptions()
    storage = storage_plan(options)
    surveyed = tuple(survey(list(storage.specs), storage_patterns(options)))
    if options.no_data:
        return offline_plan(url, options, storage, surveyed)
    with open_snapshot(url) as snapshot:
        try:
            result = plan_dump(snapshot.conn, snapshot.dialect, snapshot.url, options,
                               storage, surveyed)
            snapshot.end()
        except driver_errors() as exc:
            raise db_error("reading the source schema", exc) from None
    return result


def check_file_columns(plan: DumpPlan) -> None:
    """Refuse a file column that is not a column of a dumped table."""
    tables = {t.name: t for t in plan.tables}
    for column in plan.storage.file_columns:
        table = tables.get(column.table)
        if table is None or column.column not in table.column_names:
            raise UsageError(f"the file column {column.table}.{column.column} is not among the "
                             "dumped tables and columns")


def offline_source(url: str) -> Source:
    """The source as the URL names it, without connecting (``--no-data``)."""
    parsed = sa.engine.make_url(url) if "://" in url else None
    if parsed is None:
        return Source(engine="", server_version="", url="")
    return Source(engine=parsed.get_backend_name(), server_version="", url=public_url(parsed),
                  database=parsed.database)


def _chosen_schemas(conn: sa.Connection, dialect: Dialect, options: DumpOptions) -> list[str]:
    """The schemas ``-n``/``-N`` choose (every one but the engine's own by default).

    :raises UsageError: ``-n``/``-N`` on an engine without schemas.
    """
    if (options.schemas or options.exclude_schemas) and not dialect.has_schemas:
        raise UsageError(f"{engine_name(dialect)} has no schemas inside a database: "
                         "schemas=[...] and exclude_schemas=[...] do not apply",
                         hint="the URL names the database; choose tables with include=[...]")
    return dialect.chosen_schemas(conn, options.schemas, options.exclude_schemas)


def _select_tables(conn: sa.Connection, dialect: Dialect, options: DumpOptions,
                   schemas: list[str]) -> list[Table]:
    """The tables of ``schemas`` that ``-t``/``-T`` and the hooks' ``dump_table_filter``
    select, reflected. A pattern matches a table's archive name (``sales.orders``;
    ``orders`` in the default schema, which ``public.orders`` matches too)."""
    available = [n for n in dialect.list_tables(conn, schemas) if n != JOURNAL_TABLE]
    twice = sorted(n for n, count in Counter(available).items() if count > 1)
    if twice:  # a table of the default schema named like schema.table of another
        raise SourceValueError(f"two tables would be named {twice[0]!r} in the archive (one "
                               "of the default schema, so named, and one of a schema)",
                               hint="rename one in the source, or leave one schema out with "
                               "exclude_schemas=[...]")
    names = select_tables(available, options.include, options.exclude, "the source",
                          dialect.spellings)
    tables = dialect.reflect_many(conn, names)
    _refuse_empty_names(tables)
    hooks = load_hooks(options.hooks)
    if hooks.dump_table_filter is not None:
        tables = [t for t in tables if hooks.dump_table_filter(t)]
    return tables


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


def _tasks(conn: sa.Connection, dialect: Dialect, tables: list[Table],
           estimates: Mapping[str, int | None], options: DumpOptions,
           numbers: Mapping[str, int]) -> tuple[DumpTask, ...]:
    """Tables in plan order (``numbers``: each table's number in the manifest); with several
    jobs, big tables split by primary-key ranges."""
    tasks: list[DumpTask] = []
    for table in tables:
        number = numbers[table.name]
        estimate = estimates.get(table.name) or 0
        ranges = None
        if options.jobs > 1 and dialect.parallel_dump and estimate > options.chunk_rows:
            parts = min(MAX_PARTS, -(-estimate // options.chunk_rows))
            ranges = dialect.key_ranges(conn, table, max(parts, options.jobs))
        if ranges:
            tasks.extend(DumpTask(number, table, r, part, len(ranges))
                         for part, r in enumerate(ranges))
        else:
            tasks.append(DumpTask(number, table))
    return tuple(tasks)
