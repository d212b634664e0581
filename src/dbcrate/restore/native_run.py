"""Running the native schema's checked objects (:mod:`dbcrate.restore.native` plans them):
statement by statement or many to a message, and the **pre-data** (with ``--clean``'s
drops) before any row, in one transaction where the engine can hold that many locks, else in
several, each journaled.

Why several: PostgreSQL holds a lock per relation a transaction creates or drops until it
commits, in a lock table of fixed size shared by every session
(``max_locks_per_transaction`` x (``max_connections`` + ``max_prepared_transactions``): 6,400
with the defaults). ``CREATE TABLE`` of a table with a text column takes five of them (the
table, its TOAST table and index, a share lock and the type), ``DROP TABLE`` of such a table
with a key and an index eight. A pre-data of 4,000 tables in one transaction ran out of
shared memory at the 3,074th table, and the 926 tables after it failed, where
``pg_restore -j 2`` (a transaction per object) restores them all.

So the pre-data runs in transactions of at most :attr:`NativePlan.pre_per_transaction
<dbcrate.restore.plan.NativePlan.pre_per_transaction>` objects. Each transaction journals its
part (:func:`part_mark`; the first one also :func:`size_mark`, so that a resumed run cuts
the same parts, and the plan's steps mark); the last one the whole pre-data (:data:`PRE_DATA`). A
resumed run skips the parts an earlier one committed. With one part, the journal holds what it
always held.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import TypeVar

from sqlalchemy.engine import Connection

from dbcrate.dialects.native import NativeSupport
from dbcrate.errors import DatabaseError, DbcrateError, driver_message
from dbcrate.progress import Event
from dbcrate.restore.session import Execution

T = TypeVar("T")

#: the journal rows of the native steps: table name "" (no table has it: a dump refuses the
#: empty name) and these chunk numbers (below the tables' own marks): the whole pre-data
JOURNAL_NAME = ""
PRE_DATA = -10
#: the most objects whose statements go to the engine in one message (:func:`run_objects`)
BATCH_OBJECTS = 100
#: locks budgeted per object created (five measured for a table) and per object dropped
#: (eight for a table with a key and an index; a table with more indexes takes more), so
#: that one transaction takes at most about a third of the lock table, the loads and the
#: other sessions the rest
LOCKS_PER_CREATE = 16
LOCKS_PER_DROP = 64
#: fewest objects per transaction whatever the lock table (a tiny one fails either way)
MIN_PER_TRANSACTION = 10


def part_mark(part: int) -> int:
    """The journal mark of a committed part of the pre-data."""
    return -(1 << 27) - part


def size_mark(objects: int) -> int:
    """The journal mark of how many objects each part holds (kept beside each part's)."""
    return -(1 << 28) - objects


def recorded_parts(marks: frozenset[int]) -> tuple[int | None, frozenset[int]]:
    """(objects per part, the parts committed) that an earlier run journaled; (None, empty)
    if it committed none."""
    sizes = [-(1 << 28) - m for m in marks if -(1 << 29) < m <= -(1 << 28)]
    parts = frozenset(-(1 << 27) - m for m in marks if -(1 << 28) < m <= -(1 << 27))
    return (max(sizes) if sizes else None), parts


def objects_per_transaction(lock_slots: int | None, per_object: int) -> int:
    """How many objects of ``per_object`` locks one transaction runs, for an engine whose lock
    table holds ``lock_slots`` (0: no bound)."""
    if not lock_slots:
        return 0
    return max(MIN_PER_TRANSACTION, lock_slots // per_object)


def parts(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into parts of ``size`` (0: one part); at least one part."""
    if not size or len(items) <= size:
        return [items]
    return [items[i:i + size] for i in range(0, len(items), size)]


def prologue(ctx: Execution) -> Iterator[Event]:
    """Before any row: the drops of ``--clean`` and the pre-data objects, in as few
    transactions as the engine's lock table allows (one, usually: the drops with the
    pre-data), journaled so that ``--resume`` skips them. A table whose definition fails is a
    failed table; another object that fails, a warning."""
    plan = ctx.plan.native
    assert plan is not None
    if plan.pre_done:
        return
    pieces = parts(plan.pre, plan.pre_per_transaction)
    committed = sum(len(p) for i, p in enumerate(pieces) if i in plan.pre_parts_done)
    alone: list[Sequence[str]] = []  # drops committed before the pre-data (if they are many)
    with_first: Sequence[str] = ()  # the last part of the drops: with the first pre-data
    if plan.drops:
        *alone, with_first = parts(plan.drops, plan.drops_per_transaction)
    dropped = 0
    try:
        for drops in alone:
            ctx.runner.unit(partial(_run_part, ctx, (), [], drops))
            dropped += len(drops)
        for number, piece in enumerate(pieces):
            if number in plan.pre_parts_done:
                continue
            # (the steps and the size once, with the first part: the parts commit in order)
            marks = [plan.steps_mark] if number == 0 else []
            if len(pieces) > 1:
                marks.append(part_mark(number))
                if number == 0:
                    marks.append(size_mark(plan.pre_per_transaction))
            if number == len(pieces) - 1:
                marks.append(PRE_DATA)
            ctx.runner.unit(partial(_run_part, ctx, piece, marks, with_first))
            dropped, with_first = dropped + len(with_first), ()
            committed += len(piece)
    except DbcrateError:
        raise
    except Exception as exc:  # a DROP of --clean, or the transaction itself
        raise _prologue_failed(ctx, exc, committed, dropped) from None
    yield Event("schema", len(plan.pre), len(plan.pre), "Native schema (pre-data)")


def _run_part(ctx: Execution, piece: Sequence[int], marks: list[int], drops: Sequence[str],
              conn: Connection) -> None:
    """One transaction of the prologue: ``drops``, then the pre-data objects at the positions
    ``piece``; the journal ``marks`` with them."""
    dialect = ctx.dialect
    support = dialect.native
    assert support is not None
    if dialect.transactional_ddl:
        ctx.runner.record_many(conn, [(JOURNAL_NAME, m, 0) for m in marks])
    run_setup(conn, support)
    for drop in drops:
        support.execute(conn, drop)
    for position, failure in zip(piece, run_objects(ctx, conn, piece)):
        if failure is not None:
            _failed(ctx, position, failure)
    run_setup(conn, support, reset=True)
    if not dialect.transactional_ddl:
        ctx.runner.record_many(conn, [(JOURNAL_NAME, m, 0) for m in marks])


def _failed(ctx: Execution, position: int, failure: str) -> None:
    """Report a pre-data object that failed: its table failed, or a warning."""
    plan, support = ctx.plan.native, ctx.dialect.native
    assert plan is not None and support is not None
    obj = plan.objects[position]
    if obj.kind in support.table_kinds and support.table_name(obj) in ctx.results:
        result = ctx.result(support.table_name(obj))
        result.status, result.rows = "failed", 0
        result.error = f"its definition failed: {failure}; the table is absent"
    else:
        ctx.report.warnings.append(f"not restored: {obj.kind} {obj.qualified}: {failure}")


def _prologue_failed(ctx: Execution, exc: Exception, committed: int,
                     dropped: int) -> DatabaseError:
    """The error of a pre-data transaction that failed, saying what the earlier ones kept."""
    plan, dialect = ctx.plan.native, ctx.dialect
    assert plan is not None
    advice = dialect.failure_hint(exc)  # (out of shared memory: raise max_locks_...)
    kept = ("nothing of the pre-data was kept" if not committed
            else f"{committed:,} of the {len(plan.pre):,} pre-data objects were created and "
                 "kept (restore again with --resume to go on)")
    if dropped:
        kept += f"; {dropped:,} of the {len(plan.drops):,} drops of --clean were committed"
    if not dialect.transactional_ddl:
        kept = "the objects created before the failure are kept (the engine's DDL commits)"
    return DatabaseError(
        f"the target failed while preparing the native schema: {driver_message(exc)}",
        hint=kept + "; " + (f"the server says: {advice}" if advice
                            else "see the engine's message"))


def run_setup(conn: Connection, support: NativeSupport, reset: bool = False) -> None:
    """The engine's session setup for native statements (``reset``: its undoing)."""
    for sql in support.reset() if reset else support.setup():
        support.execute(conn, sql)


def run_objects(ctx: Execution, conn: Connection, positions: Sequence[int]) -> list[str | None]:
    """:func:`_run_object` of each position, in order. Where the engine runs several
    statements of one string (:attr:`~dbcrate.dialects.native.NativeSupport.savepoint_in_one_trip`),
    up to :data:`BATCH_OBJECTS` objects go in one message, inside one savepoint (2,000 tables:
    40 round trips of pre-data, not 4,000); a batch that fails is rolled back to its savepoint
    and run again object by object, so that what failed is found, run and reported exactly
    as without batches."""
    native, support = ctx.plan.native, ctx.dialect.native
    assert native is not None and support is not None
    if not (support.savepoints and support.savepoint_in_one_trip) or len(positions) < 2:
        return [_run_object(ctx, conn, position) for position in positions]
    out: list[str | None] = []
    for start in range(0, len(positions), BATCH_OBJECTS):
        batch = positions[start:start + BATCH_OBJECTS]
        # (the line breaks end a trailing comment of a checked statement, as in _run_object)
        sql = "".join(f"{stmt.sql}\n;\n" for position in batch for stmt in support.statements(
            native.objects[position], no_owner=native.no_owner,
            no_privileges=native.no_privileges))
        try:
            support.execute(conn, f"SAVEPOINT dbcrate_batch;\n{sql}RELEASE SAVEPOINT dbcrate_batch")
        except Exception:  # any driver's error: the batch is undone, then run one by one
            support.execute(conn, "ROLLBACK TO SAVEPOINT dbcrate_batch;\n"
                                  "RELEASE SAVEPOINT dbcrate_batch")
            out += [_run_object(ctx, conn, position) for position in batch]
        else:
            out += [None] * len(batch)
    return out


def _run_object(ctx: Execution, conn: Connection, position: int) -> str | None:
    """Run one checked object statement by statement; the engine's message of the first
    statement that failed (the object's others are not run), or ``None``. An optional
    statement (an owner, a grant) that fails is a warning, and the object goes on. Each
    statement runs in a savepoint where the engine's DDL is transactional, so that a failure
    leaves the transaction usable."""
    native, support = ctx.plan.native, ctx.dialect.native
    assert native is not None and support is not None
    obj = native.objects[position]
    for stmt in support.statements(obj, no_owner=native.no_owner,
                                   no_privileges=native.no_privileges):
        guarded, one_trip = support.savepoints, support.savepoint_in_one_trip
        if guarded and not one_trip:
            support.execute(conn, "SAVEPOINT dbcrate_native")
        try:
            # (in one trip: the line breaks end a trailing comment of the checked statement;
            # a failure stops the string there, after the savepoint was taken)
            support.execute(conn, f"SAVEPOINT dbcrate_native;\n{stmt.sql}\n;\n"
                                  "RELEASE SAVEPOINT dbcrate_native" if guarded and one_trip
                            else stmt.sql)
        except Exception as exc:  # any driver's error (the statement runs on the raw cursor)
            if guarded:
                support.execute(conn, "ROLLBACK TO SAVEPOINT dbcrate_native")
            if not stmt.optional:
                return driver_message(exc)
            ctx.report.warnings.append(f"{obj.kind} {obj.qualified}: its owner or grant was "
                                       f"not restored: {driver_message(exc)}")
        else:
            if guarded and not one_trip:
                support.execute(conn, "RELEASE SAVEPOINT dbcrate_native")
    return None
