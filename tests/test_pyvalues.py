"""Driver values -> Arrow (dbcrate.dialects.pyvalues): the vectorized conversions give exactly
what the per-value converters give, or step aside for them (which also name the bad row); and
the SQLite dialect's Arrow-native (ADBC) reader reads exactly what the sqlite3 path reads."""

from __future__ import annotations

import datetime as dt
import math
import random
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbcrate.dialects import pyvalues
from dbcrate.errors import DbcrateError
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column
from dbcrate.model.values import decimal_fits, decimal_misfits, decimal_text, significant_digits


def _column(kind: str) -> Column:
    return Column(name="c", type=LogicalType(kind), engine_type="", nullable=True)


def _slow(values: list[Any], col: Column) -> pa.Array | str:
    """The per-value path alone (what column_to_arrow did before the fast paths)."""
    try:
        converted = pyvalues._each(values, pyvalues.CONVERTERS[col.type.kind])
        return pa.array(converted, type=col.type.arrow)
    except (pyvalues.BadValue, pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        return f"refused: {exc}"


def _same(values: list[Any], kind: str) -> bool:
    """The fast path, when it answers, answers as the slow one; returns whether it answered."""
    col = _column(kind)
    fast = pyvalues._fast_array(values, col)
    if fast is None:
        return False
    slow = _slow(values, col)
    assert not isinstance(slow, str), (kind, values[:5], slow)
    assert fast.type == slow.type, (kind, fast.type, slow.type)
    if pa.types.is_floating(fast.type):
        for a, b in zip(fast.to_pylist(), slow.to_pylist()):
            assert a == b or (a != a and b != b) or (a is b is None), (kind, a, b)
            assert a is None or math.copysign(1, a) == math.copysign(1, b), (kind, a, b)
    else:
        assert fast.equals(slow), (kind, fast.to_pylist()[:5], slow.to_pylist()[:5])
    return True


def _random_float(rng: random.Random) -> float:
    choice = rng.random()
    if choice < 0.3:  # any bit pattern
        value: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        return value
    if choice < 0.7:  # money-like
        return round(rng.uniform(-1e6, 1e6), rng.randint(0, 4))
    exponent = rng.randint(-8, 18)
    return rng.choice([-1, 1]) * rng.randint(1, 10**rng.randint(1, 17)) * 10.0**exponent


def test_decimal_floats_match_decimal_text() -> None:
    rng = random.Random(7)
    edge = [0.0, -0.0, 12.0, 12.5, 0.1, 1e-4, 9.99e-5, 1e-5, 1e15, 1e15 - 1, 999999999999999.9,
            1e16, 123456789012345.6, 0.30000000000000004, 5e-324, 1.7976931348623157e308,
            float("inf"), float("-inf"), float("nan"), 2.5e-5, -1234.5678]
    answered = 0
    for _ in range(200):
        values: list[Any] = [_random_float(rng) for _ in range(rng.randint(1, 300))]
        answered += _same(values, "decimal")
        # floats alone (all fast-path eligible or not), texts compared one by one
        texts = pyvalues.float_decimal_texts(pa.array(values, pa.float64()))
        assert texts.to_pylist() == [decimal_text(v) for v in values]
    for value in edge:
        _same([value], "decimal")
        assert pyvalues.float_decimal_texts(pa.array([value], pa.float64())).to_pylist() == [decimal_text(value)], value
    assert answered == 200


def test_decimal_mixed_ints_and_floats() -> None:
    values: list[Any] = [12, 12.0, 12.5, None, -3, 0, -0.0, 2**62, 0.001]
    assert _same(values, "decimal")
    assert pyvalues._fast_array(values, _column("decimal")).to_pylist() == [
        "12", "12.0", "12.5", None, "-3", "0", "-0.0", str(2**62), "0.001"]
    assert not _same([2**64, 1.5], "decimal")  # beyond int64: the per-value path
    assert not _same([True, 1], "decimal")


@pytest.mark.parametrize(("kind", "values"), [
    ("int64", [1, 2.0]), ("int64", [1, True]), ("int64", [1, "2"]), ("int8", [1, 300]),
    ("uint64", [-1]), ("float64", [1.5, 2]), ("string", ["a", b"b"]), ("binary", [b"a", "b"]),
    ("boolean", [0, 1, 2]), ("boolean", [True]), ("json", ["{}", 1]),
    ("date", ["2021-02-29"]), ("date", ["0000-01-01"]), ("date", ["20210601"]),
    ("date", [dt.datetime(2021, 6, 1)]), ("date", ["2021-06-01 10:00:00"]),
    ("datetime", ["2021-06-01 24:00:00"]), ("datetime", ["2021-06-01T10:00:00+01:00"]),
    ("datetime", ["2021-06-01 10:00:00.1234567"]), ("datetime", ["2021-06-01"]),
    ("datetime", ["2021-06-01 10:00"]), ("timestamptz", ["2021-06-31 10:00:00"]),
    ("time", ["24:00:00"]), ("time", ["10:00"]), ("time", [dt.timedelta(hours=1)]),
    ("uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
])
def test_unusual_values_take_the_exact_path(kind: str, values: list[Any]) -> None:
    assert not _same(values, kind)


@pytest.mark.parametrize(("kind", "values"), [
    ("int64", [1, None, -(2**63), 2**63 - 1]), ("int8", [-128, 127, None]), ("uint64", [2**64 - 1]),
    ("float64", [1.5, None, -0.0, float("inf")]), ("float32", [0.1, 3.4028234663852886e38]),
    ("string", ["a", None, "", "\x00", "\U0001f600"]), ("json", ['{"a": 1}']), ("other", ["x"]),
    ("binary", [b"", None, bytes(range(256))]), ("boolean", [0, 1, None]),
    ("date", ["2021-06-01", None, "0001-01-01", "9999-12-31", "2020-02-29"]),
    ("date", [dt.date(2021, 6, 1)]),
    ("datetime", ["2021-06-01 10:00:00", "2021-06-01T10:00:00.5", "2021-06-01 10:00:00.123456",
                  "2021-06-01T23:59:59Z", "2021-06-01 00:00:00+00:00", None]),
    ("timestamptz", ["2021-06-01 10:00:00+00:00", "0001-01-01 00:00:00", "9999-12-31T23:59:59.999999"]),
    ("datetime", [dt.datetime(2021, 6, 1, 10, 0, 0, 5)]),
    ("time", ["00:00:00", "23:59:59.999999", "12:30:00.5", None]), ("time", [dt.time(1, 2, 3)]),
    ("int64", [None, None]), ("date", [None]),
])
def test_usual_values_take_the_fast_path(kind: str, values: list[Any]) -> None:
    assert _same(values, kind)


def _read_all(path: Path, monkeypatch: pytest.MonkeyPatch, arrow: bool) -> dict[str, Any]:
    """Every table of a SQLite file through SQLite.read_table, with or without ADBC: the
    batches as one table each, or the error (type and message) a table gives."""
    from dbcrate.connect import open_engine
    from dbcrate.dialects import sqlite as sqlite_dialect

    if not arrow:
        monkeypatch.setattr(sqlite_dialect, "_adbc", None)
    engine, dialect, _ = open_engine(f"sqlite:///{path}", read_only=True)
    out: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            dialect.begin_snapshot(conn)
            for name in dialect.list_tables(conn):
                try:
                    table = dialect.reflect(conn, name)
                    schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
                    batches = list(dialect.read_table(conn, table, 4096))
                    out[name] = pa.Table.from_batches(batches, schema=schema)
                except DbcrateError as exc:
                    out[name] = (type(exc).__name__, exc.message)
    finally:
        engine.dispose()
        monkeypatch.undo()
    return out


def test_sqlite_arrow_reader_reads_what_sqlite3_reads(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The ADBC reader gives exactly the standard path's batches, or leaves the table to it."""
    from dbcrate.dialects import sqlite as sqlite_dialect

    path = tmp_path / "kinds.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE kinds (id INTEGER PRIMARY KEY, i INTEGER, b BOOLEAN, f REAL, "
                 "d NUMERIC(12, 2), n NUMERIC, t TEXT, j JSON, bl BLOB, day DATE, ts DATETIME, "
                 "tz TIMESTAMPTZ, tm TIME, c VARCHAR(10))")
    rng = random.Random(5)
    rows = []
    for i in range(6000):
        late = i >= 3000  # the first rows are NULL: ADBC must not infer int64 from them
        rows.append((
            i, rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randint(-10**6, 10**6)]) if late else None,
            rng.choice([0, 1]) if late else None,
            rng.choice([0.1, -0.0, 1e308, float("inf"), 5e-324, rng.random(), 3]) if late else None,
            rng.choice([12, "12.50", 12.5, "0.01", 10**15, 1e20, 1.5e-7, -3]) if late else None,
            rng.choice([1, 2.5, 2**62]) if late else None,
            rng.choice(["", "x", "\x00a", "é😀", "a\nb"]) if late else None,
            rng.choice(['{"a": 1}', "[]"]) if late else None,
            rng.choice([b"", b"\x00\xff", bytes(range(256))]) if late else None,
            rng.choice(["2021-06-01", "0001-01-01", "9999-12-31"]) if late else None,
            rng.choice(["2021-06-01 10:00:00", "2021-06-01T10:00:00.5", "2021-06-01 10:00:00Z"])
            if late else None,
            rng.choice(["2021-06-01 10:00:00+00:00", "2021-06-01 10:00:00.000001"]) if late else None,
            rng.choice(["10:00:00", "23:59:59.999999"]) if late else None,
            rng.choice(["abc", None]),
        ))
    conn.executemany("INSERT INTO kinds VALUES (" + ", ".join("?" * 14) + ")", rows)
    # values of another storage class: from the first rows on (ADBC types the columns
    # otherwise: sqlite3 reads the table), or after ADBC's first batch (sqlite3 takes over from
    # that row on: ADBC refuses it in an int64 column, the query flags it in the others)
    conn.execute("CREATE TABLE odd_int (a INTEGER)")
    conn.executemany("INSERT INTO odd_int VALUES (?)", [(1,), ("x",), (2,)])
    conn.execute("CREATE TABLE odd_text (a TEXT)")
    conn.executemany("INSERT INTO odd_text VALUES (?)", [("x",), (7,), (b"\x01",)])
    late = [(i, i, f"t{i}", '{"a": 1}', i + 0.5, 12.5, b"b") for i in range(5000)]
    columns = "(id INTEGER PRIMARY KEY, i INTEGER, t TEXT, j JSON, f REAL, d NUMERIC, bl BLOB)"
    conn.execute(f"CREATE TABLE late_int {columns}")
    conn.executemany("INSERT INTO late_int VALUES (?, ?, ?, ?, ?, ?, ?)",
                     [*late, (5000, "x", "t", "{}", 1.0, 1, b"")])
    for name, column, value in [("late_text", "t", 7), ("late_json", "j", 1.5),
                                ("late_real", "f", "abc"), ("late_decimal", "d", "NaN"),
                                ("late_blob", "bl", "text"), ("late_text_blob", "t", b"\x01")]:
        conn.execute(f"CREATE TABLE {name} {columns}")
        conn.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?)", late)
        conn.execute(f"UPDATE {name} SET {column} = ? WHERE id = 4500", (value,))
    conn.execute("CREATE TABLE bad_date (id INTEGER PRIMARY KEY, d DATE)")
    conn.executemany("INSERT INTO bad_date VALUES (?, ?)", [(1, "2021-06-01"), (2, "2021-02-30")])
    conn.execute("CREATE TABLE odd_date (d DATE)")
    conn.executemany("INSERT INTO odd_date VALUES (?)", [("2021-06-01",), ("2021-6-2",)])
    conn.execute("CREATE TABLE small_int (a INT8)")  # declared INT8: int64 in SQLite
    conn.execute("CREATE TABLE untyped (a, b)")
    conn.executemany("INSERT INTO untyped VALUES (?, ?)", [(1, 1.5), (2, 2), (None, None)])
    conn.execute("CREATE TABLE empty (a TEXT)")
    conn.commit()
    conn.close()

    used: list[str] = []
    start = sqlite_dialect._ArrowReader.start

    def counting(self: Any) -> Any:
        started = start(self)
        if started is not None:
            used.append(self._table.name)
        return started

    monkeypatch.setattr(sqlite_dialect._ArrowReader, "start", counting)
    arrow = _read_all(path, monkeypatch, arrow=True)
    standard = _read_all(path, monkeypatch, arrow=False)
    assert set(arrow) == set(standard)
    for name, expected in standard.items():
        got = arrow[name]
        if isinstance(expected, tuple):
            assert got == expected, name
        else:
            assert got.schema.equals(expected.schema), name
            assert got.equals(expected), (name, got.slice(3000, 3).to_pylist(),
                                          expected.slice(3000, 3).to_pylist())
    assert standard["bad_date"][0] == "SourceValueError"
    assert standard["late_int"][0] == "SourceValueError"  # row id=5000
    assert standard["late_json"].num_rows == 5000  # a number in a JSON column is converted
    assert set(used) >= {"kinds", "bad_date", "odd_date", "untyped", "late_int", "late_text",
                         "late_json", "late_real", "late_decimal", "late_blob", "late_text_blob"}
    assert not set(used) & {"odd_int", "odd_text"}


def test_sqlite_arrow_reader_is_not_used_in_wal_mode(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A WAL reader does not block writers: a second connection could see a later commit."""
    from dbcrate.dialects import sqlite as sqlite_dialect

    path = tmp_path / "wal.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (a INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.commit()
    conn.close()
    monkeypatch.setattr(sqlite_dialect._ArrowReader, "start",
                        lambda self: pytest.fail("ADBC used in WAL mode"))
    assert _read_all(path, monkeypatch, arrow=True)["t"].num_rows == 100


def test_random_temporal_texts() -> None:
    rng = random.Random(3)
    for kind in ("date", "time", "datetime", "timestamptz"):
        for _ in range(300):
            year = rng.choice([rng.randint(0, 9999), 2021])
            text = f"{year:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
            clock = (f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
                     + rng.choice(["", "." + "7" * rng.randint(1, 8)]))
            if kind == "time":
                text = clock
            elif kind != "date":
                text += rng.choice("T ") + clock + rng.choice(["", "Z", "+00:00", "+01:00", "-00:00"])
            _same([text], kind)


# --- the preflight's decimal check: the Arrow kernels answer as the per-value functions ---

_DECIMAL_TEXTS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False).map(decimal_text),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(decimal_text),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "0", "-0", "0.000", "1000", "000.0100",
                     "1E+3", "12.", ".5", "", "-", "1e-7", " 1", "0x10"]),
    st.text(alphabet="0123456789.-eE+", max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), _DECIMAL_TEXTS), max_size=20),
    precision=st.one_of(st.none(), st.integers(1, 40)),
    scale=st.one_of(st.none(), st.integers(0, 20)),
    significant=st.one_of(st.none(), st.integers(1, 30)),
)
def test_decimal_misfits_match_the_per_value_check(
    texts: list[str | None], precision: int | None, scale: int | None, significant: int | None
) -> None:
    expected = [
        text is not None
        and text not in ("NaN", "Infinity", "-Infinity")
        and (
            ((precision is not None or scale is not None)
             and not decimal_fits(text, precision, scale))
            or (significant is not None and significant_digits(text) > significant)
        )
        for text in texts
    ]
    got = decimal_misfits(pa.array(texts, pa.string()), precision, scale, significant)
    assert got.tolist() == expected
