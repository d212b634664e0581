"""Where a restore's statements run, and what a running restore shares.

:class:`Runner` gives each unit of work a fresh connection and transaction (committed when the
unit returns, rolled back when it raises), or - with ``single_transaction`` - the one shared
connection inside the one transaction. :class:`Execution` is the context every step of a run
receives: the archive, the frozen plan, the target's dialect, the runner, the hooks and the
report being filled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa
from sqlalchemy.engine import Connection

from dbcrate.containers.archive import Archive
from dbcrate.dialects import Dialect
from dbcrate.hooks import Hooks
from dbcrate.progress import Event, Interrupts, TableProgress
from dbcrate.restore import journal
from dbcrate.restore.plan import RestorePlan, Source
from dbcrate.restore.report import RestoreReport, TableResult

#: a failed table's state when everything ran in one transaction
ROLLED_BACK_WITH_THE_REST = "rolled back with the rest (single transaction): the target is unchanged"


def begin(conn: Connection, dialect: Dialect) -> None:
    conn.exec_driver_sql(dialect.begin_sql)


def rollback(conn: Connection) -> None:
    # any failure here (a lost connection: PyMySQL's socket is gone) must not hide the error
    # that made the rollback necessary; the server rolls back a lost session's transaction
    with contextlib.suppress(Exception):
        conn.exec_driver_sql("ROLLBACK")


def session_fk_off(conn: Connection, dialect: Dialect) -> None:
    # loading order cannot satisfy cycles; the checks run afterwards (orphan check)
    if dialect.fk_checks_off_sql is not None:
        conn.exec_driver_sql(dialect.fk_checks_off_sql)


class Runner:
    """Where statements run: a fresh connection and transaction per unit of work, or - for
    ``single_transaction`` - one shared connection inside one transaction. What a unit runs
    is cancelled by ``interrupts.stop()`` (Ctrl-C)."""

    def __init__(self, dialect: Dialect, single: bool, archive_id: str = "") -> None:
        self.dialect = dialect
        self.single = single
        self.archive_id = archive_id
        self.shared: Connection | None = None
        self.interrupts = Interrupts()

    def record(self, conn: Connection, table: str, chunk: int, rows: int) -> None:
        """Journal what ``conn``'s transaction commits (nothing with one transaction)."""
        if not self.single:
            journal.record(conn, self.dialect, self.archive_id, table, chunk, rows)

    def record_many(self, conn: Connection, marks: list[tuple[str, int, int]]) -> None:
        """:meth:`record` of several ``(table, chunk, rows)`` marks in one statement."""
        if not self.single:
            journal.record_many(conn, self.dialect, self.archive_id, marks)

    def open_shared(self) -> None:
        if self.single:
            self.shared = self.dialect.engine.connect()
            self.dialect.prepare_restore_session(self.shared)
            begin(self.shared, self.dialect)
            if self.dialect.fk_checks_off_sql is None:
                self.shared.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")

    def unit(self, fn: Callable[[Connection], Any]) -> Any:
        """Run ``fn(conn)`` in a transaction (its own, or the shared one). A unit stopped by
        ``interrupts`` drops its connection instead of rolling back: the server rolls the
        transaction back on its own, where a ROLLBACK would wait for it (InnoDB undoes a big
        load row by row)."""
        if self.shared is not None:
            with self.interrupts.cancellable(self.dialect.interrupter(self.shared)):
                return fn(self.shared)
        with self.dialect.engine.connect() as conn:
            self.dialect.prepare_restore_session(conn)
            session_fk_off(conn, self.dialect)
            begin(conn, self.dialect)
            try:
                with self.interrupts.cancellable(self.dialect.interrupter(conn)):
                    value = fn(conn)
                conn.exec_driver_sql("COMMIT")
                return value
            except BaseException:
                if self.interrupts.stopped:
                    with contextlib.suppress(Exception):
                        conn.invalidate()
                else:
                    rollback(conn)
                raise

    def close_shared(self, ok: bool) -> None:
        if self.shared is None:
            return
        if ok:
            self.shared.exec_driver_sql("COMMIT")
        else:
            rollback(self.shared)
        self.shared.close()
        self.shared = None


class RowChecks(Protocol):
    """The value checks the loads make as they read (``checks_with_loads``:
    :class:`~dbcrate.restore.preflight.ChecksWithLoads`)."""

    @property
    def verify(self) -> bool:
        """Whether the loads check each chunk's checksum before they decode it."""

    def passing(self, source: Source,
                rows: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]: ...

    def finish(self) -> Iterator[Event]: ...


@dataclass
class Execution:
    """What every step of a running restore receives (the plan is frozen; ``report`` and its
    ``results`` are filled as tables finish; ``checks``: the value checks the loads make, when
    the preflight did not make them before)."""

    arch: Archive
    plan: RestorePlan
    dialect: Dialect
    runner: Runner
    hooks: Hooks
    report: RestoreReport
    checks: RowChecks | None = None

    def __post_init__(self) -> None:
        self.results: dict[str, TableResult] = {r.name: r for r in self.report.tables}
        #: tables whose rows are in (their indexes may be built); filled from worker threads
        self.loaded: set[str] = set(self.plan.resumed)
        #: the rows and archive bytes loaded per table, counted by the worker threads
        self.progress = TableProgress("Restore table", "Restore", _weights(self.plan))

    def result(self, table: str) -> TableResult:
        return self.results[table]


def _weights(plan: RestorePlan) -> dict[str, tuple[int | None, int]]:
    """Each table whose rows the plan loads: its rows, and its data's bytes in the archive
    (known up front: the overall total of a restore is exact)."""
    if plan.settings.schema_only:
        return {}
    loading = {table for s in plan.tasks if s.phase == "data"
               for table in getattr(s.task, "tables", (s.task.table,))}
    return {s.name: (s.entry.rows, sum(c.size for c in s.entry.chunks))
            for s in plan.sources if s.name in loading}
