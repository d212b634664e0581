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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from dbcrate.dialects import sqlitestage
from dbcrate.dialects.base import Dialect
from dbcrate.dialects.engine_types import RawType
from dbcrate.dialects.native import NativeSupport
from dbcrate.dialects.native_sqlite import SqliteNative, shadow_tables
from dbcrate.dialects.pyvalues import (
    fetch_batches,
)
from dbcrate.dialects.sqlite_arrow import _ArrowReader
from dbcrate.errors import ConnectionFailed, SourceValueError
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table
from dbcrate.model.values import time_texts

try:  # the Arrow-native reader (optional: without it, tables are read through sqlite3)
    import adbc_driver_sqlite.dbapi as _adbc
except ImportError:  # pragma: no cover - a dependency, but the standard path still works
    _adbc = None  # type: ignore[assignment]

_PARAMS = re.compile(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


#: a full-text virtual table (fts3, fts4, fts5)
_FTS = re.compile(r"\s*CREATE\s+VIRTUAL\s+TABLE\s.*?\bUSING\s+fts[345]\b", re.I | re.S)


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
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)
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
    native: ClassVar[NativeSupport | None] = SqliteNative()

    @classmethod
    def connect_url(cls, url: sa.engine.URL, *, read_only: bool) -> sa.engine.URL:
        """A dump (``read_only``) needs the file to exist and opens it read-only; a restore
        needs its directory (sqlite3 creates the file)."""
        path = url.database or ""
        if not path or path == ":memory:":
            return url
        if read_only and not Path(path).is_file():
            raise ConnectionFailed(
                f"the SQLite database {path} does not exist",
                hint="check the path (sqlite:///relative.db, sqlite:////absolute.db)",
            )
        if not read_only and not Path(path).parent.is_dir():
            raise ConnectionFailed(f"the directory of {path} does not exist")
        if read_only:
            return sa.engine.make_url("sqlite:///file:" + path).update_query_dict(
                {"mode": "ro", "uri": "true"}
            )
        return url

    @classmethod
    def database_file(cls, url: sa.engine.URL) -> Path | None:
        path = url.database or ""
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return Path(path)

    def begin_snapshot(self, conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()  # take the snapshot now

    def server_version(self, conn: Connection) -> str:
        return sqlite3.sqlite_version

    def list_tables(self, conn: Connection, schemas: Sequence[str] = ()) -> list[str]:
        # a virtual table's shadow tables hold its module's own data (an FTS index): the
        # virtual table is dumped, its module rebuilds them from the rows
        shadows = shadow_tables(conn)
        return [t for t in super().list_tables(conn)
                if not t.startswith("sqlite_") and t not in shadows]

    def _declared(self, conn: Connection, table: str) -> dict[str, str]:
        rows = conn.exec_driver_sql(f"PRAGMA table_xinfo({self.quote(table)})").all()
        return {r[1]: (r[2] or "") for r in rows}

    def _reflect(self, conn: Connection, name: str) -> Table:
        self._declared_cache = self._declared(conn, name)
        table = super()._reflect(conn, name)
        sql = conn.exec_driver_sql("SELECT sql FROM main.sqlite_master WHERE type = 'table' "
                                   "AND name = ?", (name,)).scalar()
        if sql and _FTS.match(sql) and not table.primary_key:
            # an FTS table's rowid is its documents' identity (an external-content table's
            # rows are those of its content table by rowid): carried as a column, the key
            table.columns.insert(0, Column("rowid", LogicalType("int64"), "INTEGER",
                                           nullable=False))
            table.primary_key = ["rowid"]
        return table

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

    def estimate_bytes(self, conn: Connection, name: str) -> int | None:
        # the table's b-tree pages (dbstat); a build without the dbstat table has no estimate
        try:
            value = conn.exec_driver_sql(
                "SELECT sum(pgsize) FROM dbstat WHERE name = ? AND aggregate = 1", (name,)
            ).scalar()
        except sa.exc.DBAPIError:
            return None
        return int(value) if value is not None else None

    parallel_restore: ClassVar[bool] = False  # one writer at a time
    loads_committed: ClassVar[bool] = True  # ADBC inserts in place (sqlitestage.load_direct)

    def read_table(
        self,
        conn: Connection,
        table: Table,
        batch_rows: int,
        key_range: tuple[int, int] | None = None,
        *,
        table_bytes: int | None = None,
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
            cur.execute(f"SELECT {cols} FROM {self.table_sql(table.name)}{where}")
            yield from fetch_batches(cur, table, schema, batch_rows)
        finally:
            cur.close()

    def interrupter(self, conn: Connection) -> Callable[[], None] | None:
        # sqlite3_interrupt: the running statement ends with "interrupted"; ADBC's own
        # connections (the dump's reader, the restore's staging) stop at the flag instead
        raw = conn.connection.driver_connection
        return raw.interrupt if raw is not None else None

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
        insert = self._insert_into(table)
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

    def load_committed(self, table: Table,
                       batches: Iterator[pa.RecordBatch]) -> tuple[int, Iterator[pa.RecordBatch]]:
        # ADBC binds the Arrow arrays into the table itself: no staging file, no second
        # insert of every row (sqlitestage.load_direct)
        path = self.database_file(self.engine.url)
        if path is None or not table.columns:
            return 0, batches
        return sqlitestage.load_direct(str(path), self._insert_into(table), batches,
                                       _binder(table.columns))

    def _insert_into(self, table: Table) -> str:
        """``INSERT INTO tbl (cols)``, every name through the dialect's quoting."""
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        return f"INSERT INTO {self.table_sql(table.name)} ({cols})"

    def set_next_value(self, conn: Connection, table: Table, column: Column, value: int) -> None:
        has_seq = conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"
        ).scalar()
        own = self.own_name(table.name)
        autoinc = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (own,)
        ).scalar()
        if not has_seq or not autoinc or "AUTOINCREMENT" not in autoinc.upper():
            return  # a rowid table hands out max(rowid)+1 by itself
        conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (own,))
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (own, value - 1)
        )


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
