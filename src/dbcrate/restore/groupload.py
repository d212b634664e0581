"""Small tables loaded several to a transaction (:class:`~dbcrate.restore.plan.LoadTables`).

A transaction of its own per table costs a small table more than its rows: on PostgreSQL a
load is a session reset, BEGIN, the column types, COPY, the journal row and COMMIT - about
6 ms for a table of 20 rows, against 0.3 ms for ``pg_restore``'s COPY (2,000 tables: 8.5 s of
loads against 0.6 s). A group loads its tables in one transaction instead, each in a savepoint
of its own, so that the outcome per table is the one a transaction per table gives:

* a table that fails (a value the target refuses, a row too many for a key) is rolled back to
  its savepoint: it stays as the native schema created it, empty, and is reported failed with
  the engine's message, while the group's other tables load and commit;
* the journal rows of the tables that loaded are written at the end, in the same transaction
  (one statement), so ``--resume`` skips exactly the tables that committed;
* a failure that ends the transaction itself (the connection is lost, the restore is
  interrupted) fails every table of the group that had not failed already, as the rollback
  takes them all.

The tables' post-data (primary keys, indexes, triggers ...: each table's
:class:`~dbcrate.restore.plan.NativeStep` groups) is built in the same transaction once the
group's rows are in, each object in a savepoint as a post-data step builds it, and journaled
with the rows; a foreign key waits for the group (both its tables' groups, where they differ).

Only the native recreate uses it (the tables exist before any load, so a group creates
nothing), only for tables whose load needs no ``FREEZE`` (under
:data:`~dbcrate.restore.native.SMALL_TABLE_BYTES`), and only where the engine's
:attr:`~dbcrate.dialects.native.NativeSupport.group_small_loads` says so.
"""

from __future__ import annotations

import time

from sqlalchemy.engine import Connection

from dbcrate.errors import failure_message
from dbcrate.restore import journal, native, native_run
from dbcrate.restore.plan import LoadTables
from dbcrate.restore.recreate import STAYS_EMPTY, load_rows
from dbcrate.restore.session import Execution

#: the savepoint each table of a group loads in (one at a time on a connection)
SAVEPOINT = "dbcrate_load"


def load_group(ctx: Execution, task: LoadTables) -> None:
    """Load ``task.tables`` in one transaction, each in its savepoint (see the module's
    docstring); their results are filled in, and the tables that committed are added to
    ``ctx.loaded``. The tables already failed (their definition, or a dump that stopped
    before writing them) are left as they are."""
    support, runner, plan = ctx.dialect.native, ctx.runner, ctx.plan
    assert support is not None
    names = [name for name in task.tables if ctx.result(name).status != "failed"]
    restored: dict[str, int] = {}
    broken: dict[str, list[str]] = {}  # table -> its post-data objects that failed

    def work(conn: Connection) -> None:
        held = False  # a savepoint of the previous table is still open (released with the next)
        for name in names:
            result, t0 = ctx.result(name), time.monotonic()
            release = f"RELEASE SAVEPOINT {SAVEPOINT}"
            if held and support.savepoint_in_one_trip:
                support.execute(conn, f"{release};\nSAVEPOINT {SAVEPOINT}")
            else:
                if held:
                    support.execute(conn, release)
                support.execute(conn, f"SAVEPOINT {SAVEPOINT}")
            held = True
            try:
                source = plan.source(name)
                rows = 0 if plan.settings.schema_only else load_rows(ctx, conn, source, False)
            except Exception as exc:
                if runner.interrupts.stopped:
                    raise
                support.execute(conn, f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
                result.status, result.rows = "failed", 0
                result.error = f"{failure_message(exc)}; {STAYS_EMPTY}"
            else:
                restored[name] = rows
            finally:
                result.seconds = time.monotonic() - t0
        marks = [(name, journal.WHOLE_TABLE, rows) for name, rows in restored.items()]
        if task.steps:
            _post_data(ctx, conn, task, restored, marks, broken)
        # the marks of the tables that loaded and of their post-data, committed with them
        runner.record_many(conn, marks)

    try:
        runner.unit(work)
    except Exception as exc:
        if runner.interrupts.stopped:  # Ctrl-C cancelled the load: the journal says the rest
            raise
        for name in names:  # no commit: nothing of the group is in (the loaded ones too)
            result = ctx.result(name)
            if name in restored or result.status != "failed":
                result.status, result.rows = "failed", 0
                result.error = f"{failure_message(exc)}; {STAYS_EMPTY} (with its group)"
        return
    for name, rows in restored.items():
        result = ctx.result(name)
        result.rows, result.status = rows, "restored"
        ctx.loaded.add(name)
        if broken.get(name):  # as a failed post-data step says it (restore/native.py)
            result.status = "failed"
            result.error = "rows restored, but " + "; and ".join(broken[name])


def _post_data(ctx: Execution, conn: Connection, task: LoadTables, restored: dict[str, int],
               marks: list[tuple[str, int, int]], broken: dict[str, list[str]]) -> None:
    """After the group's rows: each loaded table's post-data groups, in the same transaction
    (an object that fails is rolled back to its savepoint and named in ``broken``); the
    groups of a table whose load failed are skipped, a note per object."""
    support = ctx.dialect.native
    assert support is not None
    native_run.run_setup(conn, support)
    for name, numbers in zip(task.tables, task.steps):
        for number in numbers:
            if name in restored:
                broken.setdefault(name, []).extend(native.build_group(ctx, conn, number, marks))
            else:
                why = f"table {name!r} failed to restore ({ctx.result(name).status})"
                native.skip_group(ctx, number, ctx.result(name), why)
    native_run.run_setup(conn, support, reset=True)
