"""SQLite through the standard library's sqlite3: one read transaction, batched executemany.

SQLite stores values by *storage class*, not by declared type, so the logical type of a column
comes from its declared type with SQLite's own affinity rules; a column declared without a type
(or with one that says nothing) is classified by the storage classes it actually holds. A value
whose storage class does not fit the column's logical type is reported with its row, never
converted silently.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import UserDefinedType

from ..errors import SourceValueError
from ..logical import LogicalType
from ..schema import Column, Table
from ..values import time_texts
from .base import Dialect, RawType
from .pyvalues import fetch_batches

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
        cur = raw.cursor()
        try:
            where = self.range_condition(table, key_range)
            cur.execute(f"SELECT {cols} FROM {self.quote(table.name)}{where}")
            yield from fetch_batches(cur, table, schema, batch_rows)
        finally:
            cur.close()

    # ------------------------------------------------------------------ restore
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
    ) -> int:
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        marks = ", ".join(["?"] * len(table.columns))
        sql = f"INSERT INTO {self.quote(table.name)} ({cols}) VALUES ({marks})"
        converters = [_to_python(c) for c in table.columns]
        rows = 0
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


class _Untyped(UserDefinedType):  # type: ignore[type-arg]
    """A SQLite column declared without a type (it keeps BLOB affinity)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return ""


def _iso(sep: str | None = None, suffix: str = "") -> Callable[[Any], Any]:
    def fmt(v: Any) -> Any:
        if v is None:
            return None
        return (v.isoformat(sep) if sep else v.isoformat()) + suffix

    return fmt


def _to_python(col: Column) -> Callable[[pa.Array], list[Any]]:
    kind = col.type.kind
    if kind == "date":
        f = _iso()
        return lambda arr: [f(v) for v in arr.to_pylist()]
    if kind == "time":
        return time_texts
    if kind == "datetime":
        f = _iso(" ")
        return lambda arr: [f(v) for v in arr.to_pylist()]
    if kind == "timestamptz":
        f = _iso(" ", "+00:00")
        return lambda arr: [f(v) for v in arr.cast(pa.timestamp("us")).to_pylist()]
    return lambda arr: arr.to_pylist()
