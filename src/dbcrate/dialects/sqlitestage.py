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

Into a database file the restore made itself, no one else reads or writes while the restore
runs, so a table needs no staging: it is created and committed first, then ADBC binds the rows
into it in a transaction of its own (:func:`load_direct`; the caller journals the table as
started, and removes it again if the load fails), several rows to a statement. That saves the
second insert of every row. The restore writes one table at a time, and no connection of
Python's library has the file open meanwhile (SQLite's restore connections are not pooled):
the two libraries do not see each other's locks (POSIX locks are per process, and each library
keeps its own table of them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

from dbcrate.errors import DatabaseError, driver_message
from dbcrate.readahead import ReadAhead

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

#: how long ADBC's connection waits for a lock on the target (as Python's sqlite3 does)
BUSY_TIMEOUT_MS = 5000
#: the most rows one INSERT of :func:`load_direct` takes (measured on 3,000,000 rows of five
#: columns into an AUTOINCREMENT table: one row per statement 2.4 s, 16 rows 1.7 s, 64 rows
#: 1.6 s; through the staging file 2.4 s)
ROWS_PER_STATEMENT = 32

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


def load_direct(
    path: str,
    insert: str,
    batches: Iterator[pa.RecordBatch],
    bound: Callable[[pa.RecordBatch], list[pa.Array] | None],
) -> tuple[int, Iterator[pa.RecordBatch]]:
    """Load ``batches`` into the (committed, empty) table of the database file at ``path`` by
    ADBC's own connection, in one transaction committed when this returns, rolled back when it
    raises; ``insert`` is ``INSERT INTO tbl (cols)``.

    Returns ``(rows committed, batches not loaded)``: every batch, nothing written, when ADBC
    cannot be used or the first batch has values only Python binds (``bound``: see
    :func:`load_staged`). A later batch with such values fails the load (a table's batches
    share one schema, so this is a value no path can bind: an unsigned one above 2**63 - 1)."""
    if not usable():
        return 0, batches
    first = next(batches, None)
    if first is None:
        return 0, iter(())
    arrays = bound(first)
    if arrays is None:
        return 0, itertools.chain([first], batches)
    width = len(arrays)
    per = rows_per_statement(width)
    one = f"({', '.join(['?'] * width)})"
    sql_one, sql_many = f"{insert} VALUES {one}", f"{insert} VALUES {', '.join([one] * per)}"
    parts = _converted(first.num_rows, arrays, batches, bound, per)
    del first, arrays  # (held by the read-ahead until inserted, not for the whole load)
    rows = 0
    try:
        # the next batch decoded, checked and converted while ADBC inserts this one
        with _adbc.connect(path, autocommit=True) as conn, conn.cursor() as cur, \
                ReadAhead(parts, name=f"{threading.current_thread().name}-load") as ahead:
            # per connection, and outside a transaction: the restore checks the keys after
            # the loads (its orphan check), as on its own sessions
            cur.execute("PRAGMA foreign_keys = OFF")
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.adbc_connection.set_autocommit(False)  # BEGIN
            for count, part in ahead:
                if part is None:
                    raise DatabaseError("a value of this table cannot be bound by SQLite "
                                        "(an integer above 2**63 - 1?)")
                many, rest = part
                if many is not None:
                    cur.executemany(sql_many, many)
                if rest is not None:
                    cur.executemany(sql_one, rest)
                rows += count
                del part, many, rest
            conn.adbc_connection.commit()
    except _adbc.Error as exc:  # (closing the connection rolled its transaction back)
        raise DatabaseError(f"loading the rows failed: {driver_message(exc)}") from None
    return rows, iter(())


def _converted(
    count: int,
    arrays: list[pa.Array],
    batches: Iterator[pa.RecordBatch],
    bound: Callable[[pa.RecordBatch], list[pa.Array] | None],
    per: int,
) -> Iterator[tuple[int, Grouped | None]]:
    """(rows, the statements' parameters) of the first batch (``count`` rows, bound as
    ``arrays``) and of every next one (None: a batch only Python binds). Each batch, and its
    converted arrays, is let go of before the next is read: with the one the read-ahead's
    queue holds and the one being inserted, three at most."""
    parts: Grouped | None = grouped(arrays, per)
    del arrays
    yield count, parts
    for batch in batches:
        count, now = batch.num_rows, bound(batch)
        del batch, parts
        parts = None if now is None else grouped(now, per)
        del now
        yield count, parts


#: (rows bound ``per`` to one statement, the rest one row per statement): see :func:`grouped`
Grouped = tuple[pa.RecordBatch | None, pa.RecordBatch | None]


def rows_per_statement(width: int) -> int:
    """How many rows one ``INSERT ... VALUES (...), (...)`` of :func:`load_direct` takes: each
    statement costs SQLite a fixed amount (and an AUTOINCREMENT table a read and a write of
    ``sqlite_sequence``), so rows go ``ROWS_PER_STATEMENT`` at a time, within the 999 bound
    parameters every SQLite version allows."""
    return max(1, min(ROWS_PER_STATEMENT, 999 // max(1, width)))


def grouped(arrays: list[pa.Array], per: int) -> Grouped:
    """``arrays`` (one per column) as the parameters of statements of ``per`` rows: row ``r``
    of the first batch holds rows ``r * per ... r * per + per - 1`` side by side (column ``j``
    of its row ``g`` is named ``g_j``), so that every row is inserted in its order; the rows
    left over (fewer than ``per``) one per statement."""
    count = len(arrays[0]) if arrays else 0
    whole = count // per * per
    one_row = [f"0_{j}" for j in range(len(arrays))]
    many = None
    if whole and per > 1:
        columns: list[pa.Array] = []
        names: list[str] = []
        for g in range(per):
            picks = pa.array(range(g, whole, per), pa.int64())
            columns.extend(arr.take(picks) for arr in arrays)
            names.extend(f"{g}_{j}" for j in range(len(arrays)))
        many = pa.RecordBatch.from_arrays(columns, names=names)
    elif whole:
        many = pa.RecordBatch.from_arrays(arrays, names=one_row)
    rest = (pa.RecordBatch.from_arrays([arr.slice(whole) for arr in arrays], names=one_row)
            if count > whole else None)
    return many, rest


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

