"""Python driver values <-> Arrow, for the engines whose drivers hand out Python objects.

MariaDB (PyMySQL) and SQLite (sqlite3) return rows of Python objects; these helpers turn one
column of a fetched batch into the Arrow array of its logical type, and report the exact row of
any value that does not fit (instead of changing it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from ..errors import SourceValueError
from ..schema import Column, Table
from ..values import decimal_text


class BadValue(ValueError):
    def __init__(self, index: int, value: Any, why: str) -> None:
        super().__init__(why)
        self.index = index
        self.value = value
        self.why = why


def _each(values: Sequence[Any], fn: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(fn(v))
        except (ValueError, TypeError, OverflowError) as exc:
            raise BadValue(i, v, str(exc)) from None
    return out


def _bool(v: Any) -> bool:
    if v in (0, 1) and not isinstance(v, float | str):
        return bool(v)
    raise ValueError("not a boolean (0 or 1)")


def _int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, bytes):  # MariaDB BIT(n)
        return int.from_bytes(v, "big")
    raise ValueError(f"a {type(v).__name__} in an integer column")


def _float(v: Any) -> float:
    if isinstance(v, float | int) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, Decimal):
        return float(v)
    raise ValueError(f"a {type(v).__name__} in a floating-point column")


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, set | frozenset):  # MariaDB SET as returned by some drivers
        return ",".join(sorted(v))
    raise ValueError(f"a {type(v).__name__} in a text column")


def _json(v: Any) -> str:
    if isinstance(v, str):
        return v
    # SQLite gives JSON-declared columns numeric affinity: a document like 1.5e300 is stored as
    # a number; its JSON text is the same number
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and v == v and v not in (float("inf"), float("-inf")):
        return repr(v)
    raise ValueError(f"a {type(v).__name__} in a JSON column")


def _bytes(v: Any) -> bytes:
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    raise ValueError(f"a {type(v).__name__} in a binary column")


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        raise ValueError("a timestamp in a date column")
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        return dt.date.fromisoformat(v)
    raise ValueError(f"{v!r} is not a valid date")


def _time(v: Any) -> dt.time:
    if isinstance(v, dt.time):
        return v
    if isinstance(v, dt.timedelta):  # MariaDB TIME
        if dt.timedelta(0) <= v < dt.timedelta(days=1):
            return (dt.datetime.min + v).time()
        raise ValueError(f"TIME value {v} is outside 00:00:00..23:59:59.999999")
    if isinstance(v, str):
        return dt.time.fromisoformat(v)
    raise ValueError(f"{v!r} is not a valid time")


def _datetime(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v
    if isinstance(v, str):
        value = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    raise ValueError(f"{v!r} is not a valid timestamp")


def _uuid(v: Any) -> str:
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, bytes) and len(v) == 16:
        return str(uuid.UUID(bytes=v))
    return str(uuid.UUID(str(v)))


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "boolean": _bool,
    "int8": _int,
    "int16": _int,
    "int32": _int,
    "int64": _int,
    "uint64": _int,
    "float32": _float,
    "float64": _float,
    "decimal": decimal_text,
    "string": _str,
    "binary": _bytes,
    "date": _date,
    "time": _time,
    "datetime": _datetime,
    "timestamptz": _datetime,
    "json": _json,
    "uuid": _uuid,
    "other": _str,
}


def column_to_arrow(values: Sequence[Any], col: Column) -> pa.Array:
    """Convert one column of driver values; raises :class:`BadValue` with the row index."""
    converted = _each(values, CONVERTERS[col.type.kind])
    try:
        return pa.array(converted, type=col.type.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        # find the culprit for the report
        for i, v in enumerate(converted):
            if v is None:
                continue
            try:
                pa.array([v], type=col.type.arrow)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                raise BadValue(i, values[i], f"does not fit {col.type.describe()}") from None
        raise BadValue(0, None, str(exc)) from None


def rows_to_batch(
    rows: Sequence[Sequence[Any]], table: Table, schema: pa.Schema, row_offset: int
) -> pa.RecordBatch:
    """A fetched list of row tuples -> one record batch; errors name table, column and row."""
    columns = list(zip(*rows)) if rows else [() for _ in table.columns]
    arrays = []
    for col, vals in zip(table.columns, columns):
        try:
            arrays.append(column_to_arrow(vals, col))
        except BadValue as bad:
            key = _row_key(table, rows[bad.index] if rows else (), bad.index + row_offset)
            raise SourceValueError(
                f"table {table.name!r}, column {col.name!r}, {key}: value {_short(bad.value)} "
                f"cannot be stored exactly as {col.type.describe()} ({bad.why})",
                hint="fix or remove the value in the source, or exclude the table with -T",
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _row_key(table: Table, row: Sequence[Any], position: int) -> str:
    if table.primary_key and row:
        names = table.column_names
        parts = [f"{k}={row[names.index(k)]!r}" for k in table.primary_key if k in names]
        return "row " + ", ".join(parts)
    return f"row #{position + 1}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


#: aim for record batches of about this many bytes when rows are wide (blobs, long texts)
TARGET_BATCH_BYTES = 16 * 1024 * 1024


def fetch_batches(cur: Any, table: Table, schema: pa.Schema, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Fetch an executed cursor in record batches whose size in bytes stays bounded.

    The first fetch takes few rows; later fetches size themselves from the bytes per row seen
    so far, so a table of large blobs never pulls ``batch_rows`` blobs into memory at once.
    """
    size = min(batch_rows, 1024)
    offset = 0
    while rows := cur.fetchmany(size):
        batch = rows_to_batch(rows, table, schema, offset)
        offset += len(rows)
        yield batch
        per_row = max(1, batch.nbytes // max(1, batch.num_rows))
        size = max(1, min(batch_rows, TARGET_BATCH_BYTES // per_row))
