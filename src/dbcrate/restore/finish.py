"""After the rows: the orphan check (rows whose foreign key points nowhere, where the checks
were off while loading) and the sequences (identity, serial, AUTO_INCREMENT, sqlite_sequence)
set past the largest id, then checked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.dialects import Dialect
from dbcrate.errors import driver_message
from dbcrate.model.schema import Table
from dbcrate.restore.report import TableResult
from dbcrate.restore.session import Execution, Runner


def orphans(ctx: Execution, tables: list[Table]) -> list[str]:
    """Rows whose foreign key points nowhere, per constraint (the checks were off or deferred
    for some engines while loading; MariaDB does not re-check when they come back on). The
    checks run on up to ``jobs`` sessions (each one reads a whole child table), also on an
    engine that takes one writer at a time: they only read."""
    runner, q = ctx.runner, ctx.dialect.quote
    checks = []
    for table in tables:
        for fk in table.foreign_keys:
            cond = " AND ".join(f"p.{q(r)} = c.{q(col)}" for col, r in zip(fk.columns, fk.ref_columns))
            notnull = " AND ".join(f"c.{q(col)} IS NOT NULL" for col in fk.columns)
            where = ctx.dialect.table_sql
            sql = (f"SELECT count(*) FROM {where(table.name)} c WHERE {notnull} AND NOT EXISTS "
                   f"(SELECT 1 FROM {where(fk.ref_table)} p WHERE {cond})")
            checks.append((table, fk, sql))

    def count(check: tuple[Table, Any, str]) -> Any:
        try:
            return runner.unit(lambda conn: conn.exec_driver_sql(check[2]).scalar())
        except sa.exc.DBAPIError:
            return None  # the referenced table is not there: reported elsewhere

    workers = ctx.plan.settings.readers_for(len(checks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbcrate-orphans") as pool:
        counts = list(pool.map(count, checks))
    return [f"{table.name}: {n} rows break foreign key {fk.name or fk.columns} -> {fk.ref_table}"
            for (table, fk, _), n in zip(checks, counts) if n]


def set_sequence(runner: Runner, dialect: Dialect, table: Table, result: TableResult) -> None:
    """Make the next INSERT without an id work, then check that it will."""
    col = table.autoincrement_column
    if col is None:
        return

    def work(conn: Connection) -> tuple[int | None, int | None]:
        top = conn.exec_driver_sql(
            f"SELECT max({dialect.quote(col.name)}) FROM {dialect.table_sql(table.name)}"
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
