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
import pyarrow.compute as pc

from dbcrate.errors import SourceValueError
from dbcrate.model.schema import Column, Table
from dbcrate.model.values import decimal_text


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


_NONE = type(None)
_INT_KINDS = frozenset({"int8", "int16", "int32", "int64", "uint64"})
_TEXT_KINDS = frozenset({"string", "json", "other"})
#: ISO texts whose meaning Arrow's parser and Python's ``fromisoformat`` agree on (both also
#: check that the day exists; year 0, which Arrow accepts and Python refuses, is excluded here)
_ISO_DATE = r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_ISO_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
_ISO_DATE_RE = f"^{_ISO_DATE}$"
_ISO_TIME_RE = f"^{_ISO_CLOCK}$"
_ISO_DATETIME_RE = f"^{_ISO_DATE}[T ]{_ISO_CLOCK}(Z|\\+00:00)?$"
#: the floats whose shortest text Arrow writes positionally, as ``repr`` does (below 1e15 and
#: from 1e-4 on); the others take the per-value path
_FAST_FLOAT_MAX = 1e15
_FAST_FLOAT_MIN = 1e-4


def _all_match(strings: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(strings, pattern), skip_nulls=True).as_py())


def float_decimal_texts(floats: pa.Array) -> pa.Array:
    """:func:`decimal_text` of a float64 array (nulls stay null), from Arrow's shortest
    formatting: the same digits as ``repr``; ``12`` gets ``.0`` as ``repr`` gives it. Values
    outside the range where both write positional digits (and NaN, infinities) are formatted
    one by one."""
    magnitude = pc.abs(floats)
    texts = floats.cast(pa.string())
    fast = pc.and_(
        pc.or_(pc.equal(floats, 0), pc.and_(pc.greater_equal(magnitude, _FAST_FLOAT_MIN),
                                           pc.less(magnitude, _FAST_FLOAT_MAX))),
        pc.invert(pc.match_substring(texts, "e")),
    )
    whole = pc.invert(pc.match_substring(texts, "."))
    texts = pc.if_else(whole, pc.binary_join_element_wise(texts, ".0", ""), texts)
    slow = pc.invert(pc.fill_null(fast, True))
    if pc.any(slow).as_py():
        positions = pc.indices_nonzero(slow).to_pylist()
        exact = pa.array([decimal_text(floats[i].as_py()) for i in positions], pa.string())
        texts = pc.replace_with_mask(texts, slow, exact)
    return texts


def _decimal_array(values: Sequence[Any], types: set[type]) -> pa.Array:
    """Canonical decimal texts of SQLite's INTEGER and REAL values (``str`` of an int, the
    shortest positional digits of a float)."""
    if types == {int}:
        return pa.array(values, pa.int64()).cast(pa.string())
    if types == {float}:
        return float_decimal_texts(pa.array(values, pa.float64()))
    ints = pa.array([v if type(v) is int else None for v in values], pa.int64())
    floats = pa.array([v if type(v) is float else None for v in values], pa.float64())
    return pc.coalesce(ints.cast(pa.string()), float_decimal_texts(floats))


def iso_array(strings: pa.Array, kind: str, arrow_type: pa.DataType) -> pa.Array | None:
    """ISO 8601 texts (a string array) parsed by Arrow, or None unless every text is one that
    Arrow and Python's ``fromisoformat`` read alike. Raises ``ArrowInvalid`` for a day that
    does not exist."""
    if kind == "date":
        if not _all_match(strings, _ISO_DATE_RE):
            return None
        return strings.cast(pa.date32())
    if kind == "time":
        if not _all_match(strings, _ISO_TIME_RE):
            return None
        stamps = pc.binary_join_element_wise("1970-01-01 ", strings, "").cast(pa.timestamp("us"))
        return stamps.view(pa.int64()).view(arrow_type)
    if not _all_match(strings, _ISO_DATETIME_RE):
        return None
    # a UTC suffix names the same instant as the naive text (Python converts it to UTC)
    naive = pc.replace_substring_regex(strings, "(Z|\\+00:00)$", "")
    return naive.cast(pa.timestamp("us")).view(pa.int64()).view(arrow_type)


def _fast_array(values: Sequence[Any], col: Column) -> pa.Array | None:
    """The column converted by Arrow in one call when every value has the Python type the
    per-value converter passes through unchanged (or converts the way Arrow does); None when
    the values need the per-value path (which also finds the row of a bad value). Exact types
    are checked because Arrow converts more than the converters accept (a float into an
    integer column, bytes into a string column)."""
    kind = col.type.kind
    arrow_type = col.type.arrow
    types = set(map(type, values))
    types.discard(_NONE)
    try:
        if not types:
            return pa.nulls(len(values), arrow_type)
        if kind in _INT_KINDS:
            return pa.array(values, arrow_type) if types == {int} else None
        if kind in ("float32", "float64"):
            return pa.array(values, arrow_type) if types == {float} else None
        if kind in _TEXT_KINDS:
            return pa.array(values, pa.string()) if types == {str} else None
        if kind == "binary":
            return pa.array(values, arrow_type) if types == {bytes} else None
        if kind == "boolean":
            if types != {int}:
                return None
            ints = pa.array(values, pa.int64())
            bounds = pc.min_max(ints)
            if bounds["min"].as_py() < 0 or bounds["max"].as_py() > 1:
                return None
            return ints.cast(pa.bool_())
        if kind == "decimal":
            return _decimal_array(values, types) if types <= {int, float} else None
        if kind in ("date", "time", "datetime", "timestamptz"):
            native = {"date": dt.date, "time": dt.time}.get(kind, dt.datetime)
            if types == {native}:
                return pa.array(values, arrow_type)
            if types != {str}:
                return None
            return iso_array(pa.array(values, pa.string()), kind, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return None


def column_to_arrow(values: Sequence[Any], col: Column) -> pa.Array:
    """Convert one column of driver values; raises :class:`BadValue` with the row index."""
    fast = _fast_array(values, col)
    if fast is not None:
        return fast
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


#: aim for record batches of about this many bytes when rows are wide (blobs, long texts):
#: 4 MiB, not 16, took about 70-100 MB off the scale-1 MariaDB and SQLite dumps' peak RSS
#: at the same speed (docs/PERFORMANCE.md, "Session 5")
TARGET_BATCH_BYTES = 4 * 1024 * 1024


def fetch_batches(cur: Any, table: Table, schema: pa.Schema, batch_rows: int,
                  offset: int = 0) -> Iterator[pa.RecordBatch]:
    """Fetch an executed cursor in record batches whose size in bytes stays bounded.

    The first fetch takes few rows; later fetches size themselves from the bytes per row seen
    so far, so a table of large blobs never pulls ``batch_rows`` blobs into memory at once.
    ``offset``: rows of the table read before this cursor's (for the row numbers of errors).
    """
    size = min(batch_rows, 1024)
    while rows := cur.fetchmany(size):
        batch = rows_to_batch(rows, table, schema, offset)
        offset += len(rows)
        yield batch
        per_row = max(1, batch.nbytes // max(1, batch.num_rows))
        size = max(1, min(batch_rows, TARGET_BATCH_BYTES // per_row))
