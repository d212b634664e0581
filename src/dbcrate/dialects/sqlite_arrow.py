"""SQLite tables read by ADBC's driver straight into Arrow (in C), with the checks that keep
the result exact; the per-value path in :mod:`dbcrate.dialects.pyvalues` takes over where a
column cannot be converted in bulk."""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from dbcrate.dialects.pyvalues import (
    TARGET_BATCH_BYTES,
    fetch_batches,
    float_decimal_texts,
    iso_array,
    rows_to_batch,
)
from dbcrate.model.schema import Column, Table

try:  # the Arrow-native reader (optional: without it, tables are read through sqlite3)
    import adbc_driver_sqlite.dbapi as _adbc
except ImportError:  # pragma: no cover - a dependency, but the standard path still works
    _adbc = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from dbcrate.dialects.base import Dialect as SQLite

_MIN_ROWID = -(2**63)

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
        self._sql_name = dialect.table_sql(table.name)
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
        name = dialect.table_sql(table.name)
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
            cur.execute(f"SELECT {cols} FROM {self._sql_name} NOT INDEXED{where} "
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
