"""The bulk read of a MariaDB/MySQL dump through mysqlclient (``MySQLdb``, C), when installed.

PyMySQL parses the protocol in Python and makes a Python object per value; that was most of the
time of a MariaDB dump (docs/PERFORMANCE.md). mysqlclient reads rows in C. It is used for the
rows only, and only when it can be imported (``pip install 'dbcrate[mysqlclient]'``; it builds
against ``libmariadb-dev``); otherwise, or with ``DBCRATE_MYSQLCLIENT=0``, PyMySQL reads them.

**One snapshot.** A second connection cannot join the snapshot of the first one (MariaDB cannot
export a snapshot), so every row of every table is read through this reader's connection, in
the single consistent snapshot it opens right after the main connection opened its own; the
main connection only reflects the schema (which MariaDB does not version by snapshot anyway).
Once a reader is open for a connection, its rows are never read by PyMySQL: that would be
another snapshot.

**Exactness.** Rows arrive as raw bytes (no driver conversion: ``conv={}``, ``use_unicode=
False``); Arrow builds each column in C from them (checked casts), but only where Arrow and
the PyMySQL path read the text alike (where Arrow is more liberal, the value is checked: year
0, a TIME outside a day, ZEROFILL). A column with any other value (a zero date, a TIME past
24 h, BIT bytes, ...) is converted value by value from exactly the Python objects PyMySQL would
have produced, by the same code as the PyMySQL path, so it gives the same values and the same
error naming table, column and row (tests/test_mysql_fastpath.py compares the two paths).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pymysql.err
import sqlalchemy as sa
from pymysql import converters
from pymysql.constants import FIELD_TYPE

from dbcrate.dialects.base import CONNECT_TIMEOUT
from dbcrate.dialects.pyvalues import TARGET_BATCH_BYTES, BadValue, column_to_arrow, rows_to_batch
from dbcrate.model.schema import Column, Table

log = logging.getLogger(__name__)

#: set to 0 to read with PyMySQL even when mysqlclient is installed
DISABLE_ENV = "DBCRATE_MYSQLCLIENT"

_INT_KINDS = frozenset({"int8", "int16", "int32", "int64", "uint64"})
_TEXT_KINDS = frozenset({"string", "json", "other"})
#: field types PyMySQL decodes with the connection's encoding unless their charset is binary
_TEXT_FIELDS = frozenset({
    FIELD_TYPE.BIT, FIELD_TYPE.BLOB, FIELD_TYPE.LONG_BLOB, FIELD_TYPE.MEDIUM_BLOB,
    FIELD_TYPE.STRING, FIELD_TYPE.TINY_BLOB, FIELD_TYPE.VAR_STRING, FIELD_TYPE.VARCHAR,
    FIELD_TYPE.GEOMETRY,
})
#: field types whose value is raw bytes, never text (whatever the column's logical type)
_BYTES_FIELDS = frozenset({FIELD_TYPE.BIT, FIELD_TYPE.GEOMETRY})

#: Arrow bytes per fetched batch: half the other readers' target, because a batch is first
#: a list of Python rows (several times its Arrow size), and the reader thread holds one while
#: the queue and the encoder hold two more. Scale-1 dump peak RSS: 242 -> 190-203 MB, with
#: -j 2 257 -> 225-227 MB, at the same speed (docs/PERFORMANCE.md, "Session 5")
FETCH_BATCH_BYTES = TARGET_BATCH_BYTES // 2

_ZEROFILL_FLAG = 64  # MySQLdb.constants.FLAG.ZEROFILL
#: a MariaDB TIME that is a time of day (not negative, not past 24 h), as Python reads it
_TIME_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?$"
#: 0001-01-01 in days and in microseconds since 1970-01-01: Python has no year 0
_DAY_ONE = -719_162
_MICROSECOND_ONE = -62_135_596_800_000_000


def _driver() -> Any | None:
    """The MySQLdb module, or None when mysqlclient is not installed or is switched off."""
    if os.environ.get(DISABLE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:  # a plain import of an installed driver (never a name from an archive)
        import MySQLdb
    except ImportError:
        return None
    return MySQLdb


def available() -> bool:
    return _driver() is not None


def _translate(driver: Any, exc: BaseException) -> BaseException:
    """A MySQLdb error as the PyMySQL error of the same name (what the dump's error handling
    and ``--tolerate`` know); the message keeps the server's code and text."""
    if not isinstance(exc, driver.Error):
        return exc
    cls = getattr(pymysql.err, type(exc).__name__, None)
    if not (isinstance(cls, type) and issubclass(cls, pymysql.err.Error)):
        cls = pymysql.err.OperationalError
    translated: BaseException = cls(*exc.args)
    return translated


class FastReader:
    """One mysqlclient connection holding the dump's snapshot, reading tables in C."""

    def __init__(self, driver: Any, connection: Any) -> None:
        self._driver = driver
        self._conn = connection

    def session_id(self) -> int:
        """The server's id of this connection (what ``KILL QUERY`` names)."""
        return int(self._conn.thread_id())

    @classmethod
    def open(cls, url: sa.URL, statements: Sequence[str]) -> FastReader | None:
        """Connect with the URL's credentials and run ``statements`` (the session settings and
        ``START TRANSACTION WITH CONSISTENT SNAPSHOT``); None when mysqlclient is absent or
        cannot connect where PyMySQL could (an option it does not know, an auth plugin)."""
        driver = _driver()
        if driver is None:
            return None
        try:
            from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb

            _args, kwargs = MySQLDialect_mysqldb().create_connect_args(
                url.set(drivername="mysql+mysqldb"))
            kwargs.update(charset="utf8mb4", connect_timeout=CONNECT_TIMEOUT, autocommit=True,
                          conv={}, use_unicode=False)
            connection = driver.connect(**kwargs)
        except Exception as exc:  # any failure: PyMySQL reads, as without mysqlclient
            log.debug("mysqlclient not used: %s", exc)
            return None
        reader = cls(driver, connection)
        try:
            cur = connection.cursor()
            try:
                for stmt in statements:
                    cur.execute(stmt)
            finally:
                cur.close()
        except Exception as exc:
            reader.close()
            raise _translate(driver, exc) from None
        return reader

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    def read(self, sql: str, table: Table, schema: pa.Schema,
             batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream the rows of ``sql`` (the table's columns, in order) as record batches whose
        size in bytes stays bounded, like :func:`pyvalues.fetch_batches`.

        A thread fetches and converts the next batch while the caller encodes this one: the
        fetch and the conversion hold the GIL, the Parquet/zstd encoding mostly releases it,
        so on two cores they overlap (a dump of 2M rows: 12.1 s -> 10.9 s, on a loaded
        machine). One batch waits in the queue at most, so memory stays bounded."""
        driver = self._driver
        cur = self._conn.cursor(driver.cursors.SSCursor)  # mysql_use_result: rows streamed
        out: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def put(item: pa.RecordBatch | BaseException | None) -> bool:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    out.put(item, timeout=0.05)
                    return True
            return False

        def produce() -> None:
            try:
                for batch in _fetch(cur, sql, table, schema, batch_rows):
                    if not put(batch):
                        return
                put(None)
            except BaseException as exc:  # handed to the reading thread, raised there
                put(_translate(driver, exc))

        thread = threading.Thread(target=produce, name="dbcrate-mysql-read", daemon=True)
        thread.start()
        interrupted = False
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        except (KeyboardInterrupt, SystemExit):
            interrupted = True
            raise
        finally:
            stop.set()
            thread.join()  # at most the batch it is fetching
            if interrupted:  # the dump is being stopped: do not read the rest of the result
                self.close()
            else:
                # reads (and drops) what is left of the result, so that the connection, and
                # with it the snapshot, stays usable for the next table (--tolerate); a dead
                # connection has nothing to read
                with contextlib.suppress(Exception):
                    cur.close()


def _fetch(cur: Any, sql: str, table: Table, schema: pa.Schema,
           batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``sql`` from a streaming cursor, converted a batch at a time; a batch has
    at most ``batch_rows`` rows and about :data:`FETCH_BATCH_BYTES` bytes (the fetch size
    follows the bytes per row seen so far)."""
    cur.execute(sql)
    fields = [_Field(d[1], flags) for d, flags in zip(cur.description, cur.description_flags)]
    size = min(batch_rows, 1024)
    offset = 0
    while rows := cur.fetchmany(size):
        batch = _to_batch(rows, fields, table, schema, offset)
        offset += len(rows)
        del rows  # the Python rows are freed before waiting for the consumer
        yield batch
        per_row = max(1, batch.nbytes // max(1, batch.num_rows))
        size = max(1, min(batch_rows, FETCH_BATCH_BYTES // per_row))


class _Field:
    """What the protocol says of a result column: its type code and flags."""

    __slots__ = ("type", "zerofill")

    def __init__(self, type_code: int, flags: int) -> None:
        self.type = type_code
        self.zerofill = bool(flags & _ZEROFILL_FLAG)


def _to_batch(rows: Sequence[tuple[Any, ...]], fields: list[_Field], table: Table,
              schema: pa.Schema, offset: int) -> pa.RecordBatch:
    # the row tuples become one struct array of raw byte columns in a single pass in C (a
    # Python transpose of the tuples cost as much as the fetch itself)
    raw = pa.array(rows, pa.struct([
        pa.field(f"c{i}", pa.large_binary() if c.type.kind == "binary" else pa.binary())
        for i, c in enumerate(table.columns)
    ])).flatten()
    types = [f.type for f in fields]
    arrays = []
    for col, values, field in zip(table.columns, raw, fields):
        arr = _fast_column(values, col, field)
        if arr is None:
            try:
                arr = column_to_arrow(
                    _python_values(values.to_pylist(), field.type, col.type.kind), col)
            except BadValue:
                # the PyMySQL path's own conversion of the same Python values: the same
                # error text (table, column, row key, value)
                return rows_to_batch(_python_rows(rows, types, table), table, schema, offset)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _all_match(texts: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(texts, pattern), skip_nulls=True).as_py())


def _from_year_one(values: pa.Array, first: int) -> bool:
    low = pc.min(values).as_py()
    return low is None or low >= first


def _fast_column(raw: pa.Array, col: Column, field: _Field) -> pa.Array | None:
    """The column built by Arrow from its raw texts (``raw``: binary), or None when a value needs
    the per-value path. Arrow's casts are checked: a text that does not parse, or overflows,
    gives None."""
    kind = col.type.kind
    arrow_type = col.type.arrow
    ftype = field.type
    try:
        if raw.null_count == len(raw):
            return pa.nulls(len(raw), arrow_type)
        if kind == "binary":
            return raw
        if ftype in _BYTES_FIELDS or kind == "uuid":  # BIT bytes; UUIDs are canonicalised
            return None
        texts = raw.cast(pa.string())  # validates UTF-8, as PyMySQL's decode does
        if kind in _TEXT_KINDS:
            return texts
        if kind in _INT_KINDS:
            return texts.cast(arrow_type)
        if kind == "float64":
            return texts.cast(pa.float64())
        if kind == "float32":
            # through binary64, as PyMySQL's float() then Arrow's conversion round it
            return texts.cast(pa.float64()).cast(pa.float32())
        if kind == "decimal":
            # MariaDB writes a DECIMAL as plain digits, sign and point, without leading zeros:
            # already values.decimal_text's canonical text; ZEROFILL pads it with zeros
            return None if field.zerofill else texts
        if kind == "boolean":
            ints = texts.cast(pa.int64())
            if not pc.all(pc.is_in(ints, value_set=pa.array([0, 1])), skip_nulls=True).as_py():
                return None
            return ints.cast(pa.bool_())
        # Arrow's date and timestamp parser refuses what Python refuses (zero dates, day 30 of
        # February, a 7th fraction digit ...) except the year 0, which the range check refuses
        if kind == "date":
            days = texts.cast(pa.date32())
            return days if _from_year_one(days.view(pa.int32()), _DAY_ONE) else None
        if kind in ("datetime", "timestamptz"):
            micros = texts.cast(pa.timestamp("us")).view(pa.int64())
            return micros.view(arrow_type) if _from_year_one(micros, _MICROSECOND_ONE) else None
        if kind == "time":
            if not _all_match(texts, _TIME_RE):
                return None
            stamps = pc.binary_join_element_wise("1970-01-01 ", texts, "").cast(pa.timestamp("us"))
            return stamps.view(pa.int64()).view(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None
    return None


def _decoder(ftype: int) -> Callable[[Any], Any] | None:
    fn = converters.decoders.get(ftype)
    return None if fn is converters.through else fn


def _python_values(values: Sequence[bytes | None], ftype: int, kind: str) -> list[Any]:
    """The Python objects PyMySQL makes of these raw texts (pymysql.connections
    ``_read_row_from_packet``): bytes for binary fields, text decoded as UTF-8 (the session is
    utf8mb4), numbers and times through PyMySQL's own converters."""
    if ftype in _TEXT_FIELDS:
        if ftype in _BYTES_FIELDS or kind == "binary":
            return list(values)
        return [None if v is None else v.decode("utf-8") for v in values]
    convert = _decoder(ftype)
    texts = [None if v is None else v.decode("utf-8" if ftype == FIELD_TYPE.JSON else "ascii")
             for v in values]
    if convert is None:
        return texts
    return [None if v is None else convert(v) for v in texts]


def _python_rows(rows: Sequence[tuple[Any, ...]], types: list[int],
                 table: Table) -> list[tuple[Any, ...]]:
    columns = [_python_values(values, ftype, col.type.kind)
               for col, values, ftype in zip(table.columns, zip(*rows), types)]
    return list(zip(*columns))
