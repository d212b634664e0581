"""The one runner of a restore plan: it binds each task value to the code that performs it,
runs them as a :class:`~dbcrate.restore.taskgraph.TaskGraph` on the plan's sessions (progress:
the loading tables' rows and bytes while they load, counted in ``ctx.progress``, and an event
per finished step), and frames the run: the journal, the schema hooks, the
shared transaction of ``single_transaction``, and what comes after the graph.

With ``exit_on_error`` (or one transaction) a failed load stops the loads not started yet; with
one transaction a failure rolls everything back, and every table is reported as such.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from dbcrate.progress import Event
from dbcrate.restore import existing, groupload, journal, native, native_run, recreate
from dbcrate.restore.plan import (
    AddForeignKey,
    BuildIndex,
    LoadInto,
    LoadTable,
    LoadTables,
    NativeForeignKey,
    NativeStep,
    RestoreTask,
)
from dbcrate.restore.session import ROLLED_BACK_WITH_THE_REST, Execution
from dbcrate.restore.taskgraph import Task, TaskGraph

#: the code that performs each kind of task
PERFORMERS: dict[type, Callable[[Execution, Any], None]] = {
    LoadTable: recreate.create_and_load,
    LoadTables: groupload.load_group,
    BuildIndex: recreate.build_index,
    AddForeignKey: recreate.add_foreign_key,
    LoadInto: existing.load_into,
    NativeStep: native.run_group,
    NativeForeignKey: native.run_group,
}

#: the tasks that load rows (a copy's load waits for its tables to be written)
_LOADS = (LoadTable, LoadTables, LoadInto)

#: how progress names each phase's steps (a loaded table's events come from ``ctx.progress``)
_LABELS = {"indexes": "Index of", "constraints": "Foreign key of"}


def perform(ctx: Execution, task: RestoreTask) -> None:
    """Run one task (in a worker thread); failures are recorded in the report, not raised."""
    pending = ctx.arch.pending
    if pending is not None and isinstance(task, _LOADS):
        failure = pending.failure
        missing = [t for t in _loaded_by(task) if not pending.has(ctx.plan.source(t).entry.name)]
        if missing and failure is not None:  # the dump stopped before writing them
            for name in missing:
                result = ctx.result(name)
                result.status, result.rows = "failed", 0
                result.error = f"not restored: the source could not be read to the end ({failure})"
            if not isinstance(task, LoadTables):  # (a group loads the others: one per table)
                return
    PERFORMERS[type(task)](ctx, task)


def _loaded_by(task: RestoreTask) -> tuple[str, ...]:
    return task.tables if isinstance(task, (LoadInto, LoadTables)) else (task.table,)


def _archive_names(ctx: Execution, task: RestoreTask) -> set[str]:
    """What a load waits for in an archive still being written: the first chunks of its
    table for a table's own load (it takes the rest as they are written), every table whole
    for the others (a group's one transaction, the loads into existing tables, which read
    the chunks more than once). The archive's names: a migration may rename a table."""
    names = {ctx.plan.source(t).entry.name for t in _loaded_by(task)}
    if isinstance(task, LoadTable):
        return {ctx.arch.first_chunks_name(name) for name in names}
    return names


def execute(ctx: Execution) -> Iterator[Event]:
    """Run the plan: journal and hooks around the shared transaction (if any) around the
    graph and the steps after it."""
    plan, dialect, runner, report = ctx.plan, ctx.dialect, ctx.runner, ctx.report
    if not runner.single:  # all or nothing keeps no journal: a failure must leave nothing
        with dialect.engine.connect() as conn:
            if plan.forget_journal:  # --clean over an unfinished earlier run: start over
                journal.forget(conn, dialect, plan.archive_id)
            journal.ensure(conn, dialect)
    if ctx.hooks.prepare_schema_for_restore is not None:
        with dialect.engine.begin() as conn:
            ctx.hooks.prepare_schema_for_restore(conn, ctx.arch.manifest)
    runner.open_shared()
    ok = False
    try:
        yield from _run(ctx)
        ok = report.ok
        if runner.single and not ok:
            _all_rolled_back(ctx)
    finally:
        runner.close_shared(ok)
    if ctx.checks is not None:  # a refusal here: nothing after it runs, the caller removes
        yield from ctx.checks.finish()  # the file (before a hook could read the rows)
    if ctx.hooks.update_schema_after_restore is not None and report.ok:
        with dialect.engine.begin() as conn:
            ctx.hooks.update_schema_after_restore(conn, ctx.arch.manifest)
    if report.ok and not runner.single:
        with dialect.engine.connect() as conn:
            journal.finish(conn, dialect, plan.archive_id)


def _run(ctx: Execution) -> Iterator[Event]:
    for name in ctx.plan.resumed:
        result = ctx.result(name)
        result.status, result.rows = "restored", ctx.plan.source(name).entry.rows
        result.warnings.append("committed by an earlier run (resume)")
    if ctx.plan.native is not None:
        yield from native_run.prologue(ctx)
        yield from run_graph(ctx)
        yield from native.epilogue(ctx)
        yield from recreate.finish(ctx)
    elif ctx.plan.mode == "recreate":
        recreate.create_schemas(ctx)
        recreate.drop_foreign_keys_into(ctx)
        yield from run_graph(ctx)
        yield from recreate.finish(ctx)
    else:
        yield from run_graph(ctx)
        yield from existing.finish(ctx)


def _all_rolled_back(ctx: Execution) -> None:
    for r in ctx.report.tables:
        if r.status in ("restored", "checked"):
            r.status, r.rows = "failed", 0
            r.error = ROLLED_BACK_WITH_THE_REST


def run_graph(ctx: Execution) -> Iterator[Event]:
    """Run the plan's tasks on its sessions. While tables load, their rows and bytes and the
    overall bytes are reported every ``TICK`` seconds; a loaded table's last event comes when
    its task finishes, an index or key step's event when it finishes, and the overall event
    reaches its total once the graph has run. After a failed load with ``exit_on_error``, the
    loads not started are skipped (with one transaction, everything not started)."""
    plan, single, progress = ctx.plan, ctx.runner.single, ctx.progress
    graph = TaskGraph()
    nodes: list[Task] = []
    pending = ctx.arch.pending  # an archive still being written: a load waits for its tables
    for scheduled in plan.tasks:
        task = scheduled.task
        loads = isinstance(task, _LOADS) and pending is not None
        nodes.append(graph.add(partial(perform, ctx, task), priority=scheduled.priority,
                               after=[nodes[i] for i in scheduled.after],
                               shared=set(scheduled.shared), exclusive=set(scheduled.exclusive),
                               payload=scheduled,
                               awaits=_archive_names(ctx, task) if loads else None))
    totals: dict[str, int] = {}
    for scheduled in plan.tasks:
        totals[scheduled.phase] = totals.get(scheduled.phase, 0) + 1
    done = dict.fromkeys(totals, 0)
    for name in plan.resumed:  # committed by an earlier run: counted as done from the start
        progress.finish_quietly(name)
    yield progress.start()
    for node in graph.run_ticking(plan.settings.sessions, ctx.runner.interrupts, progress.tick,
                                  arrivals=pending):
        if node is None:
            yield from progress.events()
            continue
        phase, task = node.payload.phase, node.payload.task
        table = task.table
        done[phase] += 1
        result = ctx.result(table)
        if phase == "data":
            yield from progress.events(force=True)
            for name in _loaded_by(task):
                broken = ctx.result(name).status == "failed"
                yield from progress.finish(name, f"Failed table {name}" if broken else None)
        else:
            yield Event(phase, done[phase], totals[phase], f"{_LABELS[phase]} {table}", table,
                        rows=result.rows)
        failed = [name for name in _loaded_by(task) if ctx.result(name).status == "failed"] \
            if phase == "data" else []
        if failed and (plan.settings.exit_on_error or single):
            # the tables not started are skipped; with one transaction, everything is
            graph.drop(lambda t: not single and t.payload.phase != "data")
            _skip_rest(ctx, failed[0])
    yield progress.end()


def _skip_rest(ctx: Execution, failed: str) -> None:
    why = "single transaction" if ctx.runner.single else "--exit-on-error"
    for r in ctx.report.tables:
        if r.status == "pending":
            r.status = "skipped"
            r.error = f"not attempted: stopped after {failed!r} failed ({why})"
