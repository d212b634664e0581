"""Into-existing mode: the work of a :class:`~dbcrate.restore.plan.LoadInto` task, and what
comes after the graph.

Without ``clean`` each chunk is its own transaction (a killed restore resumes per chunk); with
``clean`` a table is emptied and loaded in one transaction, so that a failure leaves its earlier
rows - and where the engine checks foreign keys while loading, tables linked by them are emptied
and loaded together (children emptied first), as emptying a parent alone would break its
children's keys. Rows whose key exists go through the ``on_conflict`` policy
(:mod:`dbcrate.restore.conflicts`). Then the cyclic key columns loaded as NULL are set, the
orphans checked and the sequences set (:func:`finish`).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator

import pyarrow as pa
from sqlalchemy.engine import Connection

from dbcrate.errors import UsageError, failure_message
from dbcrate.model.manifest import Chunk
from dbcrate.model.schema import Table
from dbcrate.progress import Event
from dbcrate.restore import journal
from dbcrate.restore.conflicts import ConflictCounts, load_with_policy
from dbcrate.restore.finish import orphans, set_sequence
from dbcrate.restore.plan import LoadInto, Source
from dbcrate.restore.report import TableResult
from dbcrate.restore.session import ROLLED_BACK_WITH_THE_REST, Execution
from dbcrate.restore.sources import batches


def load_into(ctx: Execution, task: LoadInto) -> None:
    """Load the task's tables: appended chunk by chunk, or emptied and loaded (``clean``)."""
    sources = [ctx.plan.source(name) for name in task.tables]
    if task.clean:
        _clean_and_load(ctx, sources)
    else:
        _append_chunks(ctx, sources[0])


def _source_batches(ctx: Execution, source: Source, chunk: Chunk) -> Iterator[pa.RecordBatch]:
    """A chunk's rows as the target takes them: converted, cyclic key columns NULL."""
    tmap = ctx.plan.maps[source.name]
    nulled = ctx.plan.cyclic_columns.get(source.name, ())
    # the stop flag between batches: a Ctrl-C stops the load at the next batch, whatever the
    # table's size (the running statement itself is cancelled by the runner)
    # counted into the run's progress as the load takes them
    counted = ctx.progress.metered(source.name, batches(ctx.arch, source, chunk, verify=False),
                                   chunk.rows, chunk.size)
    for batch in ctx.runner.interrupts.checked(counted):
        batch = tmap.convert(batch)
        yield _null_columns(batch, nulled) if nulled else batch


def _finish_counts(result: TableResult, counts: ConflictCounts, policy: str) -> None:
    if policy != "error":
        result.conflicts = counts.to_dict()
    if policy == "check":
        result.status = "checked"


def _append_chunks(ctx: Execution, source: Source) -> None:
    """Append a table's chunks, one transaction each (``check``: compare, write nothing)."""
    plan, runner, result = ctx.plan, ctx.runner, ctx.result(source.name)
    policy = plan.settings.on_conflict
    load_schema = plan.maps[source.name].load_schema()
    counts = ConflictCounts(policy)
    committed = plan.done.get(source.name, frozenset())
    t0 = time.monotonic()
    try:
        for number, chunk in enumerate(source.entry.chunks):
            if number in committed:
                result.rows += chunk.rows
                ctx.progress.add(source.name, chunk.rows, chunk.size)
                continue

            def work(conn: Connection, chunk: Chunk = chunk, number: int = number) -> int:
                rows = load_with_policy(conn, ctx.dialect, load_schema,
                                        _source_batches(ctx, source, chunk), policy, counts)
                if policy != "check":
                    runner.record(conn, source.name, number, rows)
                return rows

            result.rows += runner.unit(work)
        result.status = "restored"
        _finish_counts(result, counts, policy)
    except Exception as exc:
        if runner.interrupts.stopped:  # a statement cancelled by Ctrl-C: not the table's fault
            raise
        result.status = "failed"
        if runner.single:
            state = ROLLED_BACK_WITH_THE_REST
        elif result.rows and policy != "check":
            state = (f"{result.rows:,} rows of its earlier chunks stay committed; fix the cause "
                     "and restore again with resume=True to load the rest")
        else:
            state = "nothing of it was written: the table is unchanged"
        result.error = f"{failure_message(exc)}; {state}"
    finally:
        result.seconds = time.monotonic() - t0


def _clean_and_load(ctx: Execution, todo: list[Source]) -> None:
    """Empty the group's tables (children first) and load them, in one transaction."""
    plan, dialect = ctx.plan, ctx.dialect
    policy = plan.settings.on_conflict
    counts = {s.name: ConflictCounts(policy) for s in todo}
    t0 = time.monotonic()

    def work(conn: Connection) -> dict[str, int]:
        for source in reversed(todo):
            target = plan.maps[source.name].target.name
            if ctx.hooks.empty_table is not None:
                ctx.hooks.empty_table(conn, target)
            else:
                conn.exec_driver_sql(f"DELETE FROM {dialect.table_sql(target)}")
        loaded = {}
        for source in todo:
            rows = itertools.chain.from_iterable(
                _source_batches(ctx, source, chunk) for chunk in source.entry.chunks)
            loaded[source.name] = load_with_policy(conn, dialect, plan.maps[source.name].load_schema(),
                                                   rows, policy, counts[source.name])
            ctx.runner.record(conn, source.name, journal.WHOLE_TABLE, loaded[source.name])
        return loaded

    try:
        loaded = ctx.runner.unit(work)
        for source in todo:
            result = ctx.result(source.name)
            result.status, result.rows = "restored", loaded[source.name]
            _finish_counts(result, counts[source.name], policy)
    except Exception as exc:
        if ctx.runner.interrupts.stopped:  # a statement cancelled by Ctrl-C: not the tables'
            raise
        together = (f" (emptied and loaded together with {', '.join(s.name for s in todo)}, "
                    "which foreign keys link)" if len(todo) > 1 else "")
        state = (ROLLED_BACK_WITH_THE_REST if ctx.runner.single else
                 f"rolled back{together}: the table keeps its rows from before the restore")
        for source in todo:
            result = ctx.result(source.name)
            result.status, result.rows = "failed", 0
            result.error = f"{failure_message(exc)}; {state}"
    finally:
        for source in todo:
            ctx.result(source.name).seconds = (time.monotonic() - t0) / len(todo)


def _null_columns(batch: pa.RecordBatch, names: tuple[str, ...]) -> pa.RecordBatch:
    arrays = [pa.nulls(batch.num_rows, f.type) if f.name in names else batch.column(i)
              for i, f in enumerate(batch.schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _update_cyclic(ctx: Execution, source: Source, columns: tuple[str, ...]) -> None:
    """Second pass for cyclic foreign keys: set the columns loaded as NULL, by primary key."""
    tmap = ctx.plan.maps[source.name]
    load_schema = tmap.load_schema()
    pk = load_schema.primary_key
    if not pk:
        raise UsageError(f"{source.name}: cyclic foreign keys need a primary key to update by")
    keep = [*pk, *columns]
    q = ctx.dialect.quote
    stage = Table(name=f"_dbcrate_stage_{os.urandom(4).hex()}",
                  columns=[load_schema.column(c) for c in keep])
    for chunk in source.entry.chunks:
        def work(conn: Connection, chunk: Chunk = chunk) -> None:
            cols = ", ".join(q(c) for c in keep)
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {q(stage.name)} AS SELECT {cols} FROM "
                                 f"{q(load_schema.name)} WHERE false")
            rows = (tmap.convert(b).select(keep) for b in batches(ctx.arch, source, chunk, verify=False))
            ctx.dialect.load(conn, stage, rows, temporary=True)
            sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in columns)
            match = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in pk)
            conn.exec_driver_sql(f"UPDATE {q(load_schema.name)} t SET {sets} FROM {q(stage.name)} s "
                                 f"WHERE {match}")
            conn.exec_driver_sql(f"DROP TABLE {q(stage.name)}")

        ctx.runner.unit(work)


def finish(ctx: Execution) -> Iterator[Event]:
    """After the loads: the cyclic key columns loaded as NULL (second pass, once every table
    is in), the orphan check where the checks were off, and the sequences."""
    plan = ctx.plan
    for source in plan.sources:
        nulled = plan.cyclic_columns.get(source.name, ())
        result = ctx.result(source.name)
        if nulled and result.status == "restored":
            try:
                _update_cyclic(ctx, source, nulled)
            except Exception as exc:
                result.status = "failed"
                result.error = (f"rows loaded, but setting {', '.join(nulled)} failed: "
                                f"{failure_message(exc)}; the rows stay, with those columns NULL")
            yield Event("constraints", 1, 1, f"Cyclic keys of {source.name}", source.name)
    loaded = [plan.maps[s.name].target for s in plan.sources if ctx.result(s.name).status == "restored"]
    if ctx.dialect.fk_checks_off_sql is not None:  # loaded with the checks off: check now
        ctx.report.warnings.extend(orphans(ctx, loaded))
    for i, target in enumerate(loaded, start=1):
        set_sequence(ctx.runner, ctx.dialect, target, ctx.result(plan.source_of_target(target.name).name))
        yield Event("sequences", i, len(loaded), f"Sequence of {target.name}", target.name)
