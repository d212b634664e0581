"""PostgreSQL's COPY CSV text and the archive's encoding, both ways: how Arrow's CSV reader
reads a COPY of a table (typed where the server's text is Arrow's, as text otherwise) and how
each column is then converted exactly; and what Arrow's CSV writer must be given for the server
to read a column back. Text forms Arrow cannot parse or print (``infinity`` dates, BC dates,
bytea hex) take an exact path in :mod:`dbcrate.model.values`."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dbcrate.errors import SourceValueError
from dbcrate.model import values
from dbcrate.model.schema import Column, Table

# date32 days / timestamp micros of 0001-01-01 and 9999-12-31: inside this range Arrow's own
# ISO formatting is what PostgreSQL reads back; outside it, values.format_pg_* is used
_DAY_MIN, _DAY_MAX = values.days_from_civil(1, 1, 1), values.days_from_civil(9999, 12, 31)
_US_MIN, _US_MAX = _DAY_MIN * values.US_PER_DAY, (_DAY_MAX + 1) * values.US_PER_DAY - 1

_READ_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "int8": pa.int16(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
}


def convert_options(names: list[str], table: Table) -> pacsv.ConvertOptions:
    """How Arrow reads COPY's CSV of ``table`` (columns named ``names``): the columns of a
    type Arrow parses as the server prints it typed, every other as text; an unquoted empty
    field is NULL, a quoted one the empty string."""
    return pacsv.ConvertOptions(
        column_types={n: _READ_TYPES.get(c.type.kind, pa.string())
                      for n, c in zip(names, table.columns)},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
        true_values=["t"],
        false_values=["f"],
    )


def from_csv_batch(batch: pa.RecordBatch, table: Table, schema: pa.Schema) -> pa.RecordBatch:
    """A batch as parsed from COPY's CSV into the table's Arrow schema.

    :raises SourceValueError: a value the column's logical type cannot hold exactly.
    """
    arrays = []
    for i, col in enumerate(table.columns):
        try:
            arrays.append(_from_pg_text(batch.column(i), col))
        except (ValueError, pa.ArrowInvalid) as exc:
            raise value_refused(table, col, exc) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _from_pg_text(arr: pa.Array, col: Column) -> pa.Array:
    """One CSV column as read by Arrow -> the archive encoding of the column's logical type."""
    kind = col.type.kind
    if kind == "int8":
        return arr.cast(pa.int8())
    if kind in _READ_TYPES:
        return arr
    if kind == "binary":
        return values.hex_to_binary(arr)
    if kind == "date":
        return values.text_to_date(arr)
    if kind in ("datetime", "timestamptz"):
        return values.text_to_timestamp(arr, tz=kind == "timestamptz")
    if kind == "time":
        return values.text_to_time(arr)
    if kind == "decimal":
        return arr  # PostgreSQL prints numerics exactly (NaN/Infinity as words)
    return arr  # string, json, uuid, other: the server's own text


def to_pg_text(arr: pa.Array, col: Column) -> pa.Array:
    """An archive column -> something Arrow's CSV writer prints the way PostgreSQL reads it."""
    kind = col.type.kind
    if kind == "binary":
        return values.binary_to_hex(arr)
    if kind == "date":
        ints = arr.cast(pa.int32())
        lo_hi = pc.min_max(ints).as_py()
        if lo_hi["min"] is not None and (lo_hi["min"] < _DAY_MIN or lo_hi["max"] > _DAY_MAX):
            return pa.array(
                [None if v is None else values.format_pg_date(v) for v in ints.to_pylist()],
                pa.string(),
            )
        return arr
    if kind == "time":
        return pa.array(values.time_texts(arr), pa.string())
    if kind in ("datetime", "timestamptz"):
        ints = arr.cast(pa.int64())
        lo_hi = pc.min_max(ints).as_py()
        if lo_hi["min"] is not None and (lo_hi["min"] < _US_MIN or lo_hi["max"] > _US_MAX):
            tz = kind == "timestamptz"
            return pa.array(
                [None if v is None else values.format_pg_timestamp(v, tz) for v in ints.to_pylist()],
                pa.string(),
            )
        return arr
    return arr


def value_refused(table: Table, col: Column, exc: Exception) -> SourceValueError:
    """The error for a source value of ``col`` that the archive cannot hold exactly."""
    hint = "fix the value or exclude the table with -T"
    if col.type.kind in ("datetime", "timestamptz"):
        # PostgreSQL accepts 30 more years (to 294276-12-31) than the archive's int64 can hold
        hint = ("change the value (to 'infinity' if that is what it means) or exclude the "
                "table with -T; docs/FORMAT.md, 'Dates and timestamps', gives the archive's range")
    return SourceValueError(f"table {table.name!r}, column {col.name!r}: a value cannot be "
                            f"stored exactly as {col.type.describe()} ({exc})", hint=hint)
