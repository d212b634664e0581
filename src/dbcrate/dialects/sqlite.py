"""SQLite through the standard library's sqlite3: one read transaction, batched executemany.

SQLite stores values by *storage class*, not by declared type, so the logical type of a column
comes from its declared type with SQLite's own affinity rules; a column declared without a type
(or with one that says nothing) is classified by the storage classes it actually holds. A value
whose storage class does not fit the column's logical type is reported with its row, never
converted silently.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from dbcrate.dialects import sqlitestage
from dbcrate.dialects.base import Dialect, RawType
from dbcrate.dialects.pyvalues import (
    TARGET_BATCH_BYTES,
    fetch_batches,
    float_decimal_texts,
    iso_array,
    rows_to_batch,
)
from dbcrate.errors import SourceValueError
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table
from dbcrate.model.values import time_texts

try:  # the Arrow-native reader (optional: without it, tables are read through sqlite3)
    import adbc_driver_sqlite.dbapi as _adbc
except ImportError:  # pragma: no cover - a dependency, but the standard path still works
    _adbc = None  # type: ignore[assignment]

_MIN_ROWID = -(2**63)
_PARAMS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def logical_from_declared(declared: str) -> LogicalType | None:
    """Logical type from a SQLite declared type, or ``None`` when only the data can tell."""
    d = declared.upper()
    params = _PARAMS.search(d)
    n1 = int(params[1]) if params else None
    n2 = int(params[2]) if params and params[2] else None
    if "BOOL" in d:
        return LogicalType("boolean")
    if "INT" in d:  # SQLite integers are 64-bit whatever the declared width
        return LogicalType("int64")
    if "TIMESTAMPTZ" in d or "WITH TIME ZONE" in d:
        return LogicalType("timestamptz")
    if "DATETIME" in d or "TIMESTAMP" in d:
        return LogicalType("datetime")
    if "DATE" in d:
        return LogicalType("date")
    if "TIME" in d:
        return LogicalType("time")
    if "JSON" in d:
        return LogicalType("json")
    if "UUID" in d:
        return LogicalType("uuid")
    if "CHAR" in d or "CLOB" in d or "TEXT" in d:
        return LogicalType("string", length=n1, fixed=d.startswith(("CHAR", "NCHAR")))
    if "BLOB" in d or "BINARY" in d:
        return LogicalType("binary", length=n1)
    if "REAL" in d or "FLOA" in d or "DOUB" in d:
        return LogicalType("float64")
    if "DEC" in d or "NUMERIC" in d or "MONEY" in d:
        return LogicalType("decimal", precision=n1, scale=n2 if n1 is not None else None)
    return None


_STORAGE_CLASS_KIND = {
    frozenset({"integer"}): "int64",
    frozenset({"real"}): "float64",
    frozenset({"integer", "real"}): "float64",
    frozenset({"text"}): "string",
    frozenset({"blob"}): "binary",
    frozenset(): "string",
}


class SQLite(Dialect):
    name: ClassVar[str] = "sqlite"
    case_insensitive_columns: ClassVar[bool] = True
    case_insensitive_tables: bool = True
    alter_add_foreign_key: ClassVar[bool] = False
    holds_nan: ClassVar[bool] = False  # sqlite3 stores NaN as NULL
    holds_negative_zero: ClassVar[bool] = False
    holds_infinite_dates: ClassVar[bool] = False
    year_range: ClassVar[tuple[int, int] | None] = (1, 9999)
    max_integer: ClassVar[int] = 2**63 - 1
    enforces_length: ClassVar[bool] = False
    #: NUMERIC affinity turns decimal text into a REAL when 15 significant digits survive
    decimal_significant_digits: ClassVar[int | None] = 15
    read_ahead: ClassVar[bool] = True
    same_value_sql: ClassVar[str] = "{a} IS {b}"
    fk_checks_off_sql: ClassVar[str | None] = "PRAGMA foreign_keys = OFF"
    reflect_in_snapshot: ClassVar[bool] = False  # a read transaction would block the loads
    column_comments: ClassVar[bool] = False
    named_constraints: ClassVar[bool] = False

    def begin_snapshot(self, conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()  # take the snapshot now

    def server_version(self, conn: Connection) -> str:
        return sqlite3.sqlite_version

    def list_tables(self, conn: Connection) -> list[str]:
        return [t for t in super().list_tables(conn) if not t.startswith("sqlite_")]

    def _declared(self, conn: Connection, table: str) -> dict[str, str]:
        rows = conn.exec_driver_sql(f"PRAGMA table_xinfo({self.quote(table)})").all()
        return {r[1]: (r[2] or "") for r in rows}

    def reflect(self, conn: Connection, name: str) -> Table:
        self._declared_cache = self._declared(conn, name)
        return super().reflect(conn, name)

    def column_from_reflection(
        self, conn: Connection, table: str, info: dict[str, Any], pk: list[str]
    ) -> Column:
        declared = self._declared_cache.get(info["name"], "")
        lt = logical_from_declared(declared)
        if lt is None:
            classes = {
                r[0]
                for r in conn.exec_driver_sql(
                    f"SELECT DISTINCT typeof({self.quote(info['name'])}) FROM {self.quote(table)}"
                ).all()
            } - {"null"}
            kind = _STORAGE_CLASS_KIND.get(frozenset(classes))
            if kind is None:
                raise SourceValueError(
                    f"table {table!r}, column {info['name']!r} (declared {declared or 'without a type'!r})"
                    f" mixes storage classes {sorted(classes)}; dbcrate cannot give it one type",
                    hint="declare the column's type and convert its values, or exclude the table",
                )
            lt = LogicalType(kind)
        base = super().column_from_reflection(conn, table, info, pk)
        return Column(
            name=base.name,
            type=lt,
            engine_type=declared or "",
            nullable=base.nullable,
            default=base.default,
            autoincrement=len(pk) == 1 and pk[0] == info["name"] and declared.upper() == "INTEGER",
            identity=None,
            comment=None,
        )

    def next_value(self, conn: Connection, table: Table) -> int | None:
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).scalar()
        if not sql or "AUTOINCREMENT" not in sql.upper():
            return None
        seq = conn.exec_driver_sql(
            "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
        ).scalar()
        return int(seq) + 1 if seq is not None else 1

    parallel_restore: ClassVar[bool] = False  # one writer at a time

    def read_table(
        self,
        conn: Connection,
        table: Table,
        batch_rows: int,
        key_range: tuple[int, int] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
        where = self.range_condition(table, key_range)
        arrow = _ArrowReader.open(self, raw, table, schema, where, batch_rows)
        started = arrow.start() if arrow is not None else None
        if started is not None:
            yield from started
            return
        cur = raw.cursor()
        try:
            cur.execute(f"SELECT {cols} FROM {self.quote(table.name)}{where}")
            yield from fetch_batches(cur, table, schema, batch_rows)
        finally:
            cur.close()

    # ------------------------------------------------------------------ restore
    def prepare_restore_session(self, conn: Connection) -> None:
        # CREATE INDEX sorts with helper threads (off by default): 10-20% less time for the
        # benchmark's indexes on 2 cores. A per-connection setting; the file is unchanged.
        conn.exec_driver_sql(f"PRAGMA threads = {min(os.cpu_count() or 1, 4)}")

    def sa_type(self, column: Column, *, same_engine: bool, keyed: bool) -> Any:
        if same_engine and column.engine_type == "":
            return _Untyped()
        return super().sa_type(column, same_engine=same_engine, keyed=keyed)

    def type_for_logical(self, lt: LogicalType, *, keyed: bool) -> Any:
        kind = lt.kind
        if kind == "boolean":
            return sa.Boolean(create_constraint=False)
        if kind in ("int8", "int16", "int32", "int64", "uint64"):
            return sa.Integer()
        if kind in ("float32", "float64"):
            return sa.REAL()
        if kind == "decimal":
            return sa.Numeric(lt.precision, lt.scale) if lt.precision else sa.Numeric()
        if kind == "string":
            if lt.fixed and lt.length:
                return sa.CHAR(lt.length)
            return sa.String(lt.length) if lt.length else sa.Text()
        if kind == "binary":
            return sa.LargeBinary()
        if kind == "date":
            return RawType("DATE")
        if kind == "time":
            return RawType("TIME")
        if kind == "datetime":
            return RawType("DATETIME")
        if kind == "timestamptz":
            return RawType("TIMESTAMPTZ")
        if kind == "json":
            return RawType("JSON")
        if kind == "uuid":
            return RawType("UUID")
        return sa.Text()

    def table_kwargs(self, table: Table, *, same_engine: bool) -> dict[str, Any]:
        col = table.autoincrement_column
        if table.next_value is not None and col is not None and table.primary_key == [col.name]:
            return {"sqlite_autoincrement": True}
        return {}

    def load(
        self,
        conn: Connection,
        table: Table,
        batches: Iterator[pa.RecordBatch],
        temporary: bool = False,
        fresh: bool = False,
    ) -> int:
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        insert = f"INSERT INTO {self.quote(table.name)} ({cols})"
        rows = 0
        if table.columns:
            staged = sqlitestage.load_staged(raw, insert, batches, _binder(table.columns))
            if staged is not None:
                rows, batches = staged
        # the standard path: every value bound through Python
        sql = f"{insert} VALUES ({', '.join(['?'] * len(table.columns))})"
        converters = [_to_python(c) for c in table.columns]
        for batch in batches:
            columns = [conv(batch.column(i)) for i, conv in enumerate(converters)]
            raw.executemany(sql, zip(*columns))
            rows += batch.num_rows
        return rows

    def set_next_value(self, conn: Connection, table: Table, column: Column, value: int) -> None:
        has_seq = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
        ).scalar()
        autoinc = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).scalar()
        if not has_seq or not autoinc or "AUTOINCREMENT" not in autoinc.upper():
            return  # a rowid table hands out max(rowid)+1 by itself
        conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table.name,))
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, value - 1)
        )


#: storage classes (``typeof``) a column of each kind may hold for the Arrow-native reader,
#: and how it is read: a kind not listed (uuid, float32) makes the standard library's sqlite3
#: read the table
_ARROW_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    **{k: (("integer",), "integer") for k in ("int8", "int16", "int32", "int64", "uint64", "boolean")},
    "float64": (("integer", "real"), "real"),
    "decimal": (("integer", "real"), "decimal"),
    **{k: (("text",), "text") for k in ("string", "json", "other", "date", "time", "datetime",
                                          "timestamptz")},
    "binary": (("blob",), "blob"),
}
#: a value of each storage class, for the first row of the query: ADBC infers a column's type
#: from the first rows it reads, and a column whose first rows are all NULL would come out as
#: int64 and fail at the first text
_EXEMPLARS = {"integer": "0", "real": "0.0", "text": "''", "blob": "x''"}
_ADBC_TYPES = {"integer": pa.int64(), "real": pa.float64(), "text": pa.string(), "blob": pa.binary()}
#: ADBC raises for a value of another storage class in an int64 column, but turns any value
#: into text or bytes in a string or binary column, and CAST / CASE would turn it into a number
#: or NULL: those columns are checked in the query itself
_CHECKED = frozenset({"text", "blob", "real", "decimal"})


class _ArrowReader:
    """A table read by ADBC's SQLite driver straight into Arrow in C (reading and converting
    the benchmark's tables took 3.3 s through sqlite3's Python tuples, 0.9 s this way), with
    the exact semantics of the standard path:

    * only from a database file in a rollback-journal mode: the dump's sqlite3 connection holds
      a read transaction (a SHARED lock), so no writer can commit until the dump ends and this
      second connection reads the same snapshot. In WAL mode a second connection could see
      later commits, so the standard path is used;
    * in rowid order (``NOT INDEXED``), with each row's rowid and a flag, computed by SQLite in
      the same scan, telling whether a value has a storage class the column's kind does not
      take as it is (``typeof``). At the first such row - or at ADBC's own refusal of one -
      the rest of the table, from that rowid on, is read through sqlite3, whose per-value path
      converts such values (a number in a JSON column) or reports them with their row;
    * a decimal column is read as two columns (its INTEGER and its REAL values) so that 12 and
      12.0 keep their text; a float column as REAL (SQLite's CAST is C's conversion, as Python's
      ``float()`` is);
    * a batch whose values the vectorized conversions do not take (a date that is not plain
      ISO text, an integer that does not fit int8 ...) is converted by the per-value path, from
      the same Python values sqlite3 would have given.
    """

    def __init__(self, dialect: SQLite, raw: sqlite3.Connection, uri: str, sql: str,
                 rowid: str, table: Table, schema: pa.Schema, plan: list[tuple[Column, str]],
                 where: str, batch_rows: int, fetch_rows: int) -> None:
        self._dialect = dialect
        self._raw = raw
        self._uri = uri
        self._sql = sql
        self._rowid = rowid
        self._table = table
        self._schema = schema
        self._plan = plan
        self._where = where
        self._batch_rows = batch_rows
        self._fetch_rows = fetch_rows

    @classmethod
    def open(cls, dialect: SQLite, raw: sqlite3.Connection, table: Table, schema: pa.Schema,
             where: str, batch_rows: int) -> _ArrowReader | None:
        """The reader, or None when the standard path must read the table."""
        if _adbc is None or not table.columns:
            return None
        names = {c.name.lower() for c in table.columns}
        rowid = next((n for n in ("_rowid_", "rowid", "oid") if n not in names), None)
        files = [r[2] for r in raw.execute("PRAGMA database_list") if r[1] == "main"]
        mode = raw.execute("PRAGMA journal_mode").fetchone()
        if rowid is None or not files or not files[0] or not mode or str(mode[0]).lower() == "wal":
            return None
        plan: list[tuple[Column, str]] = []
        odd: list[str] = []
        sizes: list[str] = []
        first: list[str] = ["1"]
        rest: list[str] = ["0"]
        for col in table.columns:
            kind = _ARROW_KINDS.get(col.type.kind)
            if kind is None:
                return None
            classes, how = kind
            q = dialect.quote(col.name)
            if how in _CHECKED:
                allowed = ", ".join(f"'{c}'" for c in (*classes, "null"))
                odd.append(f"typeof({q}) NOT IN ({allowed})")
            sizes.append(f"coalesce(length({q}), 0)" if how in ("text", "blob") else "8")
            plan.append((col, how))
            if how == "decimal":
                first += ["0", "0.0"]
                rest += [f"CASE WHEN typeof({q}) = 'integer' THEN {q} END",
                         f"CASE WHEN typeof({q}) = 'real' THEN {q} END"]
            elif how == "real":
                first.append("0.0")
                rest.append(f"CAST({q} AS REAL)")
            else:
                first.append(_EXEMPLARS[how])
                rest.append(q)
        first += ["0", "0"]
        rest += [f"({' OR '.join(odd)})" if odd else "0", rowid]
        name = dialect.quote(table.name)
        sql = (f"SELECT {', '.join(first)} UNION ALL "
               f"SELECT {', '.join(rest)} FROM {name} NOT INDEXED{where}")
        # batches of about TARGET_BATCH_BYTES, from the size of the first rows
        sample = raw.execute(f"SELECT avg({' + '.join(sizes)}) FROM "
                             f"(SELECT * FROM {name}{where} LIMIT 1000)").fetchone()[0]
        per_row = max(1, int(sample or 1))
        rows = max(1, min(batch_rows, TARGET_BATCH_BYTES // per_row))
        uri = Path(files[0]).absolute().as_uri() + "?mode=ro"
        return cls(dialect, raw, uri, sql, rowid, table, schema, plan, where, rows, batch_rows)

    def _expected(self) -> list[pa.DataType]:
        types = [pa.int64()]
        for _, how in self._plan:
            if how == "decimal":
                types += [pa.int64(), pa.float64()]
            else:
                types.append(_ADBC_TYPES[how])
        return [*types, pa.int64(), pa.int64()]

    def start(self) -> Iterator[pa.RecordBatch] | None:
        """Run the query; None, with nothing read, when it cannot run (a writer waiting for the
        dump's lock, a WITHOUT ROWID table, a driver problem) or ADBC did not type the columns
        as expected: then the standard path reads the table."""
        assert _adbc is not None
        try:
            conn = _adbc.connect(self._uri)
        except Exception:  # any failure leaves the table to the standard path
            return None
        try:
            cur = conn.cursor()
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(self._batch_rows)})
            cur.execute(self._sql)
            reader = cur.fetch_record_batch()
            if reader.schema.types != self._expected():
                raise TypeError(f"ADBC typed {self._table.name!r} as {reader.schema.types}")
        except Exception:  # as above
            conn.close()
            return None
        return self._batches(conn, cur, reader)

    def _batches(self, conn: Any, cur: Any, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        """``cur`` is held until the end: the reader's stream closes with it."""
        try:
            resume, offset = yield from self._read(reader)
        finally:
            cur.close()
            conn.close()
        if resume is not None:
            yield from self._standard(resume, offset)

    def _read(self, reader: pa.RecordBatchReader) -> Generator[
            pa.RecordBatch, None, tuple[tuple[str, int] | None, int]]:
        """The converted batches; returns where sqlite3 must take over (or None) and the rows
        read so far."""
        assert _adbc is not None
        offset = 0
        position = (">=", _MIN_ROWID)  # the rows not yet yielded: rowid >= MIN, then > the last
        batches = iter(reader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return None, offset
            except (_adbc.Error, OSError):
                # a value ADBC refuses (Arrow's stream reports it as an OSError): sqlite3 reads
                # the rest, and reports the value or the database's own problem
                return position, offset
            marks = batch.column(0)
            if pc.any(pc.equal(marks, 1)).as_py():  # the exemplar row
                batch = batch.filter(pc.equal(marks, 0))
            if not batch.num_rows:
                continue
            odd = pc.indices_nonzero(batch.column(batch.num_columns - 2))
            rowids = batch.column(batch.num_columns - 1)
            resume = None
            if len(odd):
                stop = odd[0].as_py()
                resume = (">=", rowids[stop].as_py())
                batch = batch.slice(0, stop)
            if batch.num_rows:
                yield self._convert(batch, offset)
                offset += batch.num_rows
                position = (">", rowids[batch.num_rows - 1].as_py())
            if resume is not None:
                return resume, offset

    def _standard(self, resume: tuple[str, int], offset: int) -> Iterator[pa.RecordBatch]:
        """The rest of the table through sqlite3 (in the dump's snapshot), from a rowid on."""
        q = self._dialect.quote
        cols = ", ".join(q(c.name) for c in self._table.columns)
        op, rowid = resume
        after = f"{self._rowid} {op} {int(rowid)}"
        where = f"{self._where} AND {after}" if self._where else f" WHERE {after}"
        cur = self._raw.cursor()
        try:
            cur.execute(f"SELECT {cols} FROM {q(self._table.name)} NOT INDEXED{where} "
                        f"ORDER BY {self._rowid}")
            yield from fetch_batches(cur, self._table, self._schema, self._fetch_rows, offset)
        finally:
            cur.close()

    def _convert(self, batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
        arrays: list[pa.Array] = []
        position = 1
        for col, how in self._plan:
            if how == "decimal":
                ints, reals = batch.column(position), batch.column(position + 1)
                position += 2
                arrays.append(pc.coalesce(ints.cast(pa.string()), float_decimal_texts(reals)))
                continue
            array = batch.column(position)
            position += 1
            converted = _arrow_column(array, col)
            if converted is None:
                return rows_to_batch(self._python_rows(batch), self._table, self._schema, offset)
            arrays.append(converted)
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def _python_rows(self, batch: pa.RecordBatch) -> list[tuple[Any, ...]]:
        """The batch as the rows sqlite3 would have fetched (int, float, str, bytes)."""
        columns: list[list[Any]] = []
        position = 1
        for _, how in self._plan:
            if how == "decimal":
                ints = batch.column(position).to_pylist()
                reals = batch.column(position + 1).to_pylist()
                columns.append([r if i is None else i for i, r in zip(ints, reals)])
                position += 2
            else:
                columns.append(batch.column(position).to_pylist())
                position += 1
        return list(zip(*columns))


def _check_utf8(array: pa.Array, col: Column) -> None:
    """SQLite does not check that TEXT is UTF-8; sqlite3 refuses to fetch text that is not, and
    so does this reader, with the same error."""
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        raise sqlite3.OperationalError(f"Could not decode to UTF-8 column {col.name!r}") from None


def _arrow_column(array: pa.Array, col: Column) -> pa.Array | None:
    """One column of an ADBC batch as its logical type's Arrow array, or None when the
    per-value path must convert it."""
    kind = col.type.kind
    try:
        if kind == "boolean":
            bounds = pc.min_max(array)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            if low is not None and (low < 0 or high > 1):
                return None
            return array.cast(pa.bool_())
        if kind in ("string", "json", "other", "date", "time", "datetime", "timestamptz"):
            _check_utf8(array, col)
            if kind in ("string", "json", "other"):
                return array
            return iso_array(array, kind, col.type.arrow)
        return array.cast(col.type.arrow)  # integers range-checked; blob -> large_binary
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None


class _Untyped(UserDefinedType):  # type: ignore[type-arg]
    """A SQLite column declared without a type (it keeps BLOB affinity)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return ""


def _datetime_texts(arr: pa.Array, suffix: str) -> pa.Array:
    """``isoformat(" ")`` + ``suffix`` of every timestamp, formatted by Arrow (whose text always
    has six fraction digits, which ``isoformat`` leaves out when they are 0); a UTC timestamp
    as its UTC wall-clock time."""
    naive = arr.view(pa.int64()).view(pa.timestamp("us"))
    text = pc.replace_substring_regex(naive.cast(pa.string()), r"\.000000$", "")
    if suffix:
        text = pc.binary_join_element_wise(text, suffix, "")
    return text


def _bound(arr: pa.Array, col: Column) -> pa.Array | None:
    """What the INSERT binds for a column, as an Arrow array of SQLite's own storage classes
    (int64, float64, text, blob): dates and timestamps as ISO text (``date.isoformat()``,
    ``datetime.isoformat(" ")``), the way SQLite applications store them; booleans as 0/1.
    None where only the per-value path binds the values (an unsigned value above 2**63 - 1,
    which sqlite3 refuses; a blob column too big for 32-bit offsets; an array of a type the
    column's kind does not expect, bound as its Python values)."""
    kind = col.type.kind
    try:
        if kind == "date":
            return arr.cast(pa.string())
        if kind == "time":
            return pa.array(time_texts(arr), pa.string())
        if kind == "datetime":
            return _datetime_texts(arr, "")
        if kind == "timestamptz":
            return _datetime_texts(arr, "+00:00")
        t = arr.type
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            return arr.cast(pa.int64())  # checked: a uint64 above the int64 range raises
        if pa.types.is_floating(t):
            return arr.cast(pa.float64())
        if pa.types.is_large_binary(t) or pa.types.is_binary(t):
            return arr.cast(pa.binary())
        if pa.types.is_large_string(t) or pa.types.is_string(t):
            return arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return None


def _binder(columns: list[Column]) -> Callable[[pa.RecordBatch], list[pa.Array] | None]:
    """A batch -> the arrays its INSERT binds (None when one column needs the per-value path)."""

    def bound(batch: pa.RecordBatch) -> list[pa.Array] | None:
        arrays = []
        for i, col in enumerate(columns):
            arr = _bound(batch.column(i), col)
            if arr is None:
                return None
            arrays.append(arr)
        return arrays

    return bound


def _to_python(col: Column) -> Callable[[pa.Array], list[Any]]:
    """A column as the Python values bound to the INSERT (see :func:`_bound`)."""

    def values(arr: pa.Array) -> list[Any]:
        bound = _bound(arr, col)
        return list((arr if bound is None else bound).to_pylist())

    return values
