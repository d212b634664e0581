"""PostgreSQL tables read by ADBC's driver: binary COPY parsed into Arrow in C.

Why: the CSV path spends most of a dump's reading in libpq's per-row loop and Arrow's CSV
parse; ADBC's PostgreSQL driver reads the same rows in about 40 % less time (docs/PERFORMANCE.md,
"ADBC's PostgreSQL driver as the dump's reader").

Exactness is kept by asking the server only for what the driver converts exactly, and text for
the rest, so every value is what the CSV path reads:

- booleans, integers, floats and bytea come as they are (binary COPY is exact);
- dates and timestamps inside 0001-01-01 .. 9999-12-31 come as they are; any other value
  (``infinity``, BC, far future) comes in a second column as the server's text and takes the CSV
  path's exact conversion (the driver would overflow on them without a word);
- ``time`` (``24:00:00``), numerics, json, uuid, arrays, enums, intervals and every other type
  come as the server's text (``::text`` is the type's own output function, as COPY's);
- ``char(n)`` comes as it is, with its padding (``::text`` would strip it).

A table with a column of any other kind (a domain, whose ``::text`` may strip), or that the
driver types otherwise than expected, is read by the CSV path (``None`` from
:func:`read_batches`, before anything is read). A read the server refuses or breaks off is the
table's error, raised as psycopg's (:func:`as_driver_error`) so that the dump reports it, and
``--tolerate`` records it, as it would a COPY's; it is not retried through COPY (a DBA who
terminates the dump's session stops the dump).

The reader's connection joins the snapshot the dialect's ``begin_snapshot`` exported
(:func:`remember_snapshot`; ``SET TRANSACTION SNAPSHOT``) with the same session settings, so it
reads exactly the rows the dump's own connection would. It is held in ``conn.info`` and closed
by :func:`close_reader` (``Dialect.close_readers``: at the snapshot's end, and before the dump
drops a connection after an error).
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import Connection

from dbcrate.dialects.pg_csv import value_refused
from dbcrate.model import values
from dbcrate.model.schema import Column, Table

try:  # the Arrow-native reader (optional: without it, tables are read through COPY CSV)
    import adbc_driver_postgresql.dbapi as _adbc
except ImportError:  # pragma: no cover - a dependency, but the CSV path still works
    _adbc = None  # type: ignore[assignment]

#: where a connection's reader is held (SQLAlchemy's per-DBAPI-connection ``info``)
_KEY = "dbcrate.pg_arrow"
_SNAPSHOT_KEY = "dbcrate.pg_snapshot"
#: Arrow data the driver gathers per batch: 2 MB kept the scale-0.3 dump's peak RSS where the CSV
#: path's is (183 MB; 4 MB 207 MB, 16 MB 262 MB), at the same speed
BATCH_HINT_BYTES = 2 * 1024 * 1024
#: kinds read as they are, and the Arrow type the driver gives them
_NATIVE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "float32": pa.float32(), "float64": pa.float64(), "binary": pa.binary(),
}
#: kinds read as the server's text (and converted from it as the CSV path does)
_TEXT = frozenset({"time", "decimal", "string", "json", "uuid", "other"})
#: dates and timestamps read as they are inside these bounds (Arrow's and the driver's range
#: agree there); SQL literals, constant
_BOUNDS = {
    "date": ("'0001-01-01'::date", "'9999-12-31'::date", pa.date32()),
    "datetime": ("'0001-01-01'::timestamp", "'9999-12-31 23:59:59.999999'::timestamp",
                 pa.timestamp("us")),
    "timestamptz": ("'0001-01-01 00:00:00+00'::timestamptz",
                    "'9999-12-31 23:59:59.999999+00'::timestamptz", pa.timestamp("us", tz="UTC")),
}
_PADDED = re.compile(r"(BPCHAR|CHAR|CHARACTER)\b(?!\s+VARYING)", re.IGNORECASE)
#: engine types whose cast to text is their output function (what COPY prints): other casts
#: are not (inet's drops nothing COPY drops, xml's skips xml_out, bpchar's trims), so every
#: other type is printed with format('%s'), which calls the output function
_CAST_IS_OUTPUT = re.compile(
    r"(TEXT|VARCHAR(\(\d+\))?|CHARACTER VARYING(\(\d+\))?|NUMERIC(\(\d+(, ?\d+)?\))?|JSONB?"
    r"|UUID|TIME( WITHOUT TIME ZONE)?(\(\d\))?)", re.IGNORECASE)
MAX_SELECT_ENTRIES = 1664
#: a table's lock as a session other than the dump's leader takes it before reading: at once
#: or not at all. The leader holds every table's lock (``lock_for_reading``); another session
#: would wait only behind an exclusive lock asked for since, which waits for the dump to end
#: (pg_dump -j's workers take theirs so). Index locks are waited for as usual.
SIDE_LOCK = "LOCK TABLE ONLY {} IN ACCESS SHARE MODE NOWAIT"
_SIDE_KEY = "dbcrate.pg_side"
#: what a read refused so (SQLSTATE 55P03) means, and what to do
LOCK_REFUSED_HINT = (
    "another session holds or waits for an exclusive lock on the table (ALTER TABLE, "
    "TRUNCATE, VACUUM FULL ...): dump again when it is done")
#: the session of every connection reading a dump's rows: the text forms the CSV path parses
#: and, as pg_dump's: no statement timeout (a big table's read is one statement) and no idle
#: timeout (the leader idles in its transaction while its ADBC reader reads)
SESSION = ("SET TIME ZONE 'UTC'", "SET DateStyle = 'ISO, YMD'", "SET IntervalStyle = 'iso_8601'",
           "SET extra_float_digits = 3", "SET bytea_output = 'hex'", "SET client_encoding = 'UTF8'",
           "SET statement_timeout = 0", "SET idle_in_transaction_session_timeout = 0")


@dataclass
class _Reader:
    """An ADBC connection in a source connection's snapshot; ``cursor`` is the one reading.
    ``lock`` keeps a cancel and the cursor's close apart (ADBC's cancel may run beside a
    read, not beside a close)."""

    conn: Any
    cursor: Any = None
    failed: bool = False
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Cancel the read, on a thread of its own: ADBC's cancel has no timeout (a server
        that does not answer would hold Ctrl-C)."""

        def cancel() -> None:
            with self.lock, contextlib.suppress(Exception):
                if self.cursor is not None:
                    self.cursor.adbc_cancel()

        threading.Thread(target=cancel, name="dbcrate-adbc-cancel", daemon=True).start()

    def close_cursor(self) -> None:
        # not after a cancel that hangs (a server that does not answer): the cursor is left
        if not self.lock.acquire(timeout=2):
            return
        try:
            cur, self.cursor = self.cursor, None
            with contextlib.suppress(Exception):
                if cur is not None:
                    cur.close()
        finally:
            self.lock.release()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_cursor()
        with contextlib.suppress(Exception):
            self.conn.close()  # its transaction ends with the session


def available() -> bool:
    return _adbc is not None


def plan_columns(table: Table, quote: Callable[[str], str]) -> tuple[list[str], list[pa.DataType]] | None:
    """The select list and the Arrow types the driver must give it, or None when a column's
    kind is not read this way."""
    exprs: list[str] = []
    types: list[pa.DataType] = []
    for col in table.columns:
        name, kind = quote(col.name), col.type.kind
        if kind in _NATIVE:
            exprs.append(name)
            types.append(_NATIVE[kind])
        elif kind in _BOUNDS:
            lo, hi, arrow = _BOUNDS[kind]
            inside = f"{name} BETWEEN {lo} AND {hi}"
            exprs += [f"CASE WHEN {inside} THEN {name} END",
                      f"CASE WHEN {inside} THEN NULL ELSE {name}::text END"]
            types += [arrow, pa.string()]
        elif kind == "string" and _PADDED.match(col.engine_type):
            exprs.append(name)
            types.append(pa.string())
        elif kind in _TEXT and not col.engine_type.startswith("domain:"):
            exprs.append(f"{name}::text" if _CAST_IS_OUTPUT.fullmatch(col.engine_type)
                         else f"CASE WHEN {name} IS NULL THEN NULL ELSE format('%s', {name}) END")
            types.append(pa.string())
        else:
            return None
    # PostgreSQL's limit on a select list's entries (a date or timestamp takes two)
    return (exprs, types) if len(exprs) <= MAX_SELECT_ENTRIES else None


def read_batches(conn: Connection, table: Table, table_sql: str, quote: Callable[[str], str],
                 where: str) -> Iterator[pa.RecordBatch] | None:
    """The rows of ``table`` (those ``where`` selects) in the archive's encoding, or None,
    before anything is read, when this reader cannot read them exactly (the caller then reads
    them through COPY CSV)."""
    planned = plan_columns(table, quote)
    reader = _reader(conn) if planned is not None and table.columns else None
    if reader is None or planned is None:
        return None
    assert _adbc is not None
    exprs, types = planned
    sql = f"SELECT {', '.join(exprs)} FROM ONLY {table_sql}{where}"
    try:
        cur = reader.conn.cursor()
        reader.cursor = cur
        cur.execute(SIDE_LOCK.format(table_sql))
        cur.adbc_statement.set_options(
            **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_HINT_BYTES)})
        cur.execute(sql)
        stream = cur.fetch_record_batch()
        if stream.schema.types != types:
            raise TypeError(f"ADBC typed {table.name!r} as {stream.schema.types}")
    except Exception as exc:
        reader.failed = True  # its transaction may be aborted: it is not used again
        sqlstate = getattr(exc, "sqlstate", None) or ""
        # what the driver cannot do (a type, a feature), or a lock this session may not wait
        # for (SIDE_LOCK) and the source connection holds: the CSV path reads
        if isinstance(exc, TypeError | _adbc.NotSupportedError) or sqlstate.startswith("0A") \
                or sqlstate == "55P03":
            return None
        # the server refused the read or the session is gone (no privilege, a terminated
        # session): the table's error, as through COPY CSV (not tried: a DBA who terminates
        # a session of the dump stops the dump)
        raise as_driver_error(exc, sqlstate or None) from None
    return _converted(reader, cur, stream, table)


def _converted(reader: _Reader, cur: Any, stream: pa.RecordBatchReader,
               table: Table) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
    assert _adbc is not None
    try:
        for batch in stream:
            yield _to_archive(batch, table, schema)
    except (_adbc.Error, OSError, pa.ArrowException) as exc:
        # a read the server broke off (Arrow's stream reports the driver's error as OSError):
        # raised as the dump's driver's error, which the dump reports (and --tolerate records)
        reader.failed = True
        raise as_driver_error(exc, None) from None
    finally:
        reader.close_cursor()


def _to_archive(batch: pa.RecordBatch, table: Table, schema: pa.Schema) -> pa.RecordBatch:
    """One batch as the driver gives it -> the archive's encoding of ``table``."""
    arrays: list[pa.Array] = []
    i = 0
    for col in table.columns:
        try:
            if col.type.kind in _BOUNDS:
                arrays.append(_temporal(batch.column(i), batch.column(i + 1), col))
                i += 2
                continue
            arrays.append(_from_driver(batch.column(i), col))
        except (ValueError, pa.ArrowInvalid) as exc:
            raise value_refused(table, col, exc) from None
        i += 1
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def as_driver_error(exc: BaseException, sqlstate: str | None) -> psycopg.Error:
    """ADBC's error as psycopg's (the class of its SQLSTATE), with the server's message, so
    that the dump reports it, and ``--tolerate`` records it, as a COPY CSV read's."""
    text = str(exc).strip()
    found = re.search(r"ERROR: +(.*)", text)  # the server's message, its first line
    # else a lost connection: "[libpq] PQgetCopyData() failed: server closed the ..."
    line = found.group(1) if found else re.sub(r"^\[libpq\] (.*?failed: )?", "", text)
    try:
        cls = psycopg.errors.lookup(sqlstate) if sqlstate else psycopg.OperationalError
    except KeyError:
        cls = psycopg.OperationalError
    return cls((line.strip().splitlines() or [type(exc).__name__])[0])


def _from_driver(arr: pa.Array, col: Column) -> pa.Array:
    kind = col.type.kind
    if kind in ("float32", "float64") and pc.any(pc.is_nan(arr)).as_py():
        # binary COPY keeps a NaN's sign and payload as stored; COPY CSV prints "NaN", which
        # reads back as the canonical NaN: the archive holds that one, whichever path reads
        return pc.if_else(pc.is_nan(arr), pa.scalar(float("nan"), arr.type), arr)
    if kind == "binary":
        return arr.cast(pa.large_binary())
    if kind == "time":
        return values.text_to_time(arr)
    return arr


def _temporal(native: pa.Array, text: pa.Array, col: Column) -> pa.Array:
    """A date or timestamp column: ``native`` where the value is inside the bounds, else the
    server's ``text`` converted exactly (sentinels for infinities; a refusal beyond the
    archive's range)."""
    if text.null_count == len(text):
        return native
    if col.type.kind == "date":
        exact = values.text_to_date(text)
    else:
        exact = values.text_to_timestamp(text, tz=col.type.kind == "timestamptz")
    return pc.if_else(pc.is_valid(text), exact, native)


def _reader(conn: Connection) -> _Reader | None:
    """The reader in ``conn``'s snapshot, opened on first use; None when it cannot be (no
    driver, a connection or snapshot it cannot join, or an earlier failure)."""
    held: _Reader | None = conn.info.get(_KEY)
    if held is not None:
        return None if held.failed else held
    snapshot = conn.info.get(_SNAPSHOT_KEY)
    if _adbc is None or snapshot is None:
        return None
    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        # never a weaker channel than the dump's own: TLS if it has TLS; none where it is
        # GSSAPI-encrypted (the driver's libpq has no GSSAPI; checked once connected)
        tls = {"sslmode": "require"} if raw.pgconn.ssl_in_use and \
            raw.info.get_parameters().get("sslmode") not in ("verify-ca", "verify-full") else {}
        dsn = make_conninfo(raw.info.dsn, **tls, **({"password": raw.info.password}
                                                    if raw.info.password else {}))
        side = _adbc.connect(dsn, autocommit=False)
    except Exception:  # the CSV path reads instead
        conn.info[_KEY] = _Reader(None, failed=True)
        return None
    reader = _Reader(side)
    conn.info[_KEY] = reader
    weakref.finalize(raw, reader.close)  # a connection dropped after an error: close it too
    try:
        with side.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            for stmt in SESSION:
                cur.execute(stmt)
            cur.execute("SELECT coalesce((SELECT encrypted FROM pg_stat_gssapi WHERE pid = "
                        f"{int(raw.info.backend_pid)}), false)")
            if cur.fetchone()[0]:
                raise ValueError("the dump's own session is GSSAPI-encrypted")
    except Exception:  # as above
        reader.failed = True
        reader.close()
        return None
    return reader


def remember_snapshot(conn: Connection, snapshot: str) -> None:
    """Note the id of the snapshot ``conn``'s transaction reads (exported by the dump's leader)."""
    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    conn.info[_SNAPSHOT_KEY] = snapshot


def snapshot_of(conn: Connection) -> str | None:
    """The snapshot id noted for ``conn`` (:func:`remember_snapshot`), if one was."""
    snapshot: str | None = conn.info.get(_SNAPSHOT_KEY)
    return snapshot


def mark_side(conn: Connection) -> None:
    """Note that ``conn`` is a session of the dump other than its leader (a -j worker)."""
    conn.info[_SIDE_KEY] = True


def lock_if_side(conn: Connection, table_sql: str) -> None:
    """Take ``table_sql``'s lock at once, or fail with 55P03, on a session :func:`mark_side`
    marked (the leader holds every lock already)."""
    lock = side_lock(conn, table_sql)
    if lock is not None:
        conn.exec_driver_sql(lock)


def side_lock(conn: Connection, table_sql: str) -> str | None:
    """The statement :func:`lock_if_side` would run on ``conn`` (None on the leader), for a
    caller that sends it with its own first query (``pgcopy.copy_out_blocks``' ``first``)."""
    return SIDE_LOCK.format(table_sql) if conn.info.get(_SIDE_KEY) else None


def cancel_reader(conn: Connection) -> None:
    """Cancel what ``conn``'s reader is reading (Ctrl-C), if it is reading."""
    held: _Reader | None = conn.info.get(_KEY)
    if held is not None:
        held.cancel()


def close_reader(conn: Connection) -> None:
    """Close ``conn``'s reader, if it has one (ends its transaction); safe on a dead ``conn``."""
    with contextlib.suppress(Exception):
        conn.info.pop(_SNAPSHOT_KEY, None)
        conn.info.pop(_SIDE_KEY, None)
        held: _Reader | None = conn.info.pop(_KEY, None)
        if held is not None and held.conn is not None:
            held.close()


__all__: Sequence[str] = ["available", "cancel_reader", "close_reader", "read_batches"]
