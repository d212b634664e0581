"""Restore: plan and preflight everything, then load table by table.

Two modes (:attr:`RestoreOptions.mode`):

``recreate`` (default)
    Tables are created from the archive's schema in foreign-key order (with ``jobs`` > 1,
    the most work behind it first: ``schedule.by_critical_path``), each dropped (with
    ``clean``), created and loaded in its own transaction; then primary keys (PostgreSQL:
    after the rows, as ``pg_restore`` does), indexes and unique
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
Into a SQLite file the restore makes, the value checks are made on the rows as the loads read
them: a table with a refused value is not committed, and the refusal removes the file (the user
had none, and has none again).
A journal table in the target records what is committed, in the same transactions, so
``resume`` continues a killed restore (:mod:`dbcrate.restore.journal`).

The stages live in their own modules: :mod:`~dbcrate.restore.sources` (the archive side),
:mod:`~dbcrate.restore.planner` (the frozen :class:`~dbcrate.restore.plan.RestorePlan`),
:mod:`~dbcrate.restore.preflight`, :mod:`~dbcrate.restore.execute` (the one runner of the
plan's tasks: :mod:`~dbcrate.restore.recreate`, :mod:`~dbcrate.restore.existing`); this module
is the entry point and adds the storages.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dbcrate.connect import (
    claim_new_sqlite_file,
    create_database,
    discard_if_empty,
    discard_new_file,
    new_sqlite_file,
    open_engine,
    public_url,
)
from dbcrate.containers.archive import Archive
from dbcrate.errors import DatabaseError, UsageError, failure_message
from dbcrate.hooks import load_hooks
from dbcrate.options import RestoreOptions
from dbcrate.progress import Event, drain
from dbcrate.restore.execute import execute
from dbcrate.restore.plan import RestorePlan
from dbcrate.restore.planner import check_options, describe_plan, plan_restore
from dbcrate.restore.portability import row_keys
from dbcrate.restore.preflight import ChecksWithLoads, preflight, probe_policies, report_conflicts

# re-exported: callers import the report from here (dbcrate, cli, django)
from dbcrate.restore.report import RestoreReport as RestoreReport
from dbcrate.restore.report import TableResult as TableResult
from dbcrate.restore.session import Execution, Runner
from dbcrate.restore.sources import archive_sources
from dbcrate.storages import restore as storage_restore
from dbcrate.storages.file_check import FileCheck
from dbcrate.storages.file_check import describe as describe_file_check
from dbcrate.storages.index import StorageManifest


def iter_restore(
    archive: str | os.PathLike[str] | Archive,
    url: str,
    options: RestoreOptions | None = None,
) -> Generator[Event, None, RestoreReport]:
    """Restore ``archive`` into the database at ``url``; yields progress events and returns a
    :class:`RestoreReport` (it does not raise for per-table failures: see
    :meth:`RestoreReport.raise_for_failures`)."""
    options = options or RestoreOptions()
    check_options(options)
    started = time.monotonic()
    own = not isinstance(archive, Archive)
    arch = _opened(archive, options)
    try:
        report = yield from _restore_with_storages(arch, url, options)
    finally:
        if own:
            arch.close()
    report.seconds = time.monotonic() - started
    return report


def _opened(archive: Any, options: RestoreOptions) -> Archive:
    """The archive to restore: ``archive`` itself when it is open already, else opened here
    (re-hashing edited members with ``accept_edits``, which an open archive cannot take)."""
    if not isinstance(archive, Archive):
        if options.accept_edits:
            return Archive(archive, accept_edits=True)
        from dbcrate.crypto.keys import Keyring

        return Archive(archive, keys=Keyring.from_environment(options.identities))
    if options.accept_edits:
        raise UsageError("accept_edits=True reads the archive anew: it cannot take one that "
                         "is open already", hint="pass the archive's path")
    return archive


def _restore_with_storages(arch: Archive, url: str,
                           options: RestoreOptions) -> Generator[Event, None, RestoreReport]:
    """The tables, then the storages; the storages' preflight comes before anything is
    written, so that unsafe or conflicting files refuse the whole restore."""
    storage = arch.manifest.storage
    reader = storage_restore.reader_of(arch) if storage is not None else None
    wanted = storage is not None and options.storages_to is not None and not options.no_storages
    if options.no_data and not wanted:
        raise UsageError("no_data=True restores only the storages, and there are none to "
                         "restore", hint="give storages_to=DIR" if storage is not None else
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
    report.warnings.extend(e.describe() for e in arch.edited)  # nothing silent
    if storage is None:
        return report
    if not wanted:
        if not options.no_storages:
            report.warnings.append(
                f"the archive holds {storage.files:,} storage files; they were not restored "
                "(give storages_to=DIR to restore them)")
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
    if options.create:  # before anything connects to it (SQLite: the file is made below)
        create_database(url, clean=options.clean, dry_run=options.dry_run)
    created = claim_new_sqlite_file(url)
    try:
        return (yield from _restore_tables(arch, url, options, created))
    finally:
        discard_if_empty(created)


def _restore_tables(arch: Archive, url: str, options: RestoreOptions,
                    created: Path | None) -> Generator[Event, None, RestoreReport]:
    """Plan, preflight, then (unless a dry run) execute: the report of the tables. Into a
    database file this restore made (``created``), the values are checked while the rows load,
    and the file is removed if one is refused."""
    hooks = load_hooks(options.hooks)
    sources, warnings = archive_sources(arch, options, hooks)
    engine, dialect, parsed = open_engine(url)
    checks: ChecksWithLoads | None = None
    try:
        plan = plan_restore(arch, options, dialect, public_url(parsed), sources, warnings,
                            new_target=created is not None)
        report = RestoreReport(plan.target, [TableResult(s.name) for s in plan.sources],
                               list(plan.warnings), mode=plan.mode, strict=options.strict,
                               plan=plan.to_dict())
        # (a dry run checks first, as a restore into the user's file does: it writes nothing)
        if plan.settings.checks_with_loads and not plan.settings.dry_run:
            checks = ChecksWithLoads(arch, plan, dialect)
        ctx = Execution(arch, plan, dialect, Runner(dialect, plan.settings.single_transaction,
                                                    plan.archive_id), hooks, report, checks)
        describe_plan(plan, ctx.results)
        if plan.mode == "into-existing" and plan.settings.on_conflict != "error":
            probe_policies(plan, dialect)
        n = len(plan.sources)
        yield Event("plan", 0, n, f"{n} {'table' if n == 1 else 'tables'} to restore")
        if checks is None:
            yield from preflight(arch, plan, dialect)
        _not_recreated(plan, ctx)
        if plan.settings.dry_run:
            for r in report.tables:
                r.status = "planned"
            if plan.mode == "into-existing" and not plan.settings.clean:
                report_conflicts(arch, plan, dialect, ctx.results)
            return report
        yield from execute(ctx)  # (with checks, their end: before the hooks and the journal's)
        yield Event("done", len(plan.sources), len(plan.sources), "Restore complete")
        return report
    except sa.exc.DBAPIError as exc:
        # what the target said outside a table's unit (a unit's failure is in the report):
        # a lost session while the journal is written, say; as the dump's ``db_error`` does
        raise DatabaseError(
            failure_message(exc),
            hint="check the server and rerun; a restore with --resume skips the committed work",
        ) from None
    finally:
        try:
            engine.dispose()
        finally:
            # a value refused (or a check failed), even if the restore then stopped otherwise
            # (an interrupt): the file this restore made goes; else what it committed was checked
            if checks is not None and checks.refused and created is not None:
                discard_new_file(created)


def _not_recreated(plan: RestorePlan, ctx: Execution) -> None:
    """What the DDL leaves out (defaults, indexes the target cannot hold ...), by table;
    from the native schema, the objects of tables the selection leaves out."""
    if plan.native is not None:
        for out in plan.native.left_out:
            if out.table is not None:
                ctx.result(out.table).skip_object(out.kind, out.name, out.reason)
            else:
                ctx.report.warnings.append(f"not restored: {out.label} ({out.reason})")
    if plan.ddl is None:
        return
    ctx.report.warnings.extend(plan.ddl.warnings)
    for name, skipped in plan.ddl.not_recreated.items():
        for kind, obj, reason in skipped:
            ctx.result(name).skip_object(kind, obj, reason)


def plan(
    archive: str | os.PathLike[str] | Archive,
    url: str,
    options: RestoreOptions | None = None,
) -> RestorePlan:
    """The frozen plan of restoring ``archive`` into ``url`` with ``options``, as
    :func:`restore` would execute it; reads the target, writes nothing (no preflight: use
    ``dry_run`` for the value checks)."""
    options = options or RestoreOptions()
    check_options(options)
    arch = _opened(archive, options)
    created = new_sqlite_file(url)
    engine, dialect, parsed = open_engine(url)
    try:
        sources, warnings = archive_sources(arch, options, load_hooks(options.hooks))
        return plan_restore(arch, options, dialect, public_url(parsed), sources, warnings,
                            new_target=created is not None)
    finally:
        engine.dispose()
        discard_if_empty(created)
        if arch is not archive:
            arch.close()


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


__all__ = ["RestoreOptions", "RestorePlan", "RestoreReport", "iter_restore", "plan", "restore",
           "row_keys"]
