"""Loading a SQLite table through a staging database that ADBC writes in C.

The standard load binds every value through Python (``executemany``): measured on the
benchmark's scale-1 data, converting to Python objects and binding them took about 24 s of a
42 s restore, against about 5 s for SQLite to insert the same rows with ``INSERT ... SELECT``.
ADBC's SQLite driver binds Arrow arrays in C, but it opens its own connection, outside the
restore's transaction. So the rows go through a staging file:

1. ADBC writes the batches - already converted to exactly the values the standard path binds
   (int64, float64, text, blob) - into a new, private database file beside the target (a
   table ``t`` with untyped columns, so SQLite stores every value as bound);
2. the restore's own connection attaches that file and moves the rows with one
   ``INSERT INTO target (...) SELECT ... ORDER BY rowid``, inside its transaction: the target's
   affinities, constraints and triggers apply as to bound values, and a rollback undoes it all;
3. the file is deleted; the attachment is dropped by the next load on that connection (or
   when the connection closes): SQLite refuses ``DETACH`` while the transaction reads it.

The two SQLite libraries (Python's and ADBC's) never have the staging file open at the same
time: ADBC closes it before it is attached. The staging file needs as much free disk as the
table's rows take in SQLite, for as long as its load runs. Where staging cannot be used (ADBC
not installed, an in-memory target whose directory is unknown, a value only Python binds, too
many attachments still held by one all-or-nothing transaction) the standard path loads the
rows, with the same result.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator

import pyarrow as pa

from dbcrate.errors import DatabaseError, driver_message

try:
    import adbc_driver_sqlite.dbapi as _adbc
except ImportError:  # pragma: no cover - a dependency; without it every load binds in Python
    _adbc = None  # type: ignore[assignment]

#: attachments one connection may hold while its transaction still reads them (SQLite allows
#: 10 attached databases by default; an all-or-nothing restore of many tables would reach it)
MAX_PENDING = 4

#: switch for measurements and as a way out: ``DBCRATE_SQLITE_STAGE=0`` binds every value in
#: Python
ENABLED_BY_DEFAULT = os.environ.get("DBCRATE_SQLITE_STAGE", "1") != "0"

_PREFIX = "dbcrate_stage_"
_counter = itertools.count()


def usable() -> bool:
    return _adbc is not None and ENABLED_BY_DEFAULT


def load_staged(
    raw: sqlite3.Connection,
    insert: str,
    batches: Iterator[pa.RecordBatch],
    bound: Callable[[pa.RecordBatch], list[pa.Array] | None],
) -> tuple[int, Iterator[pa.RecordBatch]] | None:
    """Load ``batches`` through a staging file; ``insert`` is ``INSERT INTO tbl (cols)``.

    ``bound(batch)`` gives the arrays the standard path would bind, or None when a column has
    values only Python binds: the staging stops there, what was staged is loaded, and the
    remaining batches (that one first) are returned for the standard path. Returns ``(rows
    loaded, remaining batches)``, or None (nothing consumed) when staging cannot be used here.
    """
    if not usable() or not _release(raw):
        return None
    directory = _directory(raw)
    try:
        fd, path = tempfile.mkstemp(prefix=".dbcrate-stage-", suffix=".db", dir=directory)
    except OSError:
        return None  # a directory we cannot write to: the standard path needs no file
    os.close(fd)
    try:
        try:
            rows, rest, width = _write(path, batches, bound)
        except _adbc.Error as exc:  # a full disk, mostly
            raise DatabaseError(
                f"staging the rows in {os.path.dirname(path)} failed ({driver_message(exc)}); "
                "free space there, or set DBCRATE_SQLITE_STAGE=0 to bind them through sqlite3"
            ) from None
        if rows:
            _move(raw, path, insert, width)
        return rows, rest
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _write(
    path: str,
    batches: Iterator[pa.RecordBatch],
    bound: Callable[[pa.RecordBatch], list[pa.Array] | None],
) -> tuple[int, Iterator[pa.RecordBatch], int]:
    """ADBC writes the batches into ``path``; the file is closed when this returns."""
    assert _adbc is not None
    rows = 0
    width = 0
    rest: Iterator[pa.RecordBatch] = iter(())
    with _adbc.connect(path, autocommit=True) as conn, conn.cursor() as cur:
        # a scratch file: nothing to recover if the process dies, it is deleted anyway
        cur.execute("PRAGMA journal_mode = OFF")
        cur.execute("PRAGMA synchronous = OFF")
        created = False
        for batch in batches:
            arrays = bound(batch)
            if arrays is None:
                rest = itertools.chain([batch], batches)
                break
            if not created:
                width = len(arrays)
                cur.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(width))})")
                created = True
            if batch.num_rows:
                names = [f"c{i}" for i in range(width)]
                cur.adbc_ingest("t", pa.RecordBatch.from_arrays(arrays, names=names),
                                mode="append")
                rows += batch.num_rows
    return rows, rest, width


def _move(raw: sqlite3.Connection, path: str, insert: str, width: int) -> None:
    """Attach the staging file and copy its rows into the target, inside the caller's
    transaction."""
    schema = f"{_PREFIX}{next(_counter)}"  # our own identifier: no quoting needed
    raw.execute(f"ATTACH DATABASE ? AS {schema}", (path,))
    columns = ", ".join(f"c{i}" for i in range(width))
    raw.execute(f"{insert} SELECT {columns} FROM {schema}.t ORDER BY rowid")
    # not detached here: the transaction now reads it (SQLite refuses); the next load does


def _release(raw: sqlite3.Connection) -> bool:
    """Detach the staging files this connection's transaction no longer reads; whether
    another one may be attached."""
    held = 0
    for _seq, schema, _file in raw.execute("PRAGMA database_list").fetchall():
        if schema.startswith(_PREFIX):
            try:
                raw.execute(f"DETACH DATABASE {schema}")
            except sqlite3.OperationalError:
                held += 1  # still read by the open transaction: after its COMMIT or ROLLBACK
    return held < MAX_PENDING


def _directory(raw: sqlite3.Connection) -> str | None:
    """Beside the target database (its file system has room for its rows); the temporary
    directory for an in-memory or temporary database."""
    for _seq, name, file in raw.execute("PRAGMA database_list"):
        if name == "main" and file:
            return str(os.path.dirname(file))
    return None

