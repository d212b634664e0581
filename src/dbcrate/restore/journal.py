"""The restore journal: which tables and chunks of an archive are committed in a target.

A row is written *in the same transaction* as the data it describes, so after a crash (even
``kill -9``) the journal says exactly what is in: ``restore --resume`` skips it. The archive is
identified by the SHA-256 of its manifest. A finished restore removes its rows.

Where the engine cannot roll ``CREATE TABLE`` back (MariaDB), a table is marked
:data:`STARTED` in a transaction of its own before it is created: ``--resume`` may then drop and
recreate exactly the tables this archive's restore created, and refuses any other existing table
as a restore without ``--resume`` does.

A ``--single-transaction`` restore keeps no journal: nothing of it is committed before the end,
so there is nothing to resume, and a failure must leave the target as it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.dialects.base import Dialect

JOURNAL_TABLE = "dbcrate_journal"
WHOLE_TABLE = -1  # the chunk number that stands for "the whole table"
STARTED = -2  # the table was created by this archive's restore; its rows may not be in


def ensure(conn: Connection, dialect: Dialect) -> None:
    q = dialect.quote
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {q(JOURNAL_TABLE)} ("
        f"archive_id CHAR(64) NOT NULL, table_name {dialect.journal_text_type} NOT NULL, "
        "chunk INTEGER NOT NULL, rows_done BIGINT NOT NULL, "
        "PRIMARY KEY (archive_id, table_name, chunk))"
    )


def record(conn: Connection, dialect: Dialect, archive_id: str, table: str, chunk: int, rows: int) -> None:
    record_many(conn, dialect, archive_id, [(table, chunk, rows)])


def record_many(conn: Connection, dialect: Dialect, archive_id: str,
                marks: list[tuple[str, int, int]]) -> None:
    """Journal ``(table, chunk, rows)`` marks in one statement (one round trip where the
    driver batches: a group of small tables commits its marks at once)."""
    if not marks:
        return
    conn.execute(
        sa.text(
            f"INSERT INTO {dialect.quote(JOURNAL_TABLE)} (archive_id, table_name, chunk, rows_done) "
            "VALUES (:a, :t, :c, :r)"
        ),
        [{"a": archive_id, "t": table, "c": chunk, "r": rows} for table, chunk, rows in marks],
    )


def unmark(conn: Connection, dialect: Dialect, archive_id: str, table: str, chunk: int) -> None:
    """Remove one row (a table created and removed again is no longer this restore's)."""
    conn.execute(
        sa.text(f"DELETE FROM {dialect.quote(JOURNAL_TABLE)} "
                "WHERE archive_id = :a AND table_name = :t AND chunk = :c"),
        {"a": archive_id, "t": table, "c": chunk},
    )


def done(conn: Connection, dialect: Dialect, archive_id: str) -> dict[str, set[int]]:
    """table -> committed chunk numbers (WHOLE_TABLE for a whole table, STARTED for a table
    created but maybe not loaded) of this archive."""
    if not sa.inspect(conn).has_table(JOURNAL_TABLE, schema=dialect.default_schema):
        return {}
    rows = conn.execute(
        sa.text(
            f"SELECT table_name, chunk FROM {dialect.quote(JOURNAL_TABLE)} WHERE archive_id = :a"
        ),
        {"a": archive_id},
    ).all()
    out: dict[str, set[int]] = {}
    for table, chunk in rows:
        out.setdefault(table, set()).add(int(chunk))
    return out


def forget(conn: Connection, dialect: Dialect, archive_id: str) -> None:
    """Remove this archive's rows (a new restore that starts over); drop the journal table
    when nothing else is in it."""
    if not sa.inspect(conn).has_table(JOURNAL_TABLE, schema=dialect.default_schema):
        return
    q = dialect.quote(JOURNAL_TABLE)
    conn.execute(sa.text(f"DELETE FROM {q} WHERE archive_id = :a"), {"a": archive_id})
    left = conn.exec_driver_sql(f"SELECT count(*) FROM {q}").scalar()
    if not left:
        conn.exec_driver_sql(f"DROP TABLE {q}")


#: a completed restore forgets its rows the same way
finish = forget
