"""Restore: plan and preflight everything, then load table by table.

Two modes (:attr:`RestoreOptions.mode`):

``recreate`` (default)
    Tables are created from the archive's schema in foreign-key order (the largest first with
    ``jobs`` > 1), each dropped (with ``clean``), created and loaded in its own transaction;
    then primary keys (PostgreSQL: after the rows, as ``pg_restore`` does), indexes and unique
    constraints of each table once its rows are in, foreign keys once both tables have their
    indexes, then sequences (identity, serial, AUTO_INCREMENT, sqlite_sequence).
``into-existing``
    The target's schema is the master (Camelot's rule): columns are matched by name, cast where
    the types differ (refused where a value would change), archive columns the target lacks are
    dropped and target columns the archive lacks take their defaults. ``clean`` empties the
    selected tables first, in reverse foreign-key order. Rows whose key exists are handled by
    ``on_conflict``. Each chunk is committed on its own, so a killed restore resumes per chunk.

Before anything is written, the preflight checks names, column mappings, every value against
the target (exactness), and every member's SHA-256. ``dry_run`` stops there and reports the plan.
A journal table in the target records what is committed, in the same transactions, so
``resume`` continues a killed restore (:mod:`dbcrate.journal`).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.connect import discard_if_empty, new_sqlite_file, open_engine, public_url
from dbcrate.containers.archive import Archive
from dbcrate.dialects import Dialect, engine_family, engine_name
from dbcrate.errors import (
    Incompatibility,
    NotPortable,
    TargetConflict,
    UnfinishedRestore,
    UsageError,
    driver_message,
    failure_message,
)
from dbcrate.hooks import Hooks, load_hooks
from dbcrate.model.logical import logical_of_arrow
from dbcrate.model.manifest import Chunk, TableEntry
from dbcrate.model.schema import Column, Table, dependency_order
from dbcrate.model.selection import select_tables
from dbcrate.options import RestoreOptions
from dbcrate.progress import Event, drain
from dbcrate.restore import journal
from dbcrate.restore.conflicts import POLICIES, ConflictCounts, load_with_policy, probe_policy
from dbcrate.restore.ddl import CombinedDDL, TargetTables, build_tables, fk_label, index_steps
from dbcrate.restore.mapping import TableMap, lossy_rows, plan_table
from dbcrate.restore.migrations import apply_to_table, chain, load_migrations
from dbcrate.restore.portability import ProblemCollector, batch_problems, row_keys, target_lengths

# re-exported: callers import the report from here (dbcrate, cli, django)
from dbcrate.restore.report import RestoreReport as RestoreReport
from dbcrate.restore.report import TableResult as TableResult
from dbcrate.restore.taskgraph import Task, TaskGraph
from dbcrate.storages import restore as storage_restore
from dbcrate.storages.file_check import FileCheck
from dbcrate.storages.file_check import describe as describe_file_check
from dbcrate.storages.index import StorageManifest


@dataclass
class Source:
    """One archive table as it will be loaded: its (migrated) schema and how to get its rows."""

    entry: TableEntry
    schema: Table
    transforms: list[Callable[[pa.RecordBatch], pa.RecordBatch]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.schema.name


@dataclass
class RestorePlan:
    """Everything decided before the first write."""

    sources: list[Source]
    same_engine: bool
    replace: list[str]
    target: str
    mode: str
    archive_id: str
    maps: dict[str, TableMap] = field(default_factory=dict)
    done: dict[str, set[int]] = field(default_factory=dict)
    cyclic_columns: dict[str, list[str]] = field(default_factory=dict)
    #: target columns (by archive table) that cannot hold 4-byte UTF-8 (MariaDB utf8mb3)
    narrow_text: dict[str, set[str]] = field(default_factory=dict)
    #: the journal holds an unfinished earlier run of this archive, and ``clean`` starts over
    forget_journal: bool = False
    #: the hook that empties a table for ``clean`` into an existing schema (else DELETE)
    empty_table: Callable[[Connection, str], Any] | None = None


def iter_restore(
    archive: str | os.PathLike[str] | Archive,
    url: str,
    options: RestoreOptions | None = None,
) -> Generator[Event, None, RestoreReport]:
    """Restore ``archive`` into the database at ``url``; yields progress events and returns a
    :class:`RestoreReport` (it does not raise for per-table failures: see
    :meth:`RestoreReport.raise_for_failures`)."""
    options = options or RestoreOptions()
    _check_options(options)
    started = time.monotonic()
    own = not isinstance(archive, Archive)
    arch = Archive(archive) if not isinstance(archive, Archive) else archive
    try:
        report = yield from _restore_with_storages(arch, url, options)
    finally:
        if own:
            arch.close()
    report.seconds = time.monotonic() - started
    return report


def _check_options(options: RestoreOptions) -> None:
    if options.mode not in ("recreate", "into-existing"):
        raise UsageError(f"unknown restore mode {options.mode!r}",
                         hint="modes: recreate, into-existing")
    if options.on_conflict not in POLICIES:
        raise UsageError(f"unknown conflict policy {options.on_conflict!r}",
                         hint="policies: " + ", ".join(POLICIES))
    if options.on_conflict == "check" and options.clean:
        raise UsageError("--on-conflict check compares the archive with the target's rows; "
                         "--clean would empty them first", hint="leave out --clean")
    if options.schema_only and (options.data_only or options.mode == "into-existing"):
        raise UsageError("--schema-only creates tables; it cannot be combined with --data-only")
    if options.on_conflict != "error" and not (options.data_only or options.mode == "into-existing"):
        raise UsageError("--on-conflict applies when loading into existing tables",
                         hint="add --mode into-existing")


def _sources(arch: Archive, options: RestoreOptions, hooks: Hooks) -> tuple[list[Source], list[str]]:
    manifest = arch.manifest
    names = select_tables([t.name for t in manifest.tables], options.include, options.exclude,
                          "the archive")
    entries = [manifest.table(n) for n in names]
    broken = [e.name for e in entries if e.status != "ok"]
    if broken:
        raise UsageError(
            f"the archive recorded these tables as failed at dump time: {', '.join(broken)}",
            hint="exclude them with -T to restore the rest",
        )
    if hooks.restore_table_filter is not None:
        entries = [e for e in entries if hooks.restore_table_filter(e.schema)]
    warnings: list[str] = []
    steps = []
    if options.migrations:
        steps = chain(load_migrations(options.migrations), manifest.schema_version,
                      options.target_schema_version)
    sources = []
    for entry in entries:
        schema, fns = (apply_to_table(entry.schema, steps, warnings) if steps
                       else (entry.schema, []))
        if schema is None:
            warnings.append(f"{entry.name}: dropped by the migrations")
            continue
        if hooks.transform is not None:
            fns = [*fns, _bind_transform(hooks.transform, entry.name)]
            schema = _schema_after(schema, fns, entry)
        sources.append(Source(entry, schema, fns))
    return sources, warnings


def _schema_after(schema: Table, fns: list[Callable[[pa.RecordBatch], pa.RecordBatch]],
                  entry: TableEntry) -> Table:
    """The table as the transforms leave it: learnt by passing them an empty batch."""
    probe = pa.RecordBatch.from_pylist([], schema=pa.schema(
        [pa.field(c.name, c.type.arrow) for c in entry.schema.columns]))
    for fn in fns:
        probe = fn(probe)
    if probe.schema.names == schema.column_names and all(
        f.type == c.type.arrow for f, c in zip(probe.schema, schema.columns)
    ):
        return schema
    by_name = {c.name: c for c in schema.columns}
    columns = []
    for f in probe.schema:
        old = by_name.get(f.name)
        if old is not None and old.type.arrow == f.type:
            columns.append(old)
        else:
            columns.append(Column(f.name, logical_of_arrow(f.type), ""))
    names = {c.name for c in columns}
    return replace(schema, columns=columns,
                   primary_key=[k for k in schema.primary_key if k in names],
                   indexes=[i for i in schema.indexes if set(i.columns) <= names],
                   foreign_keys=[fk for fk in schema.foreign_keys if set(fk.columns) <= names])


def _bind_transform(fn: Callable[..., Any], table: str) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    def apply(batch: pa.RecordBatch) -> pa.RecordBatch:
        out = fn(table, batch)
        if isinstance(out, pa.Table):
            out = pa.RecordBatch.from_arrays(
                [c.combine_chunks() for c in out.columns], schema=out.schema
            )
        if not isinstance(out, pa.RecordBatch):
            raise UsageError(f"the transform hook returned {type(out).__name__} for {table!r}; "
                             "it must return a pyarrow.RecordBatch")
        return out

    return apply


def _restore_with_storages(arch: Archive, url: str,
                           options: RestoreOptions) -> Generator[Event, None, RestoreReport]:
    """The tables, then the storages; the storages' preflight comes before anything is
    written, so that unsafe or conflicting files refuse the whole restore."""
    storage = arch.manifest.storage
    reader = storage_restore.reader_of(arch) if storage is not None else None
    wanted = storage is not None and options.storages_to is not None and not options.no_storages
    if options.no_data and not wanted:
        raise UsageError("--no-data restores only the storages, and there are none to restore",
                         hint="give --storages-to DIR" if storage is not None else
                         "this archive holds no storages")
    planned = None
    if wanted:
        assert storage is not None and reader is not None and options.storages_to is not None
        planned = storage_restore.preflight(reader, storage, options.storages_to,
                                            options.storages_policy, verify=options.verify)
    if options.no_data:
        report = RestoreReport("", [], mode=options.mode)
    else:
        report = yield from _restore(arch, url, options)
    if storage is None:
        return report
    if not wanted:
        if not options.no_storages:
            report.warnings.append(
                f"the archive holds {storage.files:,} storage files; they were not restored "
                "(give --storages-to DIR to restore them)")
        return report
    assert planned is not None and reader is not None
    if not options.dry_run and (report.ok or not options.exit_on_error):
        planned = yield from storage_restore.extract(reader, storage, planned.destination,
                                                     options.storages_policy, planned)
    report.storages = planned.to_dict()
    if storage.file_columns:
        result = check_files(arch, storage)
        report.storages["file_check"] = result
        report.warnings.extend(describe_file_check(result))
    return report


def check_files(arch: Archive, storage: StorageManifest) -> dict[str, Any]:
    """The row <-> file check on the archive's own rows and files."""
    check = FileCheck()
    try:
        reader = storage_restore.reader_of(arch)
        roots = {c.root for c in storage.file_columns}
        for entry in storage_restore.iter_entries(reader, storage):
            if entry.type != "file":
                continue
            for root in roots:
                if entry.path.startswith(root + "/"):
                    check.add_file(root, entry.path[len(root) + 1:])
        names = {t.name for t in arch.tables}
        for column in storage.file_columns:
            if column.table not in names:
                continue
            for batch in arch.iter_batches(column.table):
                if column.column in batch.schema.names:
                    check.add_references(column, batch.column(column.column).to_pylist())
        return check.result()
    finally:
        check.close()


def _restore(arch: Archive, url: str, options: RestoreOptions) -> Generator[Event, None, RestoreReport]:
    created = new_sqlite_file(url)
    try:
        return (yield from _restore_tables(arch, url, options))
    finally:
        discard_if_empty(created)


def _restore_tables(arch: Archive, url: str,
                    options: RestoreOptions) -> Generator[Event, None, RestoreReport]:
    hooks = load_hooks(options.hooks)
    sources, warnings = _sources(arch, options, hooks)
    mode = "into-existing" if options.data_only else options.mode
    engine, dialect, parsed = open_engine(url)
    shown = public_url(parsed)
    try:
        if options.single_transaction and not dialect.transactional_ddl and mode == "recreate":
            raise UsageError(
                f"{engine_name(dialect)} cannot roll back CREATE/DROP TABLE, so a recreating "
                "restore cannot be all-or-nothing",
                hint="use --mode into-existing with --single-transaction (rows are "
                "transactional), or restore one transaction per table",
            )
        with engine.connect() as conn:
            dialect.inspect_target(conn)
        same_engine = engine_family(engine_name(dialect)) == engine_family(arch.manifest.source.engine)
        ordered = dependency_order([s.schema for s in sources])
        by_name = {s.name: s for s in sources}
        sources = [by_name[t.name] for t in ordered]
        archive_id = hashlib.sha256(arch.manifest.to_json()).hexdigest()
        plan = RestorePlan(sources, same_engine, [], shown, mode, archive_id,
                           empty_table=hooks.empty_table)
        with engine.connect() as conn:
            earlier = journal.done(conn, dialect, archive_id)
        if options.resume:
            plan.done = earlier
        elif any(chunks - {journal.STARTED} for chunks in earlier.values()) and not options.clean:
            # appending again would duplicate what the earlier run committed
            raise UnfinishedRestore(shown, sum(len(chunks) for chunks in earlier.values()))
        else:
            plan.forget_journal = bool(earlier)
        present = _target_tables(engine, dialect)
        if mode == "recreate":
            targets = _plan_recreate(plan, dialect, present, options)
        else:
            targets = None
            _plan_into_existing(plan, dialect, present, options)
        report = RestoreReport(shown, [TableResult(s.name) for s in sources], warnings, mode=mode,
                               strict=options.strict)
        results = {r.name: r for r in report.tables}
        _describe_plan(plan, results, targets, options)
        if mode == "into-existing" and options.on_conflict != "error":
            _probe_policies(plan, dialect, options)
        yield Event("plan", 0, len(sources), f"{len(sources)} tables to restore")
        yield from _preflight(arch, plan, dialect, targets, options)
        if targets is not None:
            report.warnings.extend(targets.warnings)
            for name, skipped in targets.not_recreated.items():
                for kind, obj, reason in skipped:
                    results[name].skip_object(kind, obj, reason)
        if options.dry_run:
            for r in report.tables:
                r.status = "planned"
            if mode == "into-existing" and not options.clean:
                _report_conflicts(arch, plan, dialect, options, results)
            return report
        yield from _execute(arch, plan, dialect, targets, options, hooks, results, report)
        yield Event("done", len(sources), len(sources), "Restore complete")
        return report
    finally:
        engine.dispose()


def _target_tables(engine: sa.Engine, dialect: Dialect) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=dialect.default_schema))


def _plan_recreate(plan: RestorePlan, dialect: Dialect, present: set[str],
                   options: RestoreOptions) -> TargetTables:
    names_wrong = dialect.name_problems([s.schema for s in plan.sources])
    if names_wrong:
        raise NotPortable(plan.target, names_wrong)
    if dialect.case_insensitive_tables:
        lowered = {p.lower() for p in present}
        existing = {s.name for s in plan.sources if s.name.lower() in lowered}
    else:
        existing = {s.name for s in plan.sources if s.name in present}
    committed = {n for n, chunks in plan.done.items() if journal.WHOLE_TABLE in chunks}
    # --resume replaces only what this archive's unfinished restore created (and did not
    # commit whole); any other existing table is the user's: refused as without --resume
    started = {n for n, chunks in plan.done.items() if journal.STARTED in chunks}
    pending_existing = existing - committed
    if not options.clean and pending_existing - started:
        raise TargetConflict(sorted(pending_existing - started), plan.target)
    plan.replace = sorted(pending_existing)
    return build_tables(
        [s.schema for s in plan.sources],
        dialect,
        same_engine=plan.same_engine,
        inline_foreign_keys=not dialect.alter_add_foreign_key,
        existing=present,
    )


def _plan_into_existing(plan: RestorePlan, dialect: Dialect, present: set[str],
                        options: RestoreOptions) -> None:
    problems: list[Incompatibility] = []
    lookup = {p.lower() if dialect.case_insensitive_tables else p: p for p in present}
    with dialect.engine.connect() as conn:
        if dialect.reflect_in_snapshot:
            dialect.begin_snapshot(conn)
        for source in plan.sources:
            key = source.name.lower() if dialect.case_insensitive_tables else source.name
            real = lookup.get(key)
            if real is None:
                problems.append(Incompatibility(source.name, None, "the target has no such table "
                                                "(into-existing mode creates nothing)"))
                continue
            target = dialect.reflect(conn, real)
            tmap = plan_table(source.schema, target, case_insensitive=dialect.case_insensitive_columns)
            plan.maps[source.name] = tmap
            plan.narrow_text[source.name] = dialect.three_byte_utf8_columns(conn, real)
            for why in tmap.blocking:
                problems.append(Incompatibility(source.name, None, why))
            if options.on_conflict != "error" and not target.primary_key:
                problems.append(Incompatibility(
                    source.name, None, f"--on-conflict {options.on_conflict} needs a primary key "
                    "in the target table"))
        if dialect.reflect_in_snapshot:
            dialect.end_snapshot(conn)
    if problems:
        raise NotPortable(plan.target, problems)
    plan.cyclic_columns = _cyclic_columns(plan, dialect)


def _cyclic_columns(plan: RestorePlan, dialect: Dialect) -> dict[str, list[str]]:
    """Foreign-key columns that close a cycle (self-references included) among the tables
    loaded into an existing PostgreSQL schema: they are loaded as NULL, then updated."""
    if dialect.fk_checks_off_sql is not None:
        return {}  # MariaDB and SQLite turn the checks off for the session instead
    order = {s.name: i for i, s in enumerate(plan.sources)}
    out: dict[str, list[str]] = {}
    for source in plan.sources:
        tmap = plan.maps[source.name]
        for fk in tmap.target.foreign_keys:
            ref = next((s.name for s in plan.sources if plan.maps[s.name].target.name == fk.ref_table),
                       None)
            if ref is not None and order[ref] >= order[source.name]:
                out.setdefault(source.name, []).extend(fk.columns)
    return out


def _describe_plan(plan: RestorePlan, results: dict[str, TableResult],
                   targets: TargetTables | None, options: RestoreOptions) -> None:
    for source in plan.sources:
        r = results[source.name]
        rows = source.entry.rows
        if plan.mode == "recreate":
            verb = "drop and recreate" if source.name in plan.replace else "create"
            if source.name in plan.done and journal.WHOLE_TABLE in plan.done[source.name]:
                verb = "already restored (resume: skip)"
            r.plan.append(f"{verb}; load {rows} rows" if not options.schema_only else verb)
        else:
            tmap = plan.maps[source.name]
            action = "empty, then load" if options.clean else "append"
            r.plan.append(f"{action} {rows} rows into existing {tmap.target.name!r} "
                          f"(on conflict: {options.on_conflict})")
            r.plan.append("columns: " + ", ".join(c.describe() for c in tmap.columns))
            if tmap.dropped:
                r.warnings.append("archive columns not in the target, dropped: "
                                  + ", ".join(tmap.dropped))
            if plan.cyclic_columns.get(source.name):
                r.plan.append("cyclic foreign key columns loaded as NULL, then updated: "
                              + ", ".join(plan.cyclic_columns[source.name]))
        for item in source.entry.schema.skipped:
            r.warnings.append(f"not recreated: {item}")


def _batches(arch: Archive, source: Source, chunk: Chunk, *, verify: bool) -> Iterator[pa.RecordBatch]:
    for batch in arch.chunk_batches(source.entry, chunk, verify=verify):
        for fn in source.transforms:
            batch = fn(batch)
        yield batch


def _preflight(arch: Archive, plan: RestorePlan, dialect: Dialect, targets: TargetTables | None,
               options: RestoreOptions) -> Iterator[Event]:
    """Values and integrity, before anything is written."""
    problems = ProblemCollector()
    into = plan.mode == "into-existing"
    check_values = (into or not plan.same_engine or bool(options.migrations)) and not options.schema_only
    total = sum(c.size for s in plan.sources for c in s.entry.chunks)
    done = 0
    for source in plan.sources:
        if options.schema_only:
            continue
        if into:
            tmap = plan.maps[source.name]
            load_schema = tmap.load_schema()
            lengths = {c.name: c.type.length for c in load_schema.columns
                       if c.type.length is not None}
            decimals = {c.name: (c.type.precision, c.type.scale) for c in load_schema.columns
                        if c.type.kind == "decimal"}
        else:
            load_schema = source.schema
            assert targets is not None
            lengths = target_lengths(load_schema, targets.types[source.name])
            decimals = _decimal_targets(load_schema, targets.types[source.name])
        base = 0
        for chunk in source.entry.chunks:
            if check_values:
                for batch in _batches(arch, source, chunk, verify=options.verify):
                    if into:
                        if _cast_problems(plan.maps[source.name], batch, base, problems):
                            base += batch.num_rows
                            continue  # reported; the other checks need the cast values
                        batch = plan.maps[source.name].convert(batch)
                    found = batch_problems(load_schema, batch, dialect, lengths, decimals)
                    found += _four_byte_problems(batch, plan.narrow_text.get(source.name, set()))
                    problems.add_batch(load_schema, batch, base, found)
                    base += batch.num_rows
            elif options.verify:
                arch.check_chunk(chunk)
                arch.check_chunk_structure(source.entry, chunk)
            done += chunk.size
            yield Event("verify", done, total, f"Check {source.name}", source.name, bytes=done)
    refused = problems.problems()
    if refused:
        raise NotPortable(plan.target, refused)


def _report_conflicts(arch: Archive, plan: RestorePlan, dialect: Dialect,
                      options: RestoreOptions, results: dict[str, TableResult]) -> None:
    """Dry run: how many archive rows have a key the target already holds (the archive keys go
    into a session-private temporary table; the target's tables are only read)."""
    q = dialect.quote
    for source in plan.sources:
        tmap = plan.maps[source.name]
        load_schema = tmap.load_schema()
        pk = tmap.target.primary_key
        if not pk or not set(pk) <= set(load_schema.column_names) or not source.entry.rows:
            continue
        stage = Table(name=f"_dbcrate_keys_{os.urandom(4).hex()}",
                      columns=[load_schema.column(c) for c in pk])
        cols = ", ".join(q(c) for c in pk)
        match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in pk)
        with dialect.engine.connect() as conn:
            dialect.prepare_restore_session(conn)
            _begin(conn, dialect)
            try:
                conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {q(stage.name)} AS SELECT {cols} "
                                     f"FROM {q(tmap.target.name)} WHERE 1 = 0")
                batches = (tmap.convert(b).select(pk) for chunk in source.entry.chunks
                           for b in _batches(arch, source, chunk, verify=False))
                _load_temp(conn, dialect, stage, batches)
                count = conn.exec_driver_sql(
                    f"SELECT count(*) FROM {q(tmap.target.name)} t JOIN {q(stage.name)} s ON {match}"
                ).scalar()
            finally:
                _rollback(conn)
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(stage.name)}")
        if count:
            outcome = {"error": "the table would fail", "skip": "they would be skipped",
                       "update": "they would overwrite the target's rows",
                       "check": "they would be compared with the target's"}[options.on_conflict]
            results[source.name].plan.append(
                f"conflicts: {count} archive rows have a key the target already holds ({outcome})")


def _probe_policies(plan: RestorePlan, dialect: Dialect, options: RestoreOptions) -> None:
    """Before anything is written: run each table's ``--on-conflict`` statements on an empty
    stage, in a transaction rolled back, so that a statement the target refuses is found now
    and not after other tables were loaded."""
    problems = []
    for source in plan.sources:
        tmap = plan.maps[source.name]
        with dialect.engine.connect() as conn:
            dialect.prepare_restore_session(conn)
            _begin(conn, dialect)
            try:
                probe_policy(conn, dialect, tmap.load_schema(), options.on_conflict)
            except sa.exc.DBAPIError as exc:
                problems.append(Incompatibility(
                    source.name, None, f"--on-conflict {options.on_conflict} cannot run on the "
                    f"target table: {driver_message(exc)}"))
            finally:
                _rollback(conn)
    if problems:
        raise NotPortable(plan.target, problems)


def _four_byte_problems(batch: pa.RecordBatch, columns: set[str]) -> list[tuple[str, str, Any]]:
    """Rows whose text needs 4 UTF-8 bytes per character where the column holds at most 3."""
    found = []
    for name in columns & set(batch.schema.names):
        arr = batch.column(batch.schema.get_field_index(name))
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            mask = pc.fill_null(pc.match_substring_regex(arr, "[\U00010000-\U0010FFFF]"), False)
            if pc.any(mask).as_py():
                found.append((name, "a 4-byte UTF-8 character (e.g. an emoji) into a utf8mb3 "
                              "column", mask.to_numpy(zero_copy_only=False)))
    return found


def _cast_problems(tmap: TableMap, batch: pa.RecordBatch, base: int,
                   problems: ProblemCollector) -> bool:
    """Record values that a cast would change; True if there were any."""
    names = batch.schema.names
    found = False
    for cm in tmap.loaded:
        if cm.cast != "checked" or cm.source is None:
            continue
        mask = lossy_rows(batch.column(names.index(cm.source.name)), cm.source.type, cm.target.type)
        if mask.any():
            found = True
            problems.add_batch(tmap.source, batch, base, [
                (cm.target.name, f"value would change when cast from {cm.source.type.describe()} "
                 f"to {cm.target.type.describe()}", mask)])
    return found


def _decimal_targets(table: Table, types: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    out: dict[str, tuple[int | None, int | None]] = {}
    for col in table.columns:
        if col.type.kind == "decimal":
            t = types.get(col.name)
            out[col.name] = (getattr(t, "precision", None), getattr(t, "scale", None))
    return out


def _begin(conn: Connection, dialect: Dialect) -> None:
    conn.exec_driver_sql(dialect.begin_sql)


def _rollback(conn: Connection) -> None:
    # any failure here (a lost connection: PyMySQL's socket is gone) must not hide the error
    # that made the rollback necessary; the server rolls back a lost session's transaction
    with contextlib.suppress(Exception):
        conn.exec_driver_sql("ROLLBACK")


class _Runner:
    """Where statements run: a fresh connection and transaction per unit of work, or - for
    ``single_transaction`` - one shared connection inside one transaction."""

    def __init__(self, dialect: Dialect, single: bool, archive_id: str = "") -> None:
        self.dialect = dialect
        self.single = single
        self.archive_id = archive_id
        self.shared: Connection | None = None

    def record(self, conn: Connection, table: str, chunk: int, rows: int) -> None:
        """Journal what ``conn``'s transaction commits (nothing with one transaction)."""
        if not self.single:
            journal.record(conn, self.dialect, self.archive_id, table, chunk, rows)

    def open_shared(self) -> None:
        if self.single:
            self.shared = self.dialect.engine.connect()
            self.dialect.prepare_restore_session(self.shared)
            _begin(self.shared, self.dialect)
            if self.dialect.fk_checks_off_sql is None:
                self.shared.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")

    def unit(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn(conn)`` in a transaction (its own, or the shared one)."""
        if self.shared is not None:
            return fn(self.shared)
        with self.dialect.engine.connect() as conn:
            self.dialect.prepare_restore_session(conn)
            _session_fk_off(conn, self.dialect)
            _begin(conn, self.dialect)
            try:
                value = fn(conn)
                conn.exec_driver_sql("COMMIT")
                return value
            except BaseException:
                _rollback(conn)
                raise

    def close_shared(self, ok: bool) -> None:
        if self.shared is None:
            return
        if ok:
            self.shared.exec_driver_sql("COMMIT")
        else:
            _rollback(self.shared)
        self.shared.close()
        self.shared = None


def _session_fk_off(conn: Connection, dialect: Dialect) -> None:
    # loading order cannot satisfy cycles; the checks run afterwards (orphan check)
    if dialect.fk_checks_off_sql is not None:
        conn.exec_driver_sql(dialect.fk_checks_off_sql)


def _execute(arch: Archive, plan: RestorePlan, dialect: Dialect, targets: TargetTables | None,
             options: RestoreOptions, hooks: Hooks, results: dict[str, TableResult],
             report: RestoreReport) -> Iterator[Event]:
    runner = _Runner(dialect, options.single_transaction, plan.archive_id)
    if not runner.single:  # all or nothing keeps no journal: a failure must leave nothing
        with dialect.engine.connect() as conn:
            if plan.forget_journal:  # --clean over an unfinished earlier run: start over
                journal.forget(conn, dialect, plan.archive_id)
            journal.ensure(conn, dialect)
    if hooks.prepare_schema_for_restore is not None:
        with dialect.engine.begin() as conn:
            hooks.prepare_schema_for_restore(conn, arch.manifest)
    runner.open_shared()
    ok = False
    try:
        if plan.mode == "recreate":
            assert targets is not None
            yield from _recreate(arch, plan, dialect, targets, options, results, report, runner)
        else:
            yield from _load_into_existing(arch, plan, dialect, options, results, runner)
            yield from _finish_into_existing(arch, plan, dialect, options, results, report, runner)
        ok = report.ok
        if runner.single and not ok:
            for r in report.tables:
                if r.status in ("restored", "checked"):
                    r.status = "failed"
                    r.error = "rolled back with the rest (single transaction): the target is unchanged"
                    r.rows = 0
    finally:
        runner.close_shared(ok)
    if hooks.update_schema_after_restore is not None and report.ok:
        with dialect.engine.begin() as conn:
            hooks.update_schema_after_restore(conn, arch.manifest)
    if report.ok and not runner.single:
        with dialect.engine.connect() as conn:
            journal.finish(conn, dialect, plan.archive_id)


# ----------------------------------------------------------------------------- recreate mode
#: what one row costs to load, in archive bytes: the cost of a table's load and index builds is
#: taken as its archive bytes plus this per row (scale 1: 3M small rows load slower than 60,000
#: documents of 4 KB), so that the longest work starts first and no big table loads alone at the end
ROW_WEIGHT = 100


def _recreate(arch: Archive, plan: RestorePlan, dialect: Dialect, targets: TargetTables,
              options: RestoreOptions, results: dict[str, TableResult], report: RestoreReport,
              runner: _Runner) -> Iterator[Event]:
    """Create and load every table, build its primary key (where it comes after the data)
    and indexes, then its foreign keys, on up to ``jobs`` sessions: one :class:`TaskGraph`.
    Every load starts before any index build (the largest first with ``jobs`` > 1, else in
    foreign-key order); a table's index builds are ready once its rows are committed, so they
    fill the sessions that the last loads leave idle; a foreign key is ready once both its
    tables have their indexes. The graph's locks keep two sessions off the same table where
    they would wait for each other. Then the orphan check and the sequences."""
    if plan.replace:
        with dialect.engine.connect() as conn:
            _drop_foreign_keys_into(conn, dialect, set(plan.replace), {s.name for s in plan.sources})
    resumed = {s.name for s in plan.sources if journal.WHOLE_TABLE in plan.done.get(s.name, set())}
    built = _structure_present(dialect, resumed)
    loaded = set(resumed)  # tables whose rows are in: their indexes are built
    graph = TaskGraph()
    # not capped by the table count: one table's index builds can run side by side
    jobs = _sessions(dialect, runner, options.jobs, options.jobs)
    data: dict[str, Task | None] = {}
    steps: dict[str, list[Task]] = {}
    # the DDL objects are all built here, before any task runs: naming them touches shared
    # state, and a foreign key must be taken out of CREATE TABLE before that table is created
    for position, source in enumerate(plan.sources):
        name, weight = source.name, _weight(source)
        result = results[name]
        if name in resumed:
            result.status, result.rows = "restored", source.entry.rows
            result.warnings.append("committed by an earlier run (resume)")
            data[name] = None
        else:
            data[name] = graph.add(partial(_create_and_load, arch, plan, dialect, targets, options,
                                           result, runner, source, loaded),
                                   # every load before any index
                                   priority=(1, _load_priority(source, position, jobs)),
                                   exclusive={name},
                                   payload=("data", source))
        steps[name] = [
            graph.add(partial(_index, runner, step, result, loaded), priority=(0, weight),
                      after=[data[name]], shared={name}, payload=("indexes", source))
            for step in index_steps(source.schema, targets, dialect)
            if not _already_built(step, built.get(name))
        ]
    if dialect.alter_add_foreign_key:
        for source in plan.sources:
            for fkc in targets.foreign_keys.get(source.name, []):
                targets.tables[source.name].append_constraint(fkc)
                add = sa.schema.AddConstraint(fkc)  # also takes it out of CREATE TABLE
                if _already_built([add], built.get(source.name)):
                    continue
                parent = fkc.referred_table.name
                graph.add(partial(_foreign_key, runner, add, results, source.name, parent),
                          priority=(0, _weight(source)),
                          after=[data[source.name], *steps[source.name], data.get(parent),
                                 *steps.get(parent, [])],
                          exclusive={source.name, parent}, payload=("constraints", source))
    yield from _run_graph(graph, jobs, plan, options, results, runner)
    fresh = [s for s in plan.sources if results[s.name].status == "restored"
             and s.name not in resumed]
    if dialect.fk_checks_off_sql is not None:  # PostgreSQL validated every key as it added it
        report.warnings.extend(_orphans(runner, dialect, [s.schema for s in fresh], options.jobs))
    for i, source in enumerate(plan.sources, start=1):
        if results[source.name].status == "restored":
            _set_sequence(runner, dialect, source.schema, results[source.name])
        yield Event("sequences", i, len(plan.sources), f"Sequence of {source.name}", source.name)


def _weight(source: Source) -> float:
    return source.entry.size + ROW_WEIGHT * source.entry.rows


def _load_priority(source: Source, position: int, jobs: int) -> float:
    """Loads on several sessions: the largest first, so that the last to start is a small one
    (no straggler); on one session: in the plan's (foreign-key) order."""
    return _weight(source) if jobs > 1 else -position


def _create_and_load(arch: Archive, plan: RestorePlan, dialect: Dialect, targets: TargetTables,
                     options: RestoreOptions, result: TableResult, runner: _Runner,
                     source: Source, loaded: set[str]) -> None:
    """(Drop,) create and load one table in one transaction, then add it to ``loaded``; a
    failure is recorded in ``result``, not raised: one table's failure must not stop the
    others."""
    t0 = time.monotonic()
    created = False
    replacing = source.name in plan.replace
    marked = journal.STARTED in plan.done.get(source.name, set())
    if not dialect.transactional_ddl and not runner.single and not marked:
        # committed before CREATE TABLE (which commits by itself here): --resume may then
        # replace this table, and only the tables so marked
        runner.unit(lambda conn: runner.record(conn, source.name, journal.STARTED, 0))

    def work(conn: Connection) -> int:
        nonlocal created
        if replacing:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {dialect.quote(source.name)}")
            if not dialect.transactional_ddl:
                result.warnings.append("the old table was dropped (DDL cannot roll back)")
        conn.execute(sa.schema.CreateTable(targets.tables[source.name]))
        created = True
        rows = 0
        if not options.schema_only:
            # one load for the whole table (one COPY, one staging file ...)
            batches = itertools.chain.from_iterable(
                _batches(arch, source, chunk, verify=False) for chunk in source.entry.chunks)
            rows = dialect.load(conn, source.schema, batches, fresh=True)
        runner.record(conn, source.name, journal.WHOLE_TABLE, rows)
        return rows

    try:
        result.rows = runner.unit(work)
        result.status = "restored"
        loaded.add(source.name)
    except Exception as exc:
        if created and not dialect.transactional_ddl and not runner.single:
            with dialect.engine.connect() as conn:
                _drop_quietly(conn, dialect, source.name)
                with contextlib.suppress(sa.exc.DBAPIError):
                    journal.unmark(conn, dialect, plan.archive_id, source.name, journal.STARTED)
        result.status = "failed"
        result.rows = 0
        result.error = f"{failure_message(exc)}; {_recreate_state(dialect, runner, replacing)}"
    finally:
        result.seconds = time.monotonic() - t0


def _recreate_state(dialect: Dialect, runner: _Runner, replacing: bool) -> str:
    """What a failed create-and-load left of the table."""
    if runner.single:
        return "rolled back with the rest (single transaction): the target is unchanged"
    if dialect.transactional_ddl:
        return ("rolled back: the table keeps its earlier definition and rows" if replacing
                else "rolled back: the table was not created")
    return ("the old table was dropped (this engine cannot roll DDL back) and the new one "
            "removed: the table is absent" if replacing
            else "the table was removed again: it is absent")


def _index(runner: _Runner, step: list[Any], result: TableResult, loaded: set[str]) -> None:
    """Build one index step of a table whose rows are in (a failed index does not stop the
    table's other indexes)."""
    if result.name in loaded:
        _step(runner, step, result, "index")


def _foreign_key(runner: _Runner, add: Any, results: dict[str, TableResult], child: str,
                 parent: str) -> None:
    """Add one foreign key, unless either table failed (a table outside the restore counts as
    there: the key was only planned if it is); a key left out because its parent failed is a
    warning of the child's."""
    if results[child].status != "restored":
        return
    if parent in results and results[parent].status != "restored":
        fkc = add.element
        name = fkc.name if isinstance(fkc.name, str) else None
        label = fk_label(name, [c.name for c in fkc.columns], parent)
        results[child].skip_object("foreign key", label,
                                   f"table {parent!r} failed to restore ({results[parent].status})")
        return
    _step(runner, [add], results[child], "foreign key")


def _run_graph(graph: TaskGraph, jobs: int, plan: RestorePlan, options: RestoreOptions,
               results: dict[str, TableResult], runner: _Runner) -> Iterator[Event]:
    """Run a restore's graph (payloads ``(phase, source)``) on ``jobs`` sessions, one event
    per finished task; after a failed load with ``--exit-on-error``, the loads not started are
    skipped (with ``--single-transaction``, everything not started)."""
    totals: dict[str, int] = {}
    for task in graph.tasks:
        totals[task.payload[0]] = totals.get(task.payload[0], 0) + 1
    done = dict.fromkeys(totals, 0)
    labels = {"data": "Restore table", "indexes": "Index of", "constraints": "Foreign key of"}
    for task in graph.run(jobs):
        phase, source = task.payload
        done[phase] += 1
        result = results[source.name]
        yield Event(phase, done[phase], totals[phase], f"{labels[phase]} {source.name}",
                    source.name, rows=result.rows)
        if phase == "data" and result.status == "failed" and (options.exit_on_error or runner.single):
            # the tables not started are skipped; with one transaction, everything is
            graph.drop(lambda t: not runner.single and t.payload[0] != "data")
            _skip_rest(plan, results, source.name, runner.single)


def _structure_present(dialect: Dialect, tables: set[str]) -> dict[str, set[str]]:
    """For tables committed by an earlier run (resume): the names of the indexes and
    constraints they have, and ``""`` for a primary key, so that only the missing ones are built
    (the earlier run may have stopped before or among them)."""
    out: dict[str, set[str]] = {}
    if not tables:
        return out
    with dialect.engine.connect() as conn:
        insp = sa.inspect(conn)
        schema = dialect.default_schema
        for name in tables:
            have = {ix["name"] for ix in insp.get_indexes(name, schema=schema) if ix["name"]}
            have |= {uc["name"] for uc in insp.get_unique_constraints(name, schema=schema) if uc["name"]}
            have |= {fk["name"] for fk in insp.get_foreign_keys(name, schema=schema) if fk["name"]}
            if insp.get_pk_constraint(name, schema=schema).get("constrained_columns"):
                have.add("")
            out[name] = have
    return out


def _already_built(step: list[Any], have: set[str] | None) -> bool:
    """Whether every element of an index/constraint step exists already (resume)."""
    if have is None:
        return False
    elements = [p for e in step for p in (e.parts if isinstance(e, CombinedDDL) else [e])]
    for element in elements:
        target = element.element
        if isinstance(target, sa.PrimaryKeyConstraint):
            if "" not in have:
                return False
        elif target.name is None or target.name not in have:
            return False
    return True


def _skip_rest(plan: RestorePlan, results: dict[str, TableResult], failed: str, single: bool) -> None:
    why = "single transaction" if single else "--exit-on-error"
    for source in plan.sources:
        r = results[source.name]
        if r.status == "pending":
            r.status = "skipped"
            r.error = f"not attempted: stopped after {failed!r} failed ({why})"


def _drop_quietly(conn: Connection, dialect: Dialect, name: str) -> None:
    with contextlib.suppress(sa.exc.DBAPIError):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {dialect.quote(name)}")


def _drop_foreign_keys_into(conn: Connection, dialect: Dialect, replace: set[str],
                            restored: set[str]) -> None:
    """Before replacing tables, drop foreign keys between tables this restore replaces."""
    if not dialect.alter_add_foreign_key:
        return
    insp = sa.inspect(conn)
    for name in sorted(replace):
        for fk in insp.get_foreign_keys(name, schema=dialect.default_schema):
            fk_name = fk.get("name")
            if fk.get("referred_table") in restored and fk_name:
                kw = dialect.drop_foreign_key_keyword
                conn.exec_driver_sql(
                    f"ALTER TABLE {dialect.quote(name)} DROP {kw} {dialect.quote(fk_name)}"
                )


def _sessions(dialect: Dialect, runner: _Runner, jobs: int, units: int) -> int:
    """How many sessions run ``units`` independent units of DDL or checks at once."""
    parallel = dialect.parallel_restore and not runner.single
    return max(1, min(jobs, units)) if parallel else 1


def _step(runner: _Runner, elements: list[Any], result: TableResult, what: str) -> None:
    def work(conn: Connection) -> None:
        for element in elements:
            if not isinstance(element, CombinedDDL):
                conn.execute(element)
                continue
            try:
                conn.exec_driver_sql(element.sql)
            except sa.exc.DBAPIError:  # one by one: the good ones built, the bad one named
                for part in element.parts:
                    conn.execute(part)

    try:
        runner.unit(work)
    except Exception as exc:  # the data is in; report the missing structure
        result.status = "failed"
        article = "an" if what[0] in "aeiou" else "a"
        result.error = (f"rows restored, but {article} {what} could not be created: "
                        f"{driver_message(exc)}")


def _orphans(runner: _Runner, dialect: Dialect, tables: list[Table], jobs: int) -> list[str]:
    """Rows whose foreign key points nowhere, per constraint (the checks were off or deferred
    for some engines while loading; MariaDB does not re-check when they come back on). The
    checks run on up to ``jobs`` sessions (each one reads a whole child table)."""
    q = dialect.quote
    checks = []
    for table in tables:
        for fk in table.foreign_keys:
            cond = " AND ".join(f"p.{q(r)} = c.{q(col)}" for col, r in zip(fk.columns, fk.ref_columns))
            notnull = " AND ".join(f"c.{q(col)} IS NOT NULL" for col in fk.columns)
            sql = (f"SELECT count(*) FROM {q(table.name)} c WHERE {notnull} AND NOT EXISTS "
                   f"(SELECT 1 FROM {q(fk.ref_table)} p WHERE {cond})")
            checks.append((table, fk, sql))

    def count(check: tuple[Table, Any, str]) -> Any:
        try:
            return runner.unit(lambda conn: conn.exec_driver_sql(check[2]).scalar())
        except sa.exc.DBAPIError:
            return None  # the referenced table is not there: reported elsewhere

    workers = _sessions(dialect, runner, jobs, len(checks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbcrate-orphans") as pool:
        counts = list(pool.map(count, checks))
    return [f"{table.name}: {n} rows break foreign key {fk.name or fk.columns} -> {fk.ref_table}"
            for (table, fk, _), n in zip(checks, counts) if n]


def _set_sequence(runner: _Runner, dialect: Dialect, table: Table, result: TableResult) -> None:
    """Make the next INSERT without an id work, then check that it will."""
    col = table.autoincrement_column
    if col is None:
        return

    def work(conn: Connection) -> tuple[int | None, int | None]:
        top = conn.exec_driver_sql(
            f"SELECT max({dialect.quote(col.name)}) FROM {dialect.quote(table.name)}"
        ).scalar()
        value = max(int(top) + 1 if top is not None else 1, table.next_value or 1)
        dialect.set_next_value(conn, table, col, value)
        return (int(top) if top is not None else None), dialect.next_value(conn, table)

    try:
        top, upcoming = runner.unit(work)
    except Exception as exc:
        result.warnings.append(f"next value of {col.name} not set: {driver_message(exc)}")
        return
    # verify: the next INSERT without an id must get one above every id present
    # (None: the engine hands out max+1 by itself, e.g. a SQLite rowid table)
    if upcoming is not None and top is not None and upcoming <= top:
        result.warnings.append(
            f"next value of {col.name} is {upcoming}, not above the largest id {top}: "
            "an INSERT without an id would collide"
        )


# ------------------------------------------------------------------------ into-existing mode
def _load_into_existing(arch: Archive, plan: RestorePlan, dialect: Dialect,
                        options: RestoreOptions, results: dict[str, TableResult],
                        runner: _Runner) -> Iterator[Event]:
    """Load every table into the existing schema. Without ``clean`` each chunk is its own
    transaction (a killed restore resumes per chunk); with ``clean`` a table is emptied and
    loaded in one transaction, so that a failure leaves its earlier rows - and where the engine
    checks foreign keys while loading, tables linked by them are emptied and loaded together
    (children emptied first), as emptying a parent alone would break its children's keys."""
    units = _clean_groups(plan, dialect) if options.clean else [[s] for s in plan.sources]

    def one(group: list[Source]) -> None:
        if options.clean:
            _clean_and_load(arch, plan, dialect, options, results, runner, group)
        else:
            _append_chunks(arch, plan, dialect, options, results[group[0].name], runner, group[0])

    jobs = _sessions(dialect, runner, options.jobs, len(units))
    if dialect.fk_checks_off_sql is None:
        jobs = 1  # its foreign keys are checked while loading: parents first, in order
    graph = TaskGraph()
    for position, group in enumerate(units):
        graph.add(partial(one, group), priority=(_load_priority(group[0], position, jobs),),
                  exclusive={s.name for s in group}, payload=("data", group[0]))
    yield from _run_graph(graph, jobs, plan, options, results, runner)
    # second pass, once every table is in: the cyclic foreign key columns loaded as NULL
    for source in plan.sources:
        nulled = plan.cyclic_columns.get(source.name, [])
        result = results[source.name]
        if nulled and result.status == "restored":
            try:
                _update_cyclic(arch, source, plan.maps[source.name], nulled, dialect, runner)
            except Exception as exc:
                result.status = "failed"
                result.error = (f"rows loaded, but setting {', '.join(nulled)} failed: "
                                f"{failure_message(exc)}; the rows stay, with those columns NULL")
            yield Event("constraints", 1, 1, f"Cyclic keys of {source.name}", source.name)


def _clean_groups(plan: RestorePlan, dialect: Dialect) -> list[list[Source]]:
    """The units a ``clean`` load empties and loads in one transaction each: every table on
    its own where the loading session turns foreign-key checks off, else the tables linked by
    foreign keys among the selected ones together (in plan order)."""
    if dialect.fk_checks_off_sql is not None:
        return [[s] for s in plan.sources]
    group_of = {s.name: s.name for s in plan.sources}

    def root(name: str) -> str:
        while group_of[name] != name:
            name = group_of[name]
        return name

    by_target = {plan.maps[s.name].target.name: s.name for s in plan.sources}
    for source in plan.sources:
        for fk in plan.maps[source.name].target.foreign_keys:
            parent = by_target.get(fk.ref_table)
            if parent is not None:
                group_of[root(source.name)] = root(parent)
    groups: dict[str, list[Source]] = {}
    for source in plan.sources:
        groups.setdefault(root(source.name), []).append(source)
    return list(groups.values())


def _source_batches(arch: Archive, plan: RestorePlan, source: Source,
                    chunk: Chunk) -> Iterator[pa.RecordBatch]:
    """A chunk's rows as the target takes them: converted, cyclic key columns NULL."""
    tmap = plan.maps[source.name]
    nulled = plan.cyclic_columns.get(source.name, [])
    for batch in _batches(arch, source, chunk, verify=False):
        batch = tmap.convert(batch)
        yield _null_columns(batch, nulled) if nulled else batch


def _finish_counts(result: TableResult, counts: ConflictCounts, policy: str) -> None:
    if policy != "error":
        result.conflicts = counts.to_dict()
    if policy == "check":
        result.status = "checked"


def _append_chunks(arch: Archive, plan: RestorePlan, dialect: Dialect, options: RestoreOptions,
                   result: TableResult, runner: _Runner, source: Source) -> None:
    """Append a table's chunks, one transaction each (``check``: compare, write nothing)."""
    load_schema = plan.maps[source.name].load_schema()
    counts = ConflictCounts(options.on_conflict)
    committed = plan.done.get(source.name, set())
    t0 = time.monotonic()
    try:
        for number, chunk in enumerate(source.entry.chunks):
            if number in committed:
                result.rows += chunk.rows
                continue

            def work(conn: Connection, chunk: Chunk = chunk, number: int = number) -> int:
                rows = load_with_policy(conn, dialect, load_schema,
                                        _source_batches(arch, plan, source, chunk),
                                        options.on_conflict, counts)
                if options.on_conflict != "check":
                    runner.record(conn, source.name, number, rows)
                return rows

            result.rows += runner.unit(work)
        result.status = "restored"
        _finish_counts(result, counts, options.on_conflict)
    except Exception as exc:
        result.status = "failed"
        if runner.single:
            state = "rolled back with the rest (single transaction): the target is unchanged"
        elif result.rows and options.on_conflict != "check":
            state = (f"{result.rows:,} rows of its earlier chunks stay committed; fix the cause "
                     "and rerun with --resume to load the rest")
        else:
            state = "nothing of it was written: the table is unchanged"
        result.error = f"{failure_message(exc)}; {state}"
    finally:
        result.seconds = time.monotonic() - t0


def _clean_and_load(arch: Archive, plan: RestorePlan, dialect: Dialect, options: RestoreOptions,
                    results: dict[str, TableResult], runner: _Runner, group: list[Source]) -> None:
    """Empty the group's tables (children first) and load them, in one transaction."""
    done = [s for s in group if journal.WHOLE_TABLE in plan.done.get(s.name, set())]
    for source in done:
        results[source.name].status, results[source.name].rows = "restored", source.entry.rows
        results[source.name].warnings.append("committed by an earlier run (resume)")
    todo = [s for s in group if s not in done]
    if not todo:
        return
    counts = {s.name: ConflictCounts(options.on_conflict) for s in todo}
    q = dialect.quote
    t0 = time.monotonic()

    def work(conn: Connection) -> dict[str, int]:
        for source in reversed(todo):
            target = plan.maps[source.name].target.name
            if plan.empty_table is not None:
                plan.empty_table(conn, target)
            else:
                conn.exec_driver_sql(f"DELETE FROM {q(target)}")
        loaded = {}
        for source in todo:
            load_schema = plan.maps[source.name].load_schema()
            batches = itertools.chain.from_iterable(
                _source_batches(arch, plan, source, chunk) for chunk in source.entry.chunks)
            loaded[source.name] = load_with_policy(conn, dialect, load_schema, batches,
                                                   options.on_conflict, counts[source.name])
            runner.record(conn, source.name, journal.WHOLE_TABLE, loaded[source.name])
        return loaded

    try:
        loaded = runner.unit(work)
        for source in todo:
            result = results[source.name]
            result.status, result.rows = "restored", loaded[source.name]
            _finish_counts(result, counts[source.name], options.on_conflict)
    except Exception as exc:
        together = (f" (emptied and loaded together with {', '.join(s.name for s in todo)}, "
                    "which foreign keys link)" if len(todo) > 1 else "")
        state = ("rolled back with the rest (single transaction): the target is unchanged"
                 if runner.single else
                 f"rolled back{together}: the table keeps its rows from before the restore")
        for source in todo:
            result = results[source.name]
            result.status, result.rows = "failed", 0
            result.error = f"{failure_message(exc)}; {state}"
    finally:
        for source in todo:
            results[source.name].seconds = (time.monotonic() - t0) / len(todo)


def _null_columns(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    arrays = [pa.nulls(batch.num_rows, f.type) if f.name in names else batch.column(i)
              for i, f in enumerate(batch.schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _update_cyclic(arch: Archive, source: Source, tmap: TableMap, columns: list[str],
                   dialect: Dialect, runner: _Runner) -> None:
    """Second pass for cyclic foreign keys: set the columns loaded as NULL, by primary key."""
    load_schema = tmap.load_schema()
    pk = load_schema.primary_key
    if not pk:
        raise UsageError(f"{source.name}: cyclic foreign keys need a primary key to update by")
    keep = pk + columns
    q = dialect.quote
    stage = Table(name=f"_dbcrate_stage_{os.urandom(4).hex()}",
                  columns=[load_schema.column(c) for c in keep])
    for chunk in source.entry.chunks:
        def work(conn: Connection, chunk: Chunk = chunk) -> None:
            cols = ", ".join(q(c) for c in keep)
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {q(stage.name)} AS SELECT {cols} FROM "
                                 f"{q(load_schema.name)} WHERE false")
            batches = (tmap.convert(b).select(keep) for b in _batches(arch, source, chunk, verify=False))
            _load_temp(conn, dialect, stage, batches)
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in columns)
            match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in pk)
            conn.exec_driver_sql(f"UPDATE {q(load_schema.name)} t SET {sets} FROM {q(stage.name)} s "
                                 f"WHERE {match}")
            conn.exec_driver_sql(f"DROP TABLE {q(stage.name)}")

        runner.unit(work)


def _load_temp(conn: Connection, dialect: Dialect, stage: Table, batches: Iterator[pa.RecordBatch]) -> int:
    """Load into a session-temporary table."""
    return dialect.load(conn, stage, batches, temporary=True)


def _finish_into_existing(arch: Archive, plan: RestorePlan, dialect: Dialect,
                          options: RestoreOptions, results: dict[str, TableResult],
                          report: RestoreReport, runner: _Runner) -> Iterator[Event]:
    loaded = [plan.maps[s.name].target for s in plan.sources if results[s.name].status == "restored"]
    if dialect.fk_checks_off_sql is not None:  # loaded with the checks off: check now
        report.warnings.extend(_orphans(runner, dialect, loaded, options.jobs))
    for i, target in enumerate(loaded, start=1):
        _set_sequence(runner, dialect, target, results[_source_name(plan, target.name)])
        yield Event("sequences", i, len(loaded), f"Sequence of {target.name}", target.name)


def _source_name(plan: RestorePlan, target: str) -> str:
    return next(s.name for s in plan.sources if plan.maps[s.name].target.name == target)


def restore(
    archive: str | os.PathLike[str] | Archive,
    url: str,
    options: RestoreOptions | None = None,
    **kwargs: Any,
) -> RestoreReport:
    """Restore an archive into a database; options may be given as keyword arguments.

    Returns the report; per-table failures are in it (``report.ok``), not raised.
    """
    if kwargs:
        options = RestoreOptions(**{**(options.__dict__ if options else {}), **kwargs})
    return drain(iter_restore(archive, url, options))


__all__ = ["RestoreOptions", "RestoreReport", "iter_restore", "restore", "row_keys"]
