"""Recreate mode: the work of each task kind, and what comes after the graph.

Each table is (dropped,) created and loaded in one transaction (:func:`create_and_load`); its
primary key (where it comes after the data) and indexes are built once its rows are in
(:func:`build_index`), its foreign keys once both tables have their indexes
(:func:`add_foreign_key`); then the orphan check and the sequences (:func:`finish`). A failure
is recorded in the table's result, never raised: one table's failure must not stop the others.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.dialects import Dialect
from dbcrate.dialects.reflection import quiet_reflection
from dbcrate.errors import ArchiveCorrupt, driver_message, failure_message
from dbcrate.model.manifest import Chunk
from dbcrate.progress import Event
from dbcrate.restore import journal
from dbcrate.restore.ddl import CombinedDDL
from dbcrate.restore.finish import orphans, set_sequence
from dbcrate.restore.plan import AddForeignKey, BuildIndex, LoadTable, Source
from dbcrate.restore.report import TableResult
from dbcrate.restore.session import ROLLED_BACK_WITH_THE_REST, Execution, Runner
from dbcrate.restore.sources import batches, loads_as_stored

#: a table created by an earlier transaction (the native schema's pre-data) is made "fresh"
#: (PostgreSQL: TRUNCATE, for COPY ... FREEZE) only when its archive data is at least this
#: large: for a small table the TRUNCATE costs more than freezing its rows saves (2,000 tables
#: of 20 rows: 2.6 s of the server's time for the TRUNCATEs alone)
FRESH_MIN_BYTES = 1024 * 1024
#: the state of a table the native schema created, after its load was rolled back
STAYS_EMPTY = "rolled back: the table, created empty by the native schema, stays empty"
#: ... and when emptying it again failed (its load apart had committed rows)
NOT_EMPTIED = ("the table, created by the native schema, may hold rows of this load (emptying "
               "it failed): --resume empties and loads it")


def create_and_load(ctx: Execution, task: LoadTable) -> None:
    """(Drop,) create and load one table in one transaction, then add it to ``ctx.loaded``;
    a failure is recorded in its result, and where DDL cannot roll back, the half-made table
    is removed again. Into a database file the restore made (:func:`_loads_apart`), the table
    is created and committed first, and the dialect may load its rows by a connection of its
    own (:meth:`~dbcrate.dialects.base.Dialect.load_committed`): marked started first, as
    where DDL cannot roll back, and removed again if the load fails. A table the native
    schema's pre-data made is loaded so too, and emptied again if its load fails; a resumed
    restore empties such a table before it loads it (the killed run may have committed rows
    of it)."""
    dialect, runner, plan = ctx.dialect, ctx.runner, ctx.plan
    source, result = plan.source(task.table), ctx.result(task.table)
    if plan.native is not None and result.status == "failed":
        return  # its native definition failed (the prologue said why)
    # from the native schema, the pre-data created the table already
    sa_table = plan.ddl.tables[source.name] if plan.ddl is not None else None
    t0 = time.monotonic()
    created = False
    native = plan.native is not None
    # (from the native schema too: the pre-data committed the table, empty)
    apart = (sa_table is not None or native) and _loads_apart(ctx, source)
    if (apart or (sa_table is not None and not dialect.transactional_ddl)) and not runner.single:
        _mark_started(ctx, source.name)

    def create(conn: Connection) -> None:
        nonlocal created
        if task.replace:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {dialect.table_sql(source.name)}")
            if not dialect.transactional_ddl:
                result.warnings.append("the old table was dropped (DDL cannot roll back)")
        if sa_table is not None:
            conn.execute(sa.schema.CreateTable(sa_table))
            created = True

    def work(conn: Connection) -> int:
        create(conn)
        if native and journal.STARTED in plan.done.get(source.name, frozenset()):
            # resumed: the killed run loaded it apart, and may have committed rows of it
            _empty(ctx, conn, source.name)
        rows = 0
        fresh = created or (ctx.arch.expected_size(source.entry)[1] >= FRESH_MIN_BYTES
                            and dialect.make_fresh(conn, source.name))
        if not plan.settings.schema_only:
            rows = load_rows(ctx, conn, source, fresh)
        runner.record(conn, source.name, journal.WHOLE_TABLE, rows)
        return rows

    try:
        result.rows = (_load_apart(ctx, source, create if sa_table is not None else None)
                       if apart else runner.unit(work))
        result.status = "restored"
        ctx.loaded.add(source.name)
    except Exception as exc:
        if runner.interrupts.stopped:  # Ctrl-C cancelled the load: the journal says the rest
            raise
        _failed(ctx, task, exc, created=created, apart=apart)
    finally:
        result.seconds = time.monotonic() - t0


def _load_apart(ctx: Execution, source: Source,
                create: Callable[[Connection], None] | None) -> int:
    """The table created (``create``, unless the native schema's pre-data did) and committed,
    its rows loaded by the dialect's own connection, then what it left and the journal's mark
    in one transaction; the rows loaded."""
    dialect, runner = ctx.dialect, ctx.runner
    if create is not None:
        runner.unit(create)
    rows, rest = dialect.load_committed(source.schema, rows_read(ctx, source))

    def finish(conn: Connection) -> int:
        more = dialect.load(conn, source.schema, rest)  # (what the dialect left to it)
        runner.record(conn, source.name, journal.WHOLE_TABLE, rows + more)
        return rows + more

    return int(runner.unit(finish))


def _failed(ctx: Execution, task: LoadTable, exc: Exception, *, created: bool,
            apart: bool) -> None:
    """Record the failure of ``task`` in its result, with what it left of the table; where
    the table was committed before its load failed (DDL that cannot roll back, or created
    apart from its rows), it is removed again."""
    dialect, runner = ctx.dialect, ctx.runner
    if created and (apart or not dialect.transactional_ddl) and not runner.single:
        _remove_half_made(ctx, task.table)
    native = ctx.plan.native is not None and not runner.single
    emptied = not (native and apart) or _emptied(ctx, task.table)
    result = ctx.result(task.table)
    result.status, result.rows = "failed", 0
    state = (STAYS_EMPTY if native and emptied else NOT_EMPTIED if native
             else _state_after_failure(dialect, runner, task.replace, apart))
    result.error = f"{failure_message(exc)}; {state}"


def _empty(ctx: Execution, conn: Connection, table: str) -> None:
    conn.exec_driver_sql(f"DELETE FROM {ctx.dialect.table_sql(table)}")


def _emptied(ctx: Execution, table: str) -> bool:
    """Empty a table the native schema created, whose load apart failed (its rows may have
    been committed before the step after them failed); whether that worked."""
    try:
        ctx.runner.unit(lambda conn: _empty(ctx, conn, table))
    except Exception:  # (reported by the table's state: it may hold rows)
        return False
    return True


def _loads_apart(ctx: Execution, source: Source) -> bool:
    """Whether the table is created and committed before its rows, which the dialect then
    loads by a connection of its own: into a database file the restore made (no one else
    sees it), a table at a time, rows that are decoded (not an engine's own rows)."""
    settings = ctx.plan.settings
    return (ctx.dialect.loads_committed and settings.new_target and not ctx.runner.single
            and not settings.schema_only and not loads_as_stored(ctx.arch, ctx.dialect, source))


def _mark_started(ctx: Execution, table: str) -> None:
    """Commit the journal's mark that this archive's restore creates ``table`` (before its
    ``CREATE TABLE`` is committed, by itself or apart from the rows): --resume may then replace
    this table, and only the tables so marked."""
    if journal.STARTED not in ctx.plan.done.get(table, frozenset()):
        ctx.runner.unit(lambda conn: ctx.runner.record(conn, table, journal.STARTED, 0))


def rows_read(ctx: Execution, source: Source) -> Iterator[pa.RecordBatch]:
    """The table's rows as the dialect's load takes them: every chunk decoded (its checksum
    checked where the checks ask for it), metered, checked against the target as they pass
    (``checks_with_loads``), stopped by Ctrl-C. The chunks are taken as the archive gives
    them: a table a ``copy`` is still reading loads while it is read
    (:meth:`~dbcrate.containers.base.Archive.table_chunks`)."""
    checks = ctx.checks
    verify = checks is not None and checks.verify
    chunks = ctx.arch.table_chunks(source.entry, lambda: ctx.runner.interrupts.stopped)
    read: Iterator[pa.RecordBatch] = itertools.chain.from_iterable(
        ctx.progress.metered(source.name, batches(ctx.arch, source, chunk, verify=verify),
                             chunk.rows, chunk.size)
        for chunk in chunks)
    if checks is not None:  # (the values are checked as they pass, not before)
        read = checks.passing(source, read)
    return ctx.runner.interrupts.checked(read)


def load_rows(ctx: Execution, conn: Connection, source: Source, fresh: bool) -> int:
    """All the table's chunks in one load (one COPY, one staging file ...) in ``conn``'s
    transaction (:func:`rows_read`); an engine's own rows as they are stored, where the target
    reads them and no transform changes them."""
    dialect = ctx.dialect
    if not loads_as_stored(ctx.arch, dialect, source):
        return dialect.load(conn, source.schema, rows_read(ctx, source), fresh=fresh)
    taken: list[Chunk] = []  # (what the load was given: the whole table once it ends)
    chunks = _noted(ctx.arch.table_chunks(source.entry, lambda: ctx.runner.interrupts.stopped),
                    taken)
    rows = dialect.load_native_rows(conn, source.schema, ctx.runner.interrupts.checked(
        itertools.chain.from_iterable(
            ctx.progress.metered(source.name,
                                 ctx.arch.chunk_text(source.entry, chunk, verify=False),
                                 chunk.rows, chunk.size)
            for chunk in chunks)),
        fresh=fresh)
    expected = sum(chunk.rows for chunk in taken)
    if rows != expected:  # (a line "\\." ends COPY's text early: never one dbcrate wrote)
        raise ArchiveCorrupt(f"table {source.name!r}: the server read {rows:,} rows of the "
                             f"archive's {expected:,}", hint="check the archive with "
                             "`dbcrate verify`")
    return rows


def _noted(chunks: Iterator[Chunk], taken: list[Chunk]) -> Iterator[Chunk]:
    """``chunks``, each added to ``taken`` as it is given."""
    for chunk in chunks:
        taken.append(chunk)
        yield chunk


def _remove_half_made(ctx: Execution, table: str) -> None:
    with ctx.dialect.engine.connect() as conn:
        with contextlib.suppress(sa.exc.DBAPIError):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {ctx.dialect.table_sql(table)}")
        with contextlib.suppress(sa.exc.DBAPIError):
            journal.unmark(conn, ctx.dialect, ctx.plan.archive_id, table, journal.STARTED)


def _state_after_failure(dialect: Dialect, runner: Runner, replacing: bool,
                         apart: bool = False) -> str:
    """What a failed create-and-load left of the table (``apart``: created and committed
    before its load, as :func:`create_and_load` says)."""
    if runner.single:
        return ROLLED_BACK_WITH_THE_REST
    if apart:
        return ("the old table was dropped and the new one removed: the table is absent"
                if replacing else "the table was removed again: it is absent")
    if dialect.transactional_ddl:
        return ("rolled back: the table keeps its earlier definition and rows" if replacing
                else "rolled back: the table was not created")
    return ("the old table was dropped (this engine cannot roll DDL back) and the new one "
            "removed: the table is absent" if replacing
            else "the table was removed again: it is absent")


def build_index(ctx: Execution, task: BuildIndex) -> None:
    """Build one index step of a table whose rows are in (a failed index does not stop the
    table's other indexes)."""
    if task.table in ctx.loaded:
        step = ctx.plan.index_steps[task.table][task.step]
        run_step(ctx.runner, list(step), ctx.result(task.table), "index")


def add_foreign_key(ctx: Execution, task: AddForeignKey) -> None:
    """Add one foreign key, unless either table failed (a table outside the restore counts as
    there: the key was only planned if it is); a key left out because its parent failed is a
    warning of the child's."""
    child = ctx.result(task.table)
    if child.status != "restored":
        return
    parent = ctx.results.get(task.parent)
    if parent is not None and parent.status != "restored":
        child.skip_object("foreign key", task.name,
                          f"table {task.parent!r} failed to restore ({parent.status})")
        return
    run_step(ctx.runner, [ctx.plan.foreign_keys[task.table][task.number]], child, "foreign key")


def run_step(runner: Runner, elements: list[Any], result: TableResult, what: str) -> None:
    """Run DDL elements in one unit; a failure marks the table failed (its rows are in) and
    names the missing structure. A combined statement that fails runs again part by part, so
    that the good ones are built and the error names the bad one."""
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


def drop_foreign_keys_into(ctx: Execution) -> None:
    """Before replacing tables, drop foreign keys between tables this restore replaces."""
    dialect, plan = ctx.dialect, ctx.plan
    if not plan.replace or not dialect.alter_add_foreign_key:
        return
    restored = {s.name for s in plan.sources}
    with dialect.engine.connect() as conn, quiet_reflection():
        insp = sa.inspect(conn)
        for name in sorted(plan.replace):
            schema, own = dialect.where(name)
            for fk in insp.get_foreign_keys(own, schema=schema):
                fk_name = fk.get("name")
                ref_schema = fk.get("referred_schema") or dialect.default_schema
                referred = (dialect.located(ref_schema, fk["referred_table"]) if ref_schema
                            else fk["referred_table"])
                if referred in restored and fk_name:
                    conn.exec_driver_sql(f"ALTER TABLE {dialect.table_sql(name)} DROP "
                                         f"{dialect.drop_foreign_key_keyword} {dialect.quote(fk_name)}")


def create_schemas(ctx: Execution) -> None:
    """Create the schemas of the recreated tables that the target lacks (tables of several
    PostgreSQL schemas restored through the portable schema; the native schema creates its
    own): once, before any table, so that parallel sessions do not race to create them."""
    schemas = ctx.dialect.schemas_of(s.name for s in ctx.plan.sources)
    if not schemas or ctx.plan.ddl is None:
        return

    def work(conn: Connection) -> None:
        for schema in schemas:
            conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))

    ctx.runner.unit(work)


def finish(ctx: Execution) -> Iterator[Event]:
    """After the graph: the orphan check of the tables this run loaded (PostgreSQL validated
    every key as it added it), then every restored table's sequence."""
    plan = ctx.plan
    fresh = [s for s in plan.sources
             if ctx.result(s.name).status == "restored" and s.name not in plan.resumed]
    if ctx.dialect.fk_checks_off_sql is not None:
        ctx.report.warnings.extend(orphans(ctx, [s.schema for s in fresh]))
    for i, source in enumerate(plan.sources, start=1):
        # from the native schema, its data section set the sequences as the source had them
        if ctx.result(source.name).status == "restored" and plan.native is None:
            set_sequence(ctx.runner, ctx.dialect, source.schema, ctx.result(source.name))
        yield Event("sequences", i, len(plan.sources), f"Sequence of {source.name}", source.name)
