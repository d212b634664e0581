"""Compliance suite for data formats: plain functions that raise ``AssertionError``.

Any :class:`~dbcrate.formats.registry.DataFormat` — built-in or a third party's, registered through the
``dbcrate.formats`` entry point group — must pass :func:`check_format`::

    from dbcrate.testing.formats import check_bounded_memory, check_format

    def test_my_format():
        check_format(MY_FORMAT)
        check_bounded_memory(MY_FORMAT)

What a format must do (docs/FORMAT.md, "Data members"): a member written from batches of the
table's Arrow schema reads back, given that schema, as batches of exactly that schema holding
exactly the values written, for every logical kind; "exactly" treats NaN as equal to NaN (the
payload may change) and tells -0.0 from 0.0. Reading a damaged member fails with one of
:data:`DECODE_ERRORS` (which the archive reader reports as a corrupt member), never with another
exception. Data that compresses thousands of times reads back too (a reader's defences against
decompression bombs must not refuse what its writer writes).
"""

from __future__ import annotations

import gc
import io
import math
import random
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa

from dbcrate.formats.registry import DataFormat
from dbcrate.model.logical import (
    ARROW_TYPES,
    DATE_NEG_INFINITY,
    DATE_POS_INFINITY,
    TS_NEG_INFINITY,
    TS_POS_INFINITY,
)

#: the exceptions a reader may raise for a member it cannot decode
DECODE_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError, pa.ArrowException)

_DAY_US = 86_400_000_000
_Y1 = -719162  # 0001-01-01 as days since 1970-01-01
_Y10000 = 2932897  # 10000-01-01

_CONTROL = "".join(map(chr, range(32))) + "\x7f\x80\x9f"
_LONG_TEXT = "word " * 1000 + "\u00e9\U0001f600"

#: edge values per logical kind; temporal kinds as their Arrow storage integers. The first
#: value of every list is None, so the first row of :func:`edge_table` is all NULL.
EDGE_VALUES: dict[str, list[Any]] = {
    "boolean": [None, True, False],
    "int8": [None, -(2**7), 2**7 - 1, 0, -1, 1],
    "int16": [None, -(2**15), 2**15 - 1, 0, -1],
    "int32": [None, -(2**31), 2**31 - 1, 0, -1],
    "int64": [None, -(2**63), 2**63 - 1, 0, -1, 2**53 + 1],
    "uint64": [None, 0, 2**64 - 1, 2**63, 2**63 - 1, 1],
    "float32": [None, math.nan, math.inf, -math.inf, -0.0, 0.0, 1.401298464324817e-45,
                3.4028234663852886e38, 1.1754943508222875e-38, 0.1, 16777217.0, -1.5, 1e30,
                1.0000001192092896, 123456792.0],
    "float64": [None, math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308,
                2.2250738585072014e-308, 0.1, 1e21, 1e-7, 123456789012345680000.0,
                2.0**53 + 2, -1.5, 1e16, 0.30000000000000004],
    "decimal": [None, "0", "-0", "1.50", "NaN", "Infinity", "-Infinity",
                "-9999999999999999999999999999.9999999999", "1" + "0" * 999 + ".5",
                "0.0000000001", "1e+16", "12345678901234567890.1234567890"],
    "string": [None, "", "NULL", "null", "\\N", "~", "true", "yes", "No", "off", "0", "010",
               "1e3", "0x1F", "1_000", "12:30:00", "2021-06-01", "2021-06-01T10:00:00Z",
               " leading", "trailing ", "  ", "\t", "\x00", "a\x00b", "\r", "\n", "\r\n",
               "\n\nx\n\n", _CONTROL, "\x85\u2028\u2029", "\ufeff", "a\ufeffb", "\ufffe\uffff",
               "\ud7ff\ue000\ufffd", "\U0001f600\U0001d11e\U0010ffff", "e\u0301 \u00e9 \u05e9",
               '"quoted"', "'", "\\", "\\x41", "<tag>&amp;</tag>", "]]>", "<!DOCTYPE x>",
               "<!ENTITY x 'y'>", "%s%d%%", "{}", "[]", '{"a": 1}', "- item", "key: value",
               "#comment", "&anchor", "*alias", "!tag", "!!binary", "|", ">", "@", "`",
               "---", "...", "?", ":", ",", "=", "<<", "NaN", "Infinity", "-0", ".nan",
               '"a","b"', "a,b\nc", _LONG_TEXT],
    "binary": [None, b"", bytes(range(256)), b"\x00", b"\\x", b"=", b"\xff" * 3,
               bytes(range(255, -1, -1)) * 8, b"\r\n"],
    "date": [None, 0, -1, _Y1, _Y1 - 1, -719528, -719529, 2932896, _Y10000, DATE_POS_INFINITY,
             DATE_NEG_INFINITY, DATE_POS_INFINITY - 1, DATE_NEG_INFINITY + 1, 11016, -2145042905,
             2145042905, 10957],
    "time": [None, 0, 1, _DAY_US - 1, _DAY_US, 45_000_000_000, 43_200_500_000, 999_999],
    "datetime": [None, 0, 1, -1, TS_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY - 1,
                 TS_NEG_INFINITY + 1, _Y1 * _DAY_US, _Y1 * _DAY_US - 1, _Y10000 * _DAY_US - 1,
                 _Y10000 * _DAY_US, 1_622_541_600_000_000, -210_866_803_200_000_000, 951_782_400_000_001],
    "timestamptz": [None, 0, 1, -1, TS_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY - 1,
                    TS_NEG_INFINITY + 1, _Y1 * _DAY_US - 1, _Y10000 * _DAY_US,
                    1_622_541_600_000_000, 1_622_541_600_123_456],
    "json": [None, "", '{"b": 1, "a": 2, "a": 3}', "null", '"text"', "[1, 2.5, null]",
             ' {  }\n', '{"s": "\\u0000\\n"}', "1.5e300"],
    "uuid": [None, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000",
             "ffffffff-ffff-ffff-ffff-ffffffffffff"],
    "other": [None, "", "{1,NULL,3}", "-1 years -2 mons +3 days -04:05:06.789", "192.168.0.1/24",
              "(1,2)", "12:00:00+02"],
}

#: column names that trouble text formats (headers, element names, mapping keys); each holds
#: a string column
NASTY_NAMES: list[str] = [
    "", " ", "a b", "x%sy%%", '"quoted"', "it's", "new\nline", "tab\tname", "cr\rname", "<<", "-",
    "1", "1.5", "null", "true", "~", "?", "row", "rows", "xml", "XMLfoo", "_x", "_x0020_", "a:b",
    "\u00e9\U0001f600", "\u65e5\u672c", "a,b", "a;b", "--", "$b64", "#", "\x00nul", "\\", "{}",
]


def edge_schema(nasty_names: bool = True) -> pa.Schema:
    """One column per logical kind (named after it), then string columns with
    :data:`NASTY_NAMES`."""
    fields = [pa.field(kind, arrow_type) for kind, arrow_type in ARROW_TYPES.items()]
    if nasty_names:
        fields += [pa.field(name, pa.string()) for name in NASTY_NAMES]
    return pa.schema(fields)


def _array(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    if arrow_type == pa.float32():
        return pa.array(values, pa.float64()).cast(pa.float32(), safe=False)
    return pa.array(values, arrow_type)


def edge_table(nasty_names: bool = True, rows: int | None = None) -> pa.Table:
    """The edge values of every kind, cycled so that each column holds all of its values
    (``rows`` defaults to the longest list); row 0 is all NULL."""
    missing = set(ARROW_TYPES) - set(EDGE_VALUES)
    if missing:
        raise AssertionError(f"no edge values for logical kinds {sorted(missing)}")
    schema = edge_schema(nasty_names)
    longest = max(len(v) for v in EDGE_VALUES.values())
    count = longest if rows is None else rows
    columns = []
    for index, field in enumerate(schema):
        if field.name in EDGE_VALUES and index < len(ARROW_TYPES):
            values = EDGE_VALUES[field.name]
        else:  # a nasty-named column: string values, shifted so the columns differ
            strings = EDGE_VALUES["string"]
            values = [None] + [strings[(index + i) % len(strings)] for i in range(1, len(strings))]
        columns.append(_array([values[i % len(values)] for i in range(count)], field.type))
    return pa.Table.from_arrays(columns, schema=schema)


# ---------------------------------------------------------------------------------------------
# writing, reading, comparing
# ---------------------------------------------------------------------------------------------


def write_member(fmt: DataFormat, schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                 level: int = 3, sink: IO[bytes] | None = None) -> IO[bytes]:
    """Encode ``batches`` as one member (into ``sink``, default a BytesIO); returns the sink
    rewound. Checks that ``close`` leaves the sink open."""
    out: IO[bytes] = sink if sink is not None else io.BytesIO()
    writer = fmt.open_writer(out, schema, level)
    for batch in batches:
        writer.write(batch)
    writer.close()
    assert not out.closed, f"{fmt.name}: the writer's close() closed the sink"
    out.seek(0)
    return out


def read_member(fmt: DataFormat, source: IO[bytes], schema: pa.Schema) -> list[pa.RecordBatch]:
    """Decode a member; checks that every batch has exactly ``schema``."""
    batches = []
    for batch in fmt.read(source, schema):
        assert isinstance(batch, pa.RecordBatch), f"{fmt.name}: read yielded {type(batch)}"
        assert batch.schema.equals(schema), (
            f"{fmt.name}: batch schema\n{batch.schema}\ndiffers from the expected\n{schema}"
        )
        batches.append(batch)
    return batches


def _storage(array: pa.Array) -> pa.Array:
    """Temporal arrays as their storage integers (Python objects cannot hold all values)."""
    t = array.type
    if pa.types.is_date32(t):
        return array.view(pa.int32())
    if pa.types.is_time64(t) or pa.types.is_timestamp(t):
        return array.view(pa.int64())
    return array


def _float_bits(array: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = array.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.where(valid, values, 0).astype(values.dtype)
    nan = np.isnan(values)
    bits = values.view(np.uint32 if values.dtype == np.float32 else np.uint64)
    return valid, nan, np.where(nan, 0, bits)


def _first_difference(expected: pa.Array, actual: pa.Array) -> int:
    for i in range(len(expected)):
        if not expected.slice(i, 1).equals(actual.slice(i, 1)):
            return i
    return -1


def assert_same_column(expected: pa.Array, actual: pa.Array, what: str) -> None:
    """Exact equality; NaN equals NaN (any payload), -0.0 differs from 0.0."""
    assert expected.type == actual.type, f"{what}: type {actual.type}, expected {expected.type}"
    assert len(expected) == len(actual), f"{what}: {len(actual)} values, expected {len(expected)}"
    if pa.types.is_floating(expected.type):
        e_valid, e_nan, e_bits = _float_bits(expected)
        a_valid, a_nan, a_bits = _float_bits(actual)
        bad = (e_valid != a_valid) | (e_nan != a_nan) | (e_bits != a_bits)
        if bad.any():
            i = int(np.argmax(bad))
            raise AssertionError(
                f"{what}: row {i} is {actual[i]!r} ({a_bits[i]:#x}), expected {expected[i]!r} "
                f"({e_bits[i]:#x})"
            )
        return
    e, a = _storage(expected), _storage(actual)
    if not e.equals(a):
        i = _first_difference(e, a)
        raise AssertionError(f"{what}: row {i} is {a[i]!r:.200}, expected {e[i]!r:.200}")


def assert_same_table(expected: pa.Table, actual: pa.Table, context: str = "") -> None:
    """Same schema (names, types, nullability), same rows, values equal as
    :func:`assert_same_column` says."""
    assert actual.schema.equals(expected.schema), (
        f"{context}: schema\n{actual.schema}\nexpected\n{expected.schema}"
    )
    assert actual.num_rows == expected.num_rows, (
        f"{context}: {actual.num_rows} rows, expected {expected.num_rows}"
    )
    for i, name in enumerate(expected.column_names):
        assert_same_column(expected.column(i).combine_chunks(), actual.column(i).combine_chunks(),
                           f"{context}: column {name!r}")


def roundtrip(fmt: DataFormat, table: pa.Table, batch_rows: int | None = None,
              level: int = 3, context: str = "") -> pa.Table:
    """Write ``table`` in batches of ``batch_rows`` (all at once when None), read it back and
    check it is the same; returns what was read."""
    batches = table.to_batches(max_chunksize=batch_rows) if table.num_rows else []
    source = write_member(fmt, table.schema, batches, level)
    read = read_member(fmt, source, table.schema)
    actual = pa.Table.from_batches(read, schema=table.schema)
    assert_same_table(table, actual, f"{fmt.name} {context}".strip())
    return actual


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


def check_empty_members(fmt: DataFormat, schema: pa.Schema | None = None) -> None:
    """A member with no batch at all, and one with a single batch of 0 rows, read as 0 rows."""
    schema = schema or edge_schema()
    for label, batches in (("no batch", []), ("a 0-row batch", _empty_batch(schema))):
        source = write_member(fmt, schema, batches)
        rows = sum(b.num_rows for b in read_member(fmt, source, schema))
        assert rows == 0, f"{fmt.name}: a member written with {label} reads as {rows} rows"


def _empty_batch(schema: pa.Schema) -> list[pa.RecordBatch]:
    return [pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)]


def check_edge_values(fmt: DataFormat) -> None:
    """Every edge value of every kind, written in several batchings and at several levels."""
    table = edge_table()
    roundtrip(fmt, table, context="one batch")
    roundtrip(fmt, table, 1, context="batches of 1 row")
    roundtrip(fmt, table, 7, level=1, context="batches of 7 rows, level 1")
    roundtrip(fmt, table, 13, level=19, context="batches of 13 rows, level 19")
    # 0-row batches between others
    batches = []
    for batch in table.to_batches(max_chunksize=20):
        batches += [batch.slice(0, 0), batch]
    source = write_member(fmt, table.schema, batches)
    actual = pa.Table.from_batches(read_member(fmt, source, table.schema), schema=table.schema)
    assert_same_table(table, actual, f"{fmt.name} with 0-row batches in between")
    # each kind alone, and each NASTY name alone (single-column members: a NULL row is empty)
    for field in table.schema:
        single = table.select([field.name])
        roundtrip(fmt, single, 5, context=f"single column {field.name!r}")


def check_many_rows(fmt: DataFormat, rows: int = 12_345, batch_rows: int = 5_000) -> None:
    """More rows than a reader's batch, written in batches that do not align with it."""
    table = edge_table(nasty_names=False, rows=rows)
    roundtrip(fmt, table, batch_rows, context=f"{rows} rows")
    roundtrip(fmt, table, None, context=f"{rows} rows in one batch")


def check_corrupt_input(fmt: DataFormat) -> None:
    """Damaged members fail with :data:`DECODE_ERRORS` (or decode to batches that the caller's
    schema and row-count checks reject); a member read with a schema naming other columns fails
    or yields batches of another schema."""
    table = edge_table(nasty_names=False)
    schema = table.schema
    good = write_member(fmt, schema, table.to_batches()).read()
    rng = random.Random(1)
    flipped = bytearray(good)
    for _ in range(8):
        flipped[rng.randrange(len(flipped))] ^= 0xFF
    damaged = {
        "empty": b"",
        "garbage": bytes(rng.randrange(256) for _ in range(4096)),
        "truncated to half": good[: len(good) // 2],
        "last byte cut": good[:-1],
        "flipped bytes": bytes(flipped),
    }
    for label, data in damaged.items():
        _expect_failure_or_checkable(fmt, data, schema, table.num_rows, f"{label} member")
    renamed = pa.schema([pa.field(f.name + "_other", f.type) for f in schema])
    try:
        batches = list(fmt.read(io.BytesIO(good), renamed))
    except DECODE_ERRORS:
        return
    assert any(not b.schema.equals(renamed) for b in batches), (
        f"{fmt.name}: a member read with a schema of other column names decodes without error"
    )


def _expect_failure_or_checkable(fmt: DataFormat, data: bytes, schema: pa.Schema, rows: int,
                                 what: str) -> None:
    try:
        batches = list(fmt.read(io.BytesIO(data), schema))
    except DECODE_ERRORS:
        return
    except Exception as exc:
        raise AssertionError(
            f"{fmt.name}: a {what} raised {type(exc).__name__}: {exc} (not one of DECODE_ERRORS)"
        ) from exc
    # decoded without error: acceptable only if the archive's own checks can notice
    count = sum(b.num_rows for b in batches)
    assert all(isinstance(b, pa.RecordBatch) for b in batches), f"{fmt.name}: {what}"
    if count == rows and all(b.schema.equals(schema) for b in batches) and what.startswith(
        ("empty", "truncated", "last byte")
    ):
        raise AssertionError(f"{fmt.name}: a {what} decodes as the complete member")


def check_large_values(fmt: DataFormat) -> None:
    """Values of several MiB (a row larger than any sensible read block) among small rows."""
    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("data", pa.large_binary())])
    small = [f"row {i}" for i in range(20_000)]
    texts = ["x" * 3_000_000, 'q"\n' * 1_000_000, *small, "\u00e9" * 1_500_000]
    data = [bytes(range(256)) * 8192, None] + [b"z"] * len(small) + [b""]
    table = pa.table([pa.array(range(len(texts)), pa.int64()), pa.array(texts),
                      pa.array(data, pa.large_binary())], schema=schema)
    roundtrip(fmt, table, 4_000, context="large values")


def compressible_table(rows: int = 100_000, value_bytes: int = 5_000_000) -> pa.Table:
    """A table that compresses extremely well: one value of ``value_bytes`` repeated
    characters, then identical rows."""
    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("data", pa.large_binary())])
    return pa.table([
        pa.array([7] * rows, pa.int64()),
        pa.array(["a" * value_bytes] + ["the same text"] * (rows - 1)),
        pa.array([b"\x00" * 64] * rows, pa.large_binary()),
    ], schema=schema)


def check_compressible_values(fmt: DataFormat) -> None:
    """Data that compresses thousands of times (:func:`compressible_table`) reads back: a
    reader's defences against decompression bombs must not refuse what its writer writes."""
    roundtrip(fmt, compressible_table(), 10_000, context="highly compressible")


def check_format(fmt: DataFormat) -> None:
    """The whole compliance suite except :func:`check_bounded_memory`."""
    assert fmt.name and fmt.extension, "a format needs a name and an extension"
    check_empty_members(fmt)
    check_edge_values(fmt)
    check_many_rows(fmt)
    check_large_values(fmt)
    check_compressible_values(fmt)
    check_corrupt_input(fmt)


# ---------------------------------------------------------------------------------------------
# bounded memory
# ---------------------------------------------------------------------------------------------


MEMORY_SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("name", pa.string()),
    ("amount", pa.string()),
    ("price", pa.float64()),
    ("ratio", pa.float32()),
    ("flag", pa.bool_()),
    ("created", pa.timestamp("us", tz="UTC")),
    ("day", pa.date32()),
    ("blob", pa.large_binary()),
    ("note", pa.string()),
])


def memory_batch(start: int, rows: int) -> pa.RecordBatch:
    """Rows ``start .. start+rows`` of the deterministic table of :func:`check_bounded_memory`."""
    ids = np.arange(start, start + rows, dtype=np.int64)
    names = pa.array([f"customer {i:012d} of the shop" for i in ids.tolist()])
    amounts = pa.array([f"{i // 100}.{i % 100:02d}" for i in ids.tolist()])
    note_mask = ids % 3 == 0
    notes = pa.array([f"note\t{i}\n" for i in ids.tolist()], mask=note_mask)
    blobs = pa.array([int(i).to_bytes(8, "little") * 2 for i in ids.tolist()], pa.large_binary())
    return pa.RecordBatch.from_arrays([
        pa.array(ids),
        names,
        amounts,
        pa.array(ids * 0.25 - 1000.125),
        pa.array((ids % 1000).astype(np.float32) / np.float32(7)),
        pa.array(ids % 2 == 0),
        pa.array(1_600_000_000_000_000 + ids * 1_000_003, pa.timestamp("us", tz="UTC")),
        pa.array((ids % 40000 - 20000).astype(np.int32), pa.date32()),
        blobs,
        notes,
    ], schema=MEMORY_SCHEMA)


def _memory_batches(rows: int, batch_rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, rows, batch_rows):
        yield memory_batch(start, min(batch_rows, rows - start))


_POOLS: list[pa.MemoryPool] = []


@dataclass
class MemoryReport:
    rows: int
    data_bytes: int
    member_bytes: int
    peak_sampled: int
    peak_pool: int


def check_bounded_memory(fmt: DataFormat, rows: int = 300_000, batch_rows: int = 10_000,
                         max_fraction: float = 0.2) -> MemoryReport:
    """Stream ``rows`` rows of :data:`MEMORY_SCHEMA` through a member, batch by batch, and back.

    Arrow allocations go to a proxy memory pool for the duration; its peak and
    ``pa.total_allocated_bytes()`` sampled after every write and every batch read must stay
    below ``max_fraction`` of the Arrow size of the whole data. The data read back is compared
    with the data written, slice by slice.
    """
    data_bytes = sum(b.nbytes for b in _memory_batches(rows, batch_rows))
    previous = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(previous)
    pa.set_memory_pool(pool)
    samples = [0]
    try:
        with tempfile.TemporaryFile(prefix="dbcrate-format-check-") as spool:
            writer = fmt.open_writer(spool, MEMORY_SCHEMA, 3)
            for batch in _memory_batches(rows, batch_rows):
                writer.write(batch)
                del batch
                samples.append(pa.total_allocated_bytes())
            writer.close()
            member_bytes = spool.tell()
            spool.seek(0)
            expected = _Expected(rows, batch_rows)
            count = 0
            for batch in fmt.read(spool, MEMORY_SCHEMA):
                samples.append(pa.total_allocated_bytes())
                assert batch.schema.equals(MEMORY_SCHEMA), f"{fmt.name}: wrong batch schema"
                expected.check(batch, fmt.name)
                count += batch.num_rows
                del batch
        peak_pool = pool.max_memory()
    finally:
        pa.set_memory_pool(previous)
        gc.collect()
        if pool.bytes_allocated():
            # buffers still alive are freed through this pool later: it must outlive them
            _POOLS.append(pool)
    assert count == rows, f"{fmt.name}: read {count} rows of {rows}"
    report = MemoryReport(rows, data_bytes, member_bytes, max(samples), peak_pool)
    limit = data_bytes * max_fraction
    assert report.peak_sampled < limit and report.peak_pool < limit, (
        f"{fmt.name}: Arrow memory peaked at {report.peak_sampled:,} bytes sampled / "
        f"{report.peak_pool:,} bytes in the pool for {data_bytes:,} bytes of data "
        f"(limit {limit:,.0f})"
    )
    return report


class _Expected:
    """The written data regenerated slice by slice, to compare with batches of any size."""

    def __init__(self, rows: int, batch_rows: int) -> None:
        self._batches = _memory_batches(rows, batch_rows)
        self._current: pa.RecordBatch | None = None
        self._offset = 0

    def _take(self, n: int) -> pa.Table:
        parts = []
        while n:
            if self._current is None or self._offset >= self._current.num_rows:
                self._current = next(self._batches)
                self._offset = 0
            take = min(n, self._current.num_rows - self._offset)
            parts.append(self._current.slice(self._offset, take))
            self._offset += take
            n -= take
        return pa.Table.from_batches(parts, schema=MEMORY_SCHEMA)

    def check(self, batch: pa.RecordBatch, name: str) -> None:
        expected = self._take(batch.num_rows)
        assert_same_table(expected, pa.Table.from_batches([batch]), f"{name} (bounded memory)")


__all__ = [
    "DECODE_ERRORS",
    "EDGE_VALUES",
    "MEMORY_SCHEMA",
    "NASTY_NAMES",
    "MemoryReport",
    "assert_same_column",
    "assert_same_table",
    "check_bounded_memory",
    "check_compressible_values",
    "check_corrupt_input",
    "check_edge_values",
    "check_empty_members",
    "check_format",
    "check_large_values",
    "check_many_rows",
    "compressible_table",
    "edge_schema",
    "edge_table",
    "memory_batch",
    "read_member",
    "roundtrip",
    "write_member",
]
