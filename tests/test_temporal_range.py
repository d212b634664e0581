"""The archive's temporal range at its edges, on a real PostgreSQL (docs/FORMAT.md, "Dates and
timestamps").

A ``timestamp(us)`` column holds int64 microseconds since 1970 and keeps 2^63-1 / -2^63 for
PostgreSQL's ``infinity`` / ``-infinity``. PostgreSQL's finite timestamps run from 4714-11-24 BC
(far above -2^63) to 294276-12-31 23:59:59.999999, which is *past* 2^63-1: the finite instant
294247-01-10 04:00:54.775807 equals the 'infinity' sentinel, and the 30 years after it overflow
int64. Those values must be refused by the dump (dbcrate 0.2.0 and older archived the first one
as 'infinity'); everything else PostgreSQL accepts must round trip exactly, and the real
infinities too. PostgreSQL's dates (4714-11-24 BC .. 5874897-12-31) lie well inside the date32
sentinels (+-2^31 days), so no date collides.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.dialects import dialect_for, pgbinary
from dbcrate.dialects.postgresql import PostgreSQL
from dbcrate.errors import SourceValueError
from dbcrate.model import values
from dbcrate.model.logical import (
    DATE_MAX_FINITE,
    DATE_MIN_FINITE,
    DATE_NEG_INFINITY,
    DATE_POS_INFINITY,
    TS_MAX_FINITE,
    TS_MIN_FINITE,
    TS_NEG_INFINITY,
    TS_POS_INFINITY,
)
from dbcrate.model.schema import Table
from dbcrate.model.temporal import MemberDecodeError, parse_date, parse_timestamp

from conftest import Databases, engine_of

#: the finite PostgreSQL instant that is exactly 2^63-1 microseconds after 1970
AT_SENTINEL = "294247-01-10 04:00:54.775807"
#: the last instant the archive holds
LAST_FINITE = "294247-01-10 04:00:54.775806"
#: finite PostgreSQL timestamps without an encoding: the sentinel itself, the next
#: microsecond (int64 overflow), and PostgreSQL's own last instant
UNSTORABLE = [AT_SENTINEL, "294247-01-10 04:00:54.775808", "294276-12-31 23:59:59.999999"]

#: (column, type, PostgreSQL input texts): infinities, the finite edges, NULL, an ordinary value
EDGE_COLUMNS = [
    ("ts", "timestamp", ["infinity", "-infinity", LAST_FINITE, "4714-11-24 00:00:00 BC", None,
                         "2021-06-01 12:00:00.5"]),
    ("tz", "timestamptz", ["-infinity", "infinity", LAST_FINITE + "+00",
                           "4714-11-24 00:00:00+00 BC", "2021-06-01 12:00:00+02", None]),
    ("d", "date", ["infinity", "-infinity", "5874897-12-31", "4714-11-24 BC", None, "2021-06-01"]),
]
#: what the archive holds for EDGE_COLUMNS, as integers
EDGE_ENCODED = {
    "ts": [TS_POS_INFINITY, TS_NEG_INFINITY, TS_MAX_FINITE, values.PG_TS_MIN, None,
           1622548800500000],
    "tz": [TS_NEG_INFINITY, TS_POS_INFINITY, TS_MAX_FINITE, values.PG_TS_MIN, 1622541600000000,
           None],
    "d": [DATE_POS_INFINITY, DATE_NEG_INFINITY, values.PG_DATE_MAX, values.PG_DATE_MIN, None,
          18779],
}


@pytest.fixture()
def pg(dbs: Databases) -> Iterator[sa.Engine]:
    engine = sa.create_engine(dbs.new("postgresql"))
    yield engine
    engine.dispose()


def _create(url: str, table: str, columns: list[tuple[str, str, list[str | None]]]) -> None:
    """``table`` with an ``id`` key and ``columns``, rows from the texts (bound, cast by the
    server, so PostgreSQL parses them as a user's INSERT would)."""
    eng = engine_of(url)
    n = len(columns[0][2])
    with eng.connect() as c:
        c.exec_driver_sql("SET TIME ZONE 'UTC'")
        defs = ", ".join(f"{name} {typ}" for name, typ, _ in columns)
        c.exec_driver_sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, {defs})")
        casts = ", ".join(f"%s::{typ}" for _, typ, _ in columns)
        for i in range(n):
            c.exec_driver_sql(f"INSERT INTO {table} VALUES (%s, {casts})",
                              (i, *(texts[i] for _, _, texts in columns)))
    eng.dispose()


def _texts(url: str, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """The rows as PostgreSQL prints them, in UTC."""
    eng = engine_of(url)
    with eng.connect() as c:
        c.exec_driver_sql("SET TIME ZONE 'UTC'")
        cols = ", ".join(f"{name}::text" for name in columns)
        rows = [tuple(r) for r in c.exec_driver_sql(f"SELECT {cols} FROM {table} ORDER BY id")]
    eng.dispose()
    return rows


def _archived(path: Path, table: str) -> dict[str, list[int | None]]:
    """The archive's columns of ``table`` as their integer encoding."""
    with dbcrate.open_archive(path) as arch:
        data = arch.read_table(table)
    out: dict[str, list[int | None]] = {}
    for name in data.column_names:
        col = data[name]
        if pa.types.is_date32(col.type):
            out[name] = col.cast(pa.int32()).to_pylist()
        elif pa.types.is_timestamp(col.type):
            out[name] = col.cast(pa.int64()).to_pylist()
    return out


# ----------------------------------------------------------------------------- the arithmetic
def test_postgresql_range_against_the_sentinels(pg: sa.Engine) -> None:
    """The edges are PostgreSQL's own: it takes each one and refuses one step beyond; its
    day count puts the collision exactly on 2^63-1; dates stay clear of +-2^31."""
    with pg.connect() as c:
        def accepts(text: str, typ: str) -> bool:
            try:
                with c.begin_nested():
                    c.exec_driver_sql(f"SELECT %s::{typ}", (text,))
                return True
            except sa.exc.DataError:
                return False

        c.exec_driver_sql("SET TIME ZONE 'UTC'")
        for typ in ("timestamp", "timestamptz"):
            assert accepts(values.format_pg_timestamp(values.PG_TS_MAX, False), typ)
            assert not accepts(values.format_pg_timestamp(values.PG_TS_MAX + 1, False), typ)
            assert accepts(values.format_pg_timestamp(values.PG_TS_MIN, False), typ)
            assert not accepts(values.format_pg_timestamp(values.PG_TS_MIN - 1, False), typ)
        assert accepts(values.format_pg_date(values.PG_DATE_MAX), "date")
        assert not accepts(values.format_pg_date(values.PG_DATE_MAX + 1), "date")
        assert accepts(values.format_pg_date(values.PG_DATE_MIN), "date")
        assert not accepts(values.format_pg_date(values.PG_DATE_MIN - 1), "date")

        def days(text: str) -> int:
            return int(c.exec_driver_sql("SELECT %s::date - DATE '1970-01-01'", (text,)).scalar())

        assert days("5874897-12-31") == values.PG_DATE_MAX
        assert days("4714-11-24 BC") == values.PG_DATE_MIN
        # 294247-01-10 is day 106751991; 04:00:54.775807 into it is 2^63-1 microseconds
        micros = c.exec_driver_sql(
            "SELECT (extract(epoch FROM %s::time) * 1000000)::bigint", ("04:00:54.775807",)).scalar()
        assert days("294247-01-10") * values.US_PER_DAY + int(micros) == TS_POS_INFINITY
    # who collides: only the top of the timestamps
    assert TS_MIN_FINITE < values.PG_TS_MIN and values.PG_TS_MAX > TS_MAX_FINITE
    assert DATE_MIN_FINITE < values.PG_DATE_MIN and values.PG_DATE_MAX < DATE_MAX_FINITE
    assert values.format_pg_timestamp(TS_MAX_FINITE, False) == LAST_FINITE


# ----------------------------------------------------------------------------- dump: refused
@pytest.mark.parametrize("typ", ["timestamp", "timestamptz"])
@pytest.mark.parametrize("text", UNSTORABLE)
def test_dump_refuses_a_finite_timestamp_past_the_last_one(typ: str, text: str, dbs: Databases,
                                                           tmp_path: Path) -> None:
    """Refused with table, column and value named (never archived as 'infinity'), and no
    archive is left behind."""
    src = dbs.new("postgresql")
    _create(src, "fine", [("v", typ, ["2021-06-01 00:00:00", "infinity"])])
    _create(src, "far", [("v", typ, ["2021-06-01 00:00:00", "infinity", text, None])])
    out = tmp_path / "x.crate"
    with pytest.raises(SourceValueError) as info:
        dbcrate.dump(src, out)
    message = info.value.message
    assert "table 'far'" in message and "column 'v'" in message, message
    assert text in message and "294247-01-10 04:00:54.775806" in message, message
    assert info.value.exit_code == 11
    assert info.value.hint and "-T" in info.value.hint
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


@pytest.mark.parametrize("kind", ["directory", "sqlite", "python"])
def test_every_container_kind_refuses_it_without_leaving_output(kind: str, dbs: Databases,
                                                                tmp_path: Path) -> None:
    src = dbs.new("postgresql")
    _create(src, "far", [("v", "timestamptz", ["-infinity", AT_SENTINEL + "+00"])])
    out = tmp_path / "out"
    with pytest.raises(SourceValueError, match=re.escape(AT_SENTINEL)):
        dbcrate.dump_as(src, out, kind)
    assert list(tmp_path.iterdir()) == []


def test_parallel_dump_refuses_it(dbs: Databases, tmp_path: Path) -> None:
    """-j 2: the key-range reads (``COPY (SELECT ...)``) take the same conversion."""
    src = dbs.new("postgresql")
    texts: list[str | None] = [f"2021-06-01 00:00:{i % 60:02d}" for i in range(2000)]
    texts[1500] = AT_SENTINEL
    _create(src, "far", [("v", "timestamp", texts)])
    _create(src, "other", [("v", "timestamp", ["infinity"])])
    out = tmp_path / "x.crate"
    with pytest.raises(SourceValueError, match=f"'far'.*'v'.*{re.escape(AT_SENTINEL)}"):
        dbcrate.dump(src, out, jobs=2, batch_rows=100)
    assert not out.exists()


def test_the_command_line_refusal(dbs: Databases, tmp_path: Path) -> None:
    """Exit 11, the message names table, column and value, no traceback, no file."""
    src = dbs.new("postgresql")
    _create(src, "far", [("v", "timestamp", [AT_SENTINEL])])
    out = tmp_path / "x.crate"
    env = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("DBCRATE_TRACEBACK", None)
    proc = subprocess.run([sys.executable, "-m", "dbcrate", "dump", src, str(out)],
                          capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    stderr = " ".join(proc.stderr.decode().split())
    assert proc.returncode == 11, stderr
    assert "Traceback" not in stderr
    assert "'far'" in stderr and "'v'" in stderr and AT_SENTINEL in stderr, stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(("kind", "data_format"), [("tar", "parquet"), ("tar", "jsonl"),
                                                   ("tar", "csv"), ("sqlite", None),
                                                   ("python", None)])
def test_infinities_and_the_finite_edges_round_trip(kind: str, data_format: str | None,
                                                    dbs: Databases, tmp_path: Path) -> None:
    """Every container kind and text encoding keeps the sentinels and the finite edges."""
    src = dbs.new("postgresql")
    _create(src, "edges", EDGE_COLUMNS)
    out = tmp_path / "edges.out"
    options: dict[str, Any] = {"data_format": data_format} if data_format else {}
    dbcrate.dump_as(src, out, kind, **options)
    assert _archived(out, "edges") == EDGE_ENCODED
    dst = dbs.new("postgresql")
    report = dbcrate.restore(out, dst)
    assert report.ok, report.to_dict()
    names = [name for name, _, _ in EDGE_COLUMNS]
    assert _texts(dst, "edges", names) == _texts(src, "edges", names)


@pytest.mark.parametrize("binary", [True, False], ids=["binary-copy", "csv-copy"])
def test_both_load_paths_restore_the_edges(binary: bool, dbs: Databases, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    src = dbs.new("postgresql")
    _create(src, "edges", EDGE_COLUMNS)
    out = tmp_path / "edges.crate"
    dbcrate.dump(src, out)
    monkeypatch.setattr(PostgreSQL, "binary_copy", binary)
    dst = dbs.new("postgresql")
    assert dbcrate.restore(out, dst).ok
    names = [name for name, _, _ in EDGE_COLUMNS]
    restored = _texts(dst, "edges", names)
    assert restored == _texts(src, "edges", names)
    assert restored[0] == ("infinity", "-infinity", "infinity")
    assert restored[2] == (LAST_FINITE, LAST_FINITE + "+00", "5874897-12-31")


def _load(engine: sa.Engine, typ: str, arrow: pa.DataType, ints: list[int],
          binary: bool) -> list[str] | str:
    """Load ``ints`` into a fresh column of ``typ`` through one COPY path: PostgreSQL's text of
    the loaded rows, or the error's class name if the load failed."""
    dialect = dialect_for(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS t; CREATE TABLE t (v {typ})")
        table = Table(name="t", columns=dialect.reflect(conn, "t").columns)
    dialect.binary_copy = binary
    try:
        with engine.begin() as conn:
            ints_type = pa.int32() if arrow == pa.date32() else pa.int64()
            batch = pa.RecordBatch.from_arrays([pa.array(ints, ints_type).cast(arrow)], names=["v"])
            dialect.load(conn, table, iter([batch]))
    except Exception as exc:  # PostgreSQL refused it: what matters is that nothing was stored
        return type(exc).__name__
    finally:
        dialect.binary_copy = True
    with engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT v::text FROM t")]


@pytest.mark.parametrize("binary", [True, False], ids=["binary-copy", "csv-copy"])
def test_a_finite_archive_value_never_loads_as_infinity(pg: sa.Engine, binary: bool) -> None:
    """Archive values below PostgreSQL's range (a hand-made or non-PostgreSQL archive) are
    refused by the server, never turned into its own -infinity: binary COPY shifted
    -2^63 + 946684800000000 us (290279-12-22 19:59:05.224192 BC) to exactly PostgreSQL's
    '-infinity' in dbcrate 0.2.0 and older."""
    shifted_to_nobegin = TS_NEG_INFINITY + pgbinary._EPOCH_US
    for value in (shifted_to_nobegin, shifted_to_nobegin + 1, shifted_to_nobegin - 1,
                  TS_MIN_FINITE, values.PG_TS_MIN - 1):
        for typ, arrow in (("timestamp", pa.timestamp("us")),
                           ("timestamptz", pa.timestamp("us", tz="UTC"))):
            got = _load(pg, typ, arrow, [value], binary)
            assert isinstance(got, str) and "Overflow" in got, (value, typ, got)
    for days in (DATE_MIN_FINITE, DATE_MIN_FINITE + pgbinary._EPOCH_DAYS, DATE_MAX_FINITE,
                 values.PG_DATE_MIN - 1, values.PG_DATE_MAX + 1):
        got = _load(pg, "date", pa.date32(), [days], binary)
        assert isinstance(got, str) and "Overflow" in got, (days, got)


@pytest.mark.parametrize("text", ["+294247-01-10T04:00:54.775807", "+294276-12-31T00:00:00",
                                  "-290308-12-21T19:59:05.224192"])
def test_text_members_refuse_a_finite_sentinel(text: str) -> None:
    """The text formats (and the sqlite and python kinds, which use their spellings) read a
    finite value only strictly between the sentinels."""
    with pytest.raises(MemberDecodeError, match="out of range"):
        parse_timestamp(text, False)
    assert parse_timestamp("+294247-01-10T04:00:54.775806", False) == TS_MAX_FINITE
    assert parse_timestamp("-290308-12-21T19:59:05.224193", False) == TS_MIN_FINITE
    assert parse_timestamp("infinity", False) == TS_POS_INFINITY
    assert parse_date("+5881580-07-10") == DATE_MAX_FINITE
    with pytest.raises(MemberDecodeError, match="out of range"):
        parse_date("+5881580-07-11")


# ----------------------------------------------------------------------------- property
#: instants near each edge, and anywhere in PostgreSQL's range
_INSTANTS = st.one_of(
    st.integers(TS_MAX_FINITE - 10**12, values.PG_TS_MAX),
    st.integers(TS_MAX_FINITE - 3, TS_MAX_FINITE + 3),
    st.integers(values.PG_TS_MIN, values.PG_TS_MIN + 10**12),
    st.integers(values.PG_TS_MIN, values.PG_TS_MAX),
)


def _finite_text(us: int, zoned: bool) -> str:
    """PostgreSQL's text of a finite instant (values.format_pg_timestamp would print 2^63-1
    as 'infinity': here it must be the finite instant the user stored)."""
    days, rest = divmod(us, values.US_PER_DAY)
    secs, micros = divmod(rest, 1_000_000)
    year, month, day = values.civil_from_days(days)
    era = " BC" if year <= 0 else ""
    return (f"{year if year > 0 else 1 - year:04d}-{month:02d}-{day:02d} "
            f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{micros:06d}"
            f"{'+00' if zoned else ''}{era}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instants=st.lists(_INSTANTS, min_size=1, max_size=8), zoned=st.booleans())
def test_every_postgresql_timestamp_round_trips_or_is_refused(pg: sa.Engine, instants: list[int],
                                                              zoned: bool) -> None:
    """Any finite instant PostgreSQL holds: the dump's read path either archives it exactly
    or refuses the batch naming a value past the last finite one; what is archived loads back
    to PostgreSQL's same text through both COPY paths."""
    typ = "timestamptz" if zoned else "timestamp"
    dialect = dialect_for(pg)
    with pg.begin() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS src; CREATE TABLE src (id int, v {typ})")
        for i, us in enumerate(instants):
            conn.exec_driver_sql(f"INSERT INTO src VALUES (%s, %s::{typ})",
                                 (i, _finite_text(us, zoned)))
        source_texts = [r[0] for r in conn.exec_driver_sql("SELECT v::text FROM src ORDER BY id")]
    # as the dump reads: an autocommit connection in the dump's snapshot session (UTC)
    with pg.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        dialect.begin_snapshot(conn)
        try:
            table = Table(name="src", columns=dialect.reflect(conn, "src").columns)
            batches = list(dialect.read_table(conn, table, 1000))
        except SourceValueError as exc:
            assert any(us > TS_MAX_FINITE for us in instants), exc.message
            printed = [t for t, us in zip(source_texts, instants) if us > TS_MAX_FINITE]
            assert any(t in exc.message for t in printed), exc.message
            return
        finally:
            dialect.end_snapshot(conn)
    assert all(us <= TS_MAX_FINITE for us in instants)
    archived = pa.Table.from_batches(batches).sort_by("id")
    assert archived["v"].cast(pa.int64()).to_pylist() == instants
    for binary in (True, False):
        loaded = _load(pg, typ, archived["v"].type, instants, binary)
        assert sorted(loaded) == sorted(source_texts), binary
