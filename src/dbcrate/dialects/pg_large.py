"""PostgreSQL rows holding a very large ``text``, ``varchar`` or ``bytea`` value, read apart
from COPY, each such value in slices.

Why: COPY sends a row as one message. libpq buffers the whole message (its buffer doubles to
fit and is kept for the life of the connection), psycopg copies it into Python, and Arrow's
CSV parser copies it again; ``bytea`` travels as hex text, twice its size. One 100 MB value
cost a dump 625 MB (text) and 1.1 GB (bytea) of memory (issue 19). Here a value of more than
:data:`LARGE_VALUE_BYTES` is left out of COPY (its row is read without it) and fetched with
``substring()`` in slices of at most :data:`SLICE_BYTES`, straight into one buffer of its size.

Which rows: ``octet_length()`` of a stored value is read from its TOAST pointer without
fetching the value, so finding them costs one scan of the table's main heap, and only for a
table whose TOAST relation is large enough to hold such a value (:data:`CHECKED_TOAST_BYTES`);
the planner's one-time filter skips the scan of every other table. Rows are named by ``ctid``,
stable inside the dump's snapshot.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from dbcrate.dialects.pgcopy import run_query
from dbcrate.errors import DatabaseError
from dbcrate.model.schema import Column, Table

#: a value of more bytes than this is read in slices (a COPY row of up to this size costs a
#: few times it in memory, as any other row does)
LARGE_VALUE_BYTES = 16 * 1024 * 1024
#: the bytes one slice query returns
SLICE_BYTES = 16 * 1024 * 1024
#: TOAST size below which no value can exceed LARGE_VALUE_BYTES: pglz and lz4 compress by at
#: most about 256 times, and every value of more than about 2 kB is moved to TOAST
CHECKED_TOAST_BYTES = LARGE_VALUE_BYTES // 256

_TEXT_TYPES = re.compile(r"(TEXT|VARCHAR(\(\d+\))?)\Z")
_CTID = re.compile(r"\(\d+,\d+\)\Z")


@dataclass(frozen=True)
class LargeRow:
    """One row with at least one large value: its ``ctid``, the columns (indexes into the
    table's columns) whose values are read in slices, and those values' sizes in bytes."""

    ctid: str
    columns: tuple[int, ...]
    sizes: tuple[int, ...]


def sliceable(column: Column) -> bool:
    """Whether ``column``'s values can be read in slices: ``text``, ``varchar`` (not ``char``,
    whose ``substring`` drops trailing blanks) and ``bytea``."""
    kind, engine = column.type.kind, column.engine_type.upper()
    if kind == "binary":
        return engine == "BYTEA"
    return kind == "string" and _TEXT_TYPES.match(engine) is not None


def find_large_rows(raw: Any, table: Table, table_sql: str, quote: Callable[[str], str],
                    where: str) -> list[LargeRow]:
    """The rows of ``table`` (those matching ``where``, a ``WHERE`` clause or ``""``) that
    hold a value of more than :data:`LARGE_VALUE_BYTES` in a sliceable column."""
    columns = [i for i, c in enumerate(table.columns) if sliceable(c)]
    if not columns:
        return []
    lengths = ", ".join(f"octet_length({quote(table.columns[i].name)})" for i in columns)
    large = " OR ".join(f"octet_length({quote(table.columns[i].name)}) > {LARGE_VALUE_BYTES}"
                        for i in columns)
    condition = f"({large})" + (f" AND ({where.removeprefix(' WHERE ')})" if where else "")
    # the subquery is a one-time filter: a table without a large TOAST relation is not scanned
    sql = (f"SELECT ctid::text, {lengths} FROM ONLY {table_sql} WHERE "
           f"(SELECT coalesce(pg_catalog.pg_relation_size(c.reltoastrelid), 0) "
           f"FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)) "
           f">= {CHECKED_TOAST_BYTES} AND {condition}")
    found = []
    for ctid, *sizes in run_query(raw, sql, [table_sql.encode()]):
        text = (ctid or b"").decode()
        if not _CTID.match(text):
            raise DatabaseError(f"table {table.name!r}: unexpected ctid {text!r}")
        big = [(i, int(size)) for i, size in zip(columns, sizes)
               if size is not None and int(size) > LARGE_VALUE_BYTES]
        found.append(LargeRow(text, tuple(i for i, _ in big), tuple(n for _, n in big)))
    return found


def without_rows(where: str, rows: Sequence[LargeRow]) -> str:
    """``where`` (a ``WHERE`` clause or ``""``) narrowed to leave ``rows`` out."""
    if not rows:
        return where
    listed = ", ".join(f"'{row.ctid}'::tid" for row in rows)  # checked by _CTID
    return (where + " AND " if where else " WHERE ") + f"ctid NOT IN ({listed})"


def read_value(raw: Any, table_sql: str, column: Column, quote: Callable[[str], str],
               ctid: str, size: int, arrow_type: pa.DataType) -> pa.Array:
    """One large value of ``size`` bytes (as the server stores it: its UTF-8 form, for text in
    a UTF-8 database) as a one-element array of ``arrow_type``, read in slices into a buffer
    of that size."""
    out = np.empty(size, np.uint8)
    filled = 0
    for piece in value_pieces(raw, table_sql, column, quote, ctid):
        if filled + len(piece) > out.size:  # text in a server encoding other than UTF-8
            out = np.concatenate([out[:filled], np.empty(len(piece) + out.size, np.uint8)])
        out[filled:filled + len(piece)] = np.frombuffer(piece, np.uint8)
        filled += len(piece)
        del piece
    large = arrow_type in (pa.large_string(), pa.large_binary())
    offsets = np.array([0, filled], np.int64 if large else np.int32)
    return pa.Array.from_buffers(arrow_type, 1, [None, pa.py_buffer(offsets),
                                                 pa.py_buffer(out[:filled])])


def _rest_of_row_sql(table: Table, table_sql: str, quote: Callable[[str], str], row: LargeRow,
                     options: str) -> str:
    """``COPY`` of ``row`` with its large values as ``NULL`` (``options``: the COPY's own)."""
    select = ", ".join(
        f"NULL::{'bytea' if c.type.kind == 'binary' else 'text'}" if i in row.columns
        else quote(c.name) for i, c in enumerate(table.columns))
    return (f"COPY (SELECT {select} FROM ONLY {table_sql} WHERE ctid = '{row.ctid}'::tid) "
            f"TO STDOUT{options}")


def read_large_rows(raw: Any, table: Table, table_sql: str, quote: Callable[[str], str],
                    rows: Sequence[LargeRow], schema: pa.Schema,
                    read_rest: Callable[[str], Iterator[pa.RecordBatch]]
                    ) -> Iterator[pa.RecordBatch]:
    """Each row of ``rows`` as a one-row batch: its other values from ``read_rest`` (given the
    ``COPY`` of the row, its large values as ``NULL``), its large values read in slices."""
    for row in rows:
        copy = _rest_of_row_sql(table, table_sql, quote, row, " WITH (FORMAT csv)")
        (batch,) = [b for b in read_rest(copy) if b.num_rows]
        arrays = list(batch.columns)
        del batch
        for i, size in zip(row.columns, row.sizes):
            arrays[i] = read_value(raw, table_sql, table.columns[i], quote, row.ctid, size,
                                   schema.field(i).type)
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


#: COPY's text format escapes these bytes of a value (PostgreSQL's CopyAttributeOutText);
#: the backslash first, so that the escapes added after it are not escaped again
_COPY_ESCAPES = ((b"\\", b"\\\\"), (b"\b", b"\\b"), (b"\f", b"\\f"), (b"\n", b"\\n"),
                 (b"\r", b"\\r"), (b"\t", b"\\t"), (b"\v", b"\\v"))


def copy_text_escape(data: bytes) -> bytes:
    """Bytes of a text value as COPY's text format writes them."""
    for raw, escaped in _COPY_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def value_pieces(raw: Any, table_sql: str, column: Column, quote: Callable[[str], str],
                 ctid: str) -> Iterator[bytes]:
    """One large value's slices of at most :data:`SLICE_BYTES` (UTF-8 for text)."""
    name = quote(column.name)
    # bytes, not characters: substring() of a text in a multi-byte encoding reads the value
    # from its start to find the slice (0.4 s a slice at the end of 100 MB); the bytes of its
    # UTF-8 form cost one read of the value a slice (0.14 s), and bytea slices are fetched alone
    value = f"pg_catalog.convert_to({name}, 'UTF8')" if column.type.kind == "string" else name
    sql = (f"SELECT substring({value} FROM $1::int FOR $2::int) FROM ONLY {table_sql} "
           f"WHERE ctid = '{ctid}'::tid")
    start = 1
    while True:
        (piece,), = run_query(raw, sql, [str(start).encode(), str(SLICE_BYTES).encode()],
                              binary=True)
        piece = piece or b""
        if piece:
            yield piece
        # a short slice is the last; a full one may be followed by an empty one
        if len(piece) < SLICE_BYTES:
            return
        start += SLICE_BYTES
        del piece


def copy_text_of_large_rows(raw: Any, table: Table, table_sql: str,
                            quote: Callable[[str], str], rows: Sequence[LargeRow],
                            read_row: Callable[[str], bytes]
                            ) -> Iterator[tuple[bytes, int]]:
    """Each row of ``rows`` in COPY's text format, as COPY writes it, in pieces (text, 1 for
    the piece that ends the row, else 0): its other fields from ``read_row`` (given the COPY of
    the row, its large values as ``NULL``), each large value escaped slice by slice."""
    for row in rows:
        line = read_row(_rest_of_row_sql(table, table_sql, quote, row, ""))
        fields = line.removesuffix(b"\n").split(b"\t")  # a tab in a value is escaped
        if len(fields) != len(table.columns) or any(fields[i] != b"\\N" for i in row.columns):
            raise DatabaseError(f"table {table.name!r}: the row at {row.ctid} changed")
        head = b""
        for i, field in enumerate(fields):
            if i not in row.columns:
                head += field + (b"\t" if i < len(fields) - 1 else b"\n")
                continue
            column = table.columns[i]
            text = column.type.kind == "string"
            yield head + (b"" if text else b"\\\\x"), 0
            for piece in value_pieces(raw, table_sql, column, quote, row.ctid):
                yield (copy_text_escape(piece) if text else binascii.hexlify(piece)), 0
            head = b"\t" if i < len(fields) - 1 else b"\n"
        yield head, 1
