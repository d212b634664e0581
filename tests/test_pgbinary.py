"""PostgreSQL binary COPY (dbcrate.dialects.pgbinary): the same batch loaded through binary
COPY and through CSV COPY gives the same values, compared as the server's own text."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbcrate.dialects import dialect_for, pgbinary
from dbcrate.errors import SourceValueError
from dbcrate.model.logical import DATE_NEG_INFINITY, DATE_POS_INFINITY, TS_NEG_INFINITY, TS_POS_INFINITY
from dbcrate.model.schema import Table

from conftest import Databases

# (column DDL, Arrow type, values): every receive function that has an encoder
COLUMNS: list[tuple[str, str, pa.DataType, list[Any]]] = [
    ("i2", "smallint", pa.int16(), [0, -32768, 32767, None]),
    ("i2_from_i8", "smallint", pa.int8(), [0, -128, 127, None]),
    ("i4", "integer", pa.int32(), [0, -2**31, 2**31 - 1, None]),
    ("i8", "bigint", pa.int64(), [0, -2**63, 2**63 - 1, None]),
    ("f4", "real", pa.float32(), [0.1, float("nan"), float("-inf"), None]),
    ("f8", "double precision", pa.float64(), [-0.0, 1e308, 5e-324, None]),
    ("b", "boolean", pa.bool_(), [True, False, None, True]),
    ("t", "text", pa.string(), ["", "héllo ☃ 𝄞", "a\nb\tc\\d,\"e'", None]),
    ("v", "varchar(20)", pa.string(), ["x", "", None, "y" * 20]),
    ("c", "char(3)", pa.string(), ["ab", "abc", None, ""]),
    ("j", "json", pa.string(), ['{"a": [1, 2.50, null]}', "[]", None, '"x"']),
    ("jb", "jsonb", pa.string(), ['{"b": 1, "a": 2}', "null", None, '{"é": "☃"}']),
    ("u", "uuid", pa.string(), ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None,
                                "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
                                "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13}"]),
    ("n", "numeric(12,2)", pa.string(), ["0.00", "-1234567890.12", None, "5.50"]),
    ("nu", "numeric", pa.string(), ["NaN", "-Infinity", "1e+16", "-0.000000000000000000001"]),
    ("nbig", "numeric", pa.string(), ["1" * 120 + "." + "9" * 50, "Infinity", None, "-0"]),
    ("nint", "numeric(20,0)", pa.uint64(), [0, 2**64 - 1, None, 12345]),
    ("by", "bytea", pa.large_binary(), [b"", b"\x00\xff\\x", None, bytes(range(256)) * 20]),
    ("d", "date", pa.date32(), [0, DATE_POS_INFINITY, DATE_NEG_INFINITY, -800_000]),
    ("ts", "timestamp", pa.timestamp("us"), [0, TS_POS_INFINITY, None, -62_198_755_200_000_000]),
    ("tz", "timestamptz", pa.timestamp("us", tz="UTC"),
     [1_700_000_000_123_456, TS_NEG_INFINITY, None, -1]),
    ("tm", "time", pa.time64("us"), [0, 86_399_999_999, None, 43_200_000_001]),
    ("mood", "mood", pa.string(), ["sad", None, "happy", "ok"]),
    ("pos", "positive", pa.int32(), [1, None, 2, 3]),
]


@pytest.fixture()
def pg(dbs: Databases) -> Iterator[sa.Engine]:
    engine = sa.create_engine(dbs.new("postgresql"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        conn.exec_driver_sql("CREATE DOMAIN positive AS integer CHECK (VALUE > 0)")
    yield engine
    engine.dispose()


def _load_both(engine: sa.Engine, ddl: list[str], batch: pa.RecordBatch) -> tuple[list[Any], list[Any]]:
    """Load ``batch`` into two tables of the same columns, through binary and through CSV;
    returns both tables' rows as the server prints them."""
    dialect = dialect_for(engine)
    out = []
    for name, binary in (("via_binary", True), ("via_csv", False)):
        columns = ", ".join(f'"{n}" {t}' for n, t in zip(batch.schema.names, ddl))
        table = Table(name=name, columns=[])
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {name} (_row serial, {columns})")
            reflected = dialect.reflect(conn, name)
            table = Table(name=name, columns=[c for c in reflected.columns if c.name != "_row"])
            dialect.binary_copy = binary
            try:
                raw = conn.connection.driver_connection
                planned = dialect._binary_encoders(raw, f'public."{name}"', table, batch)
                assert (planned is not None) == binary, "the binary path was not taken"
                dialect.load(conn, table, iter([batch]))
            finally:
                dialect.binary_copy = True
        with engine.connect() as conn:
            texts = ", ".join(f'"{n}"::text' for n in batch.schema.names)
            out.append([tuple(r) for r in conn.exec_driver_sql(
                f"SELECT {texts} FROM {name} ORDER BY _row")])
    return out[0], out[1]


def test_every_encoder_loads_what_csv_loads(pg: sa.Engine) -> None:
    batch = pa.RecordBatch.from_arrays(
        [pa.array(values, arrow) for _, _, arrow, values in COLUMNS],
        names=[name for name, *_ in COLUMNS])
    binary, csv = _load_both(pg, [ddl for _, ddl, _, _ in COLUMNS], batch)
    assert _debug_diff(binary, csv) == []
    assert binary[0][COLUMNS.index(next(c for c in COLUMNS if c[0] == "nu"))] == "NaN"
    assert len(binary) == 4


def test_no_nulls_takes_the_matrix_path(pg: sa.Engine) -> None:
    fixed = [c for c in COLUMNS if c[2] in (pa.int64(), pa.float64(), pa.date32())]
    batch = pa.RecordBatch.from_arrays(
        [pa.array([v for v in values if v is not None][:3], arrow) for _, _, arrow, values in fixed],
        names=[name for name, *_ in fixed])
    binary, csv = _load_both(pg, [ddl for _, ddl, _, _ in fixed], batch)
    assert binary == csv


def test_columns_without_an_encoder_use_csv() -> None:
    assert pgbinary.plan_encoders([pa.string(), pa.int64()], ["interval_in", "int8recv"]) is None
    assert pgbinary.plan_encoders([pa.float32()], ["float8recv"]) is None  # no silent widening
    assert pgbinary.plan_encoders([pa.string()], [None]) is None
    assert pgbinary.plan_encoders([pa.string()], ["array_recv"]) is None
    assert pgbinary.plan_encoders([pa.int64()], ["int8recv"]) is not None


def test_a_bad_value_is_a_clear_error(pg: sa.Engine) -> None:
    dialect = dialect_for(pg)
    with pg.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bad (n numeric)")
        table = dialect.reflect(conn, "bad")
    batch = pa.RecordBatch.from_arrays([pa.array(["1.5", "twelve"])], names=["n"])
    with pytest.raises(SourceValueError, match=r"'bad'.*twelve"), pg.begin() as conn:
        dialect.load(conn, table, iter([batch]))


decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(lambda d: format(d, "f")),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**14, max_value=10**14,
                places=2).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),  # exponent notation too
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "0.0000", "10000", "9999.9999"]),
    st.none(),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(decimals, min_size=1, max_size=40))
def test_decimals_property(pg: sa.Engine, values: list[str | None]) -> None:
    values = [v for v in values if v is None or abs(decimal.Decimal(v).adjusted()) < 1000]
    if not values:
        return
    batch = pa.RecordBatch.from_arrays([pa.array(values, pa.string())], names=["n"])
    with pg.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS via_binary, via_csv")
    binary, csv = _load_both(pg, ["numeric"], batch)
    assert binary == csv


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ints=st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=30),
       stamps=st.lists(st.one_of(st.none(), st.integers(-2**62, 2**62)), min_size=1, max_size=30),
       texts=st.lists(st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs"],
                                                                  blacklist_characters="\x00"))),
                      min_size=1, max_size=30))
def test_values_property(pg: sa.Engine, ints: list[int | None], stamps: list[int | None],
                         texts: list[str | None]) -> None:
    n = min(len(ints), len(stamps), len(texts))
    # timestamps outside PostgreSQL's range fail in both paths: keep them inside it
    stamps = [None if s is None else max(-210_000_000_000_000_000, min(s, 9_000_000_000_000_000_000))
              for s in stamps]
    batch = pa.RecordBatch.from_arrays(
        [pa.array(ints[:n], pa.int64()), pa.array(stamps[:n], pa.timestamp("us", tz="UTC")),
         pa.array(texts[:n], pa.string()), pa.array(texts[:n], pa.string()).cast(pa.large_binary())],
        names=["i", "ts", "t", "b"])
    with pg.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS via_binary, via_csv")
    binary, csv = _load_both(pg, ["bigint", "timestamptz", "text", "bytea"], batch)
    assert binary == csv


def test_calendar_matches_postgresql_before_the_common_era(pg: sa.Engine) -> None:
    """dbcrate 0.2.0 and older put dates before 1 BC (astronomical year -1) one day or more
    off PostgreSQL's proleptic Gregorian calendar; the binary path exposed it."""
    from dbcrate.model import values

    years = [1, 2, 3, 4, 5, 99, 100, 101, 222, 401, 4713]
    with pg.connect() as conn:
        for year in years:
            for month, day in ((1, 1), (2, 28), (3, 1), (12, 31)):
                text = f"{year:04d}-{month:02d}-{day:02d} BC"
                days = conn.exec_driver_sql(f"SELECT '{text}'::date - '1970-01-01'::date").scalar()
                assert values.days_from_civil(1 - year, month, day) == days, text
                assert values.format_pg_date(days) == text


def _debug_diff(binary: list[Any], csv: list[Any]) -> list[Any]:
    return [(r, COLUMNS[c][0], b[c], v[c]) for r, (b, v) in enumerate(zip(binary, csv))
            for c in range(len(b)) if b[c] != v[c]]


_RECEIVES = {"smallint": "int2recv", "integer": "int4recv", "bigint": "int8recv",
             "real": "float4recv", "double precision": "float8recv", "boolean": "boolrecv",
             "text": "textrecv", "varchar(20)": "varcharrecv", "char(3)": "bpcharrecv",
             "json": "json_recv", "jsonb": "jsonb_recv", "uuid": "uuid_recv",
             "bytea": "bytearecv", "date": "date_recv", "timestamp": "timestamp_recv",
             "timestamptz": "timestamptz_recv", "time": "time_recv", "mood": "enum_recv",
             "positive": "int4recv"}


def _row_bytes(batch: pa.RecordBatch, encoders: list[pgbinary.FieldEncoder]) -> bytes:
    return b"".join(bytes(part) for part in pgbinary.encode_row(batch, encoders))


def test_a_row_in_pieces_is_the_row_encoded_whole() -> None:
    """encode_row (a huge row, its values sent as views) gives encode_batch's bytes."""
    batch = pa.RecordBatch.from_arrays(
        [pa.array(values, arrow) for _, _, arrow, values in COLUMNS],
        names=[name for name, *_ in COLUMNS])
    encoders = pgbinary.plan_encoders(
        [arrow for _, _, arrow, _ in COLUMNS],
        [_RECEIVES.get(ddl, "numeric_recv") for _, ddl, _, _ in COLUMNS])
    assert encoders is not None
    for row in range(batch.num_rows):  # (a slice: the columns' offsets are not 0)
        one = batch.slice(row, 1)
        assert _row_bytes(one, encoders) == bytes(pgbinary.encode_batch(one, encoders))


@given(texts=st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=8),
       blobs=st.lists(st.one_of(st.none(), st.binary()), min_size=1, max_size=8),
       large=st.booleans(), at=st.integers(0, 7))
def test_row_pieces_property(texts: list[str | None], blobs: list[bytes | None], large: bool,
                             at: int) -> None:
    n = min(len(texts), len(blobs))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(texts[:n], pa.large_string() if large else pa.string()),
         pa.array(blobs[:n], pa.large_binary() if large else pa.binary())], names=["t", "b"])
    encoders = pgbinary.plan_encoders([batch.schema.field(0).type, batch.schema.field(1).type],
                                      ["textrecv", "bytearecv"])
    assert encoders is not None
    one = batch.slice(at % n, 1)
    assert _row_bytes(one, encoders) == bytes(pgbinary.encode_batch(one, encoders))


def test_a_value_larger_than_a_piece_loads_what_csv_loads(pg: sa.Engine) -> None:
    from dbcrate.dialects.postgresql import BINARY_PIECE_BYTES

    big = "☃" * (BINARY_PIECE_BYTES // 2)  # 3 bytes each: one row over a piece's size
    batch = pa.RecordBatch.from_arrays(
        [pa.array([1, 2], pa.int64()), pa.array([big, None], pa.string()),
         pa.array([bytes(range(256)) * (BINARY_PIECE_BYTES // 200), b""], pa.large_binary())],
        names=["id", "t", "by"])
    binary, csv = _load_both(pg, ["bigint", "text", "bytea"], batch)
    assert binary == csv and binary[0][1] == big
