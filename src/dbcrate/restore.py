"""Restore: preflight everything, then recreate tables one transaction each.

Order of work (docs/FORMAT.md "Restore"):

1. **Plan and preflight**, touching nothing: select tables, refuse existing tables without
   ``clean``, check names and every value against the target (cross-engine), verify the SHA-256
   and decode every selected member. Any problem stops here.
2. **Tables** in foreign-key order, each in its own transaction: (drop,) create with primary
   key, load the rows. A failure rolls that table back and the restore carries on (or stops with
   ``exit_on_error``).
3. **Indexes and unique constraints**, then **foreign keys**, then **sequences** (identity,
   serial, AUTO_INCREMENT, sqlite_sequence) so that the next INSERT without an id works.
4. A :class:`RestoreReport` of what was restored and what failed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .archive import Archive
from .connect import open_engine, public_url
from .ddl import TargetTables, build_tables, foreign_keys, index_objects
from .dialects import Dialect, engine_name
from .errors import NotPortable, RestoreIncomplete, TargetConflict, UsageError
from .logical import LogicalType
from .manifest import TableEntry
from .options import RestoreOptions
from .portability import ProblemCollector, batch_problems, target_lengths
from .progress import Event
from .schema import Table, dependency_order
from .selection import select_tables


@dataclass
class TableResult:
    """The outcome for one table: ``restored``, ``failed`` or ``skipped``."""

    name: str
    status: str = "pending"
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class RestoreReport:
    """What a restore did, table by table."""

    target: str
    tables: list[TableResult]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.status != "failed" for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def raise_for_failures(self) -> None:
        if not self.ok:
            raise RestoreIncomplete(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "tables": [t.__dict__ for t in self.tables],
        }


@dataclass
class RestorePlan:
    """The tables to restore, in load order, and what will happen to each."""

    entries: list[TableEntry]
    same_engine: bool
    replace: list[str]
    target: str

    def describe(self) -> list[str]:
        lines = []
        for entry in self.entries:
            action = "drop, create, load" if entry.name in self.replace else "create, load"
            lines.append(f"{entry.name}: {action} {entry.rows} rows")
        return lines


def _sa_errors(exc: BaseException) -> str:
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        return str(exc.orig).strip().splitlines()[0]
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def iter_restore(
    archive: str | os.PathLike[str] | Archive,
    url: str,
    options: RestoreOptions | None = None,
) -> Generator[Event, None, RestoreReport]:
    """Restore ``archive`` into the database at ``url``; yields progress events and returns a
    :class:`RestoreReport` (it does not raise for per-table failures: see
    :meth:`RestoreReport.raise_for_failures`)."""
    options = options or RestoreOptions()
    started = time.monotonic()
    own = not isinstance(archive, Archive)
    arch = Archive(archive) if not isinstance(archive, Archive) else archive
    try:
        report = yield from _restore(arch, url, options)
    finally:
        if own:
            arch.close()
    report.seconds = time.monotonic() - started
    return report


def _restore(arch: Archive, url: str, options: RestoreOptions) -> Generator[Event, None, RestoreReport]:
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
    engine, dialect, parsed = open_engine(url)
    shown = public_url(parsed)
    try:
        same_engine = engine_name(dialect) == manifest.source.engine
        ordered = dependency_order([e.schema for e in entries])
        entries = [manifest.table(t.name) for t in ordered]
        with engine.connect() as conn:
            if hasattr(dialect, "inspect_target"):
                dialect.inspect_target(conn)
        names_wrong = dialect.name_problems([e.schema for e in entries])
        if names_wrong:
            raise NotPortable(shown, names_wrong)
        present = _target_tables(engine, dialect)
        if dialect.case_insensitive_tables:
            lowered = {p.lower() for p in present}
            existing = {e.name for e in entries if e.name.lower() in lowered}
        else:
            existing = {e.name for e in entries if e.name in present}
        if existing and not options.clean:
            raise TargetConflict(sorted(existing), shown)
        plan = RestorePlan(entries, same_engine, sorted(existing), shown)
        yield Event("plan", 0, len(entries), f"{len(entries)} tables to restore")

        targets = build_tables(
            [e.schema for e in entries],
            dialect,
            same_engine=same_engine,
            inline_foreign_keys=not dialect.alter_add_foreign_key,
            existing=present,
        )
        yield from _preflight(arch, plan, dialect, targets, options)

        report = RestoreReport(shown, [TableResult(e.name) for e in entries], list(targets.warnings))
        results = {r.name: r for r in report.tables}
        for entry in entries:
            for item in entry.schema.skipped:
                results[entry.name].warnings.append(f"not recreated: {item}")
        if options.dry_run:
            for entry in entries:
                r = results[entry.name]
                r.status = "planned"
                r.rows = entry.rows
                r.warnings.append(
                    ("drop and recreate" if entry.name in plan.replace else "create")
                    + (", load " + str(entry.rows) + " rows" if not options.schema_only else "")
                )
            return report
        yield from _load_tables(arch, plan, dialect, targets, options, results, report)
        yield from _post_data(plan, dialect, targets, options, results, report)
        yield Event("done", len(entries), len(entries), "Restore complete")
        return report
    finally:
        engine.dispose()


def _target_tables(engine: sa.Engine, dialect: Dialect) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=dialect.default_schema))


def _preflight(
    arch: Archive,
    plan: RestorePlan,
    dialect: Dialect,
    targets: TargetTables,
    options: RestoreOptions,
) -> Iterator[Event]:
    """Names, values and integrity, before anything is written."""
    problems = ProblemCollector()
    check_values = not plan.same_engine and not options.schema_only
    total = sum(c.size for e in plan.entries for c in e.chunks)
    done = 0
    for entry in plan.entries:
        if options.schema_only:
            continue
        lengths = target_lengths(entry.schema, targets.types[entry.name])
        decimals = _decimal_targets(entry.schema, targets.types[entry.name])
        base = 0
        for chunk in entry.chunks:
            if check_values:
                for batch in arch.chunk_batches(entry, chunk, verify=options.verify):
                    found = batch_problems(entry.schema, batch, dialect, lengths, decimals)
                    problems.add_batch(entry.schema, batch, base, found)
                    base += batch.num_rows
            elif options.verify:
                for _ in arch.chunk_batches(entry, chunk, verify=True):
                    pass
            done += chunk.size
            yield Event("verify", done, total, f"Check {entry.name}", entry.name, bytes=done)
    refused = problems.problems()
    if refused:
        raise NotPortable(plan.target, refused)


def _decimal_targets(table: Table, types: dict[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    out: dict[str, tuple[int | None, int | None]] = {}
    for col in table.columns:
        if col.type.kind == "decimal":
            t = types.get(col.name)
            out[col.name] = (getattr(t, "precision", None), getattr(t, "scale", None))
    return out


def _begin(conn: Connection, dialect: Dialect) -> None:
    conn.exec_driver_sql("BEGIN" if dialect.name != "mysql" else "START TRANSACTION")


def _restore_one(
    arch: Archive,
    plan: RestorePlan,
    dialect: Dialect,
    targets: TargetTables,
    options: RestoreOptions,
    entry: TableEntry,
    result: TableResult,
) -> None:
    """Create and load one table in its own connection and transaction; record the outcome."""
    t0 = time.monotonic()
    created = False
    with dialect.engine.connect() as conn:
        dialect.prepare_restore_session(conn)
        try:
            _begin(conn, dialect)
            if entry.name in plan.replace:
                if dialect.name == "mysql":
                    conn.exec_driver_sql("SET foreign_key_checks = 0")
                conn.exec_driver_sql(f"DROP TABLE {dialect.quote(entry.name)}")
                if not dialect.transactional_ddl:
                    result.warnings.append("the old table was dropped (DDL cannot roll back)")
            conn.execute(sa.schema.CreateTable(targets.tables[entry.name]))
            created = True
            if not options.schema_only and entry.chunks:
                result.rows = dialect.load(conn, entry.schema, _entry_batches(arch, entry))
            conn.exec_driver_sql("COMMIT")
            result.status = "restored"
        except Exception as exc:  # one table's failure must not stop the others
            _rollback(conn)
            if created and not dialect.transactional_ddl:
                _drop_quietly(conn, dialect, entry.name)
            result.status = "failed"
            result.rows = 0
            result.error = _sa_errors(exc)
        finally:
            result.seconds = time.monotonic() - t0


def _load_tables(
    arch: Archive,
    plan: RestorePlan,
    dialect: Dialect,
    targets: TargetTables,
    options: RestoreOptions,
    results: dict[str, TableResult],
    report: RestoreReport,
) -> Iterator[Event]:
    if plan.replace:
        with dialect.engine.connect() as conn:
            _drop_foreign_keys_into(conn, dialect, set(plan.replace), {e.name for e in plan.entries})
    jobs = max(1, min(options.jobs, len(plan.entries))) if dialect.parallel_restore else 1
    total = len(plan.entries)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dbcrate-restore") as pool:
        futures = {
            pool.submit(_restore_one, arch, plan, dialect, targets, options, e, results[e.name]): e
            for e in plan.entries
        }
        for done, future in enumerate(as_completed(futures), start=1):
            entry = futures[future]
            future.result()
            result = results[entry.name]
            yield Event("data", done, total, f"Restore table {entry.name}", entry.name,
                        rows=result.rows)
            if result.status == "failed" and options.exit_on_error:
                for f in futures:
                    f.cancel()
                _skip_rest(plan, results, entry.name)
                break


def _entry_batches(arch: Archive, entry: TableEntry) -> Iterator[pa.RecordBatch]:
    # integrity was checked in the preflight; decoding checks schema and row counts again
    for chunk in entry.chunks:
        yield from arch.chunk_batches(entry, chunk, verify=False)


def _skip_rest(plan: RestorePlan, results: dict[str, TableResult], failed: str) -> None:
    for entry in plan.entries:
        r = results[entry.name]
        if r.status == "pending":
            r.status = "skipped"
            r.error = f"not attempted: stopped after {failed!r} failed (--exit-on-error)"


def _rollback(conn: Connection) -> None:
    with contextlib.suppress(sa.exc.DBAPIError):
        conn.exec_driver_sql("ROLLBACK")


def _drop_quietly(conn: Connection, dialect: Dialect, name: str) -> None:
    with contextlib.suppress(sa.exc.DBAPIError):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {dialect.quote(name)}")


def _drop_foreign_keys_into(
    conn: Connection, dialect: Dialect, replace: set[str], restored: set[str]
) -> None:
    """Before replacing tables, drop foreign keys between tables this restore replaces."""
    if not dialect.alter_add_foreign_key:
        return
    insp = sa.inspect(conn)
    for name in sorted(replace):
        for fk in insp.get_foreign_keys(name, schema=dialect.default_schema):
            fk_name = fk.get("name")
            if fk.get("referred_table") in restored and fk_name:
                kw = "FOREIGN KEY" if dialect.name == "mysql" else "CONSTRAINT"
                conn.exec_driver_sql(
                    f"ALTER TABLE {dialect.quote(name)} DROP {kw} {dialect.quote(fk_name)}"
                )


def _post_data(
    plan: RestorePlan,
    dialect: Dialect,
    targets: TargetTables,
    options: RestoreOptions,
    results: dict[str, TableResult],
    report: RestoreReport,
) -> Iterator[Event]:
    restored = [e for e in plan.entries if results[e.name].status == "restored"]
    known_warnings = len(targets.warnings)
    # index DDL objects are built here, serially: naming them touches shared state
    index_work = [(e, index_objects(e.schema, targets, dialect)) for e in restored]
    jobs = max(1, min(options.jobs, len(index_work))) if dialect.parallel_restore else 1

    def build(entry: TableEntry, elements: list[Any]) -> None:
        if elements:
            with dialect.engine.connect() as c:
                dialect.prepare_restore_session(c)
                _step(c, dialect, elements, results[entry.name], "index")

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="dbcrate-index") as pool:
        futures = {pool.submit(build, e, els): e for e, els in index_work}
        for i, future in enumerate(as_completed(futures), start=1):
            future.result()
            entry = futures[future]
            yield Event("indexes", i, len(restored), f"Indexes of {entry.name}", entry.name)
    with dialect.engine.connect() as conn:
        dialect.prepare_restore_session(conn)
        if dialect.alter_add_foreign_key:
            ok = {e.name for e in restored}
            for i, entry in enumerate(restored, start=1):
                fks = [
                    fk for fk in foreign_keys(entry.schema, targets, dialect, _existing(conn, dialect))
                    if fk.referred_table.name in ok or fk.referred_table.name not in results
                ]
                for fkc in fks:
                    targets.tables[entry.name].append_constraint(fkc)
                if fks:
                    _step(conn, dialect, [sa.schema.AddConstraint(f) for f in fks],
                          results[entry.name], "foreign key")
                yield Event("constraints", i, len(restored), f"Foreign keys of {entry.name}",
                            entry.name)
        else:
            report.warnings.extend(_orphans_sqlite(conn, dialect, [e.name for e in restored]))
        for i, entry in enumerate(restored, start=1):
            _set_sequence(conn, dialect, entry, results[entry.name])
            yield Event("sequences", i, len(restored), f"Sequence of {entry.name}", entry.name)
    report.warnings.extend(targets.warnings[known_warnings:])


def _existing(conn: Connection, dialect: Dialect) -> set[str]:
    return set(sa.inspect(conn).get_table_names(schema=dialect.default_schema))


def _step(conn: Connection, dialect: Dialect, elements: list[Any], result: TableResult, what: str) -> None:
    try:
        _begin(conn, dialect)
        for element in elements:
            conn.execute(element)
        conn.exec_driver_sql("COMMIT")
    except Exception as exc:  # the data is in; report the missing structure
        _rollback(conn)
        result.status = "failed"
        result.error = f"rows restored, but a {what} could not be created: {_sa_errors(exc)}"


def _set_sequence(conn: Connection, dialect: Dialect, entry: TableEntry, result: TableResult) -> None:
    table = entry.schema
    col = table.autoincrement_column
    if col is None:
        return
    try:
        top = conn.exec_driver_sql(
            f"SELECT max({dialect.quote(col.name)}) FROM {dialect.quote(table.name)}"
        ).scalar()
        value = max(int(top) + 1 if top is not None else 1, table.next_value or 1)
        _begin(conn, dialect)
        dialect.set_next_value(conn, table, col, value)
        conn.exec_driver_sql("COMMIT")
    except Exception as exc:
        _rollback(conn)
        result.warnings.append(f"next value of {col.name} not set: {_sa_errors(exc)}")


def _orphans_sqlite(conn: Connection, dialect: Dialect, names: list[str]) -> list[str]:
    warnings = []
    for name in names:
        rows = conn.exec_driver_sql(f"PRAGMA foreign_key_check({dialect.quote(name)})").all()
        if rows:
            warnings.append(f"{name}: {len(rows)} rows reference missing parent rows")
    return warnings


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
    gen = iter_restore(archive, url, options)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            report: RestoreReport = stop.value
            return report


__all__ = ["LogicalType", "RestoreOptions", "RestoreReport", "iter_restore", "restore"]
