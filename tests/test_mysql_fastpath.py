"""The MariaDB bulk read through mysqlclient (dialects/mysql_fast.py) against the PyMySQL path.

Both paths must give the same Arrow data, or the same error, for every value; the mysqlclient
connection must read the dump's snapshot; PyMySQL must keep working when mysqlclient is absent
or switched off. Under CI=true mysqlclient must be installed (scripts/test.sh installs it), so
that CI proves the fast path and not only the fallback.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.connect import open_engine
from dbcrate.dialects import mysql_fast
from dbcrate.errors import SourceValueError

from conftest import Databases, engine_of, run_sql
from edge_fixtures import create_edge_database

HAVE_MYSQLCLIENT = importlib.util.find_spec("MySQLdb") is not None
needs_mysqlclient = pytest.mark.skipif(
    not HAVE_MYSQLCLIENT and os.environ.get("CI") != "true", reason="mysqlclient not installed")


def test_mysqlclient_is_installed_under_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI must prove the mysqlclient path")
    assert HAVE_MYSQLCLIENT, "scripts/test.sh installs mysqlclient; CI must test the fast path"


def read_tables(url: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch,
                batch_rows: int = 65_536) -> dict[str, pa.Table | str]:
    """Every table read by the dialect inside one snapshot: its rows, or its error message."""
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1" if fast else "0")
    engine, dialect, _ = open_engine(url, read_only=True)
    out: dict[str, pa.Table | str] = {}
    try:
        with engine.connect() as conn:
            dialect.begin_snapshot(conn)
            assert bool(dialect._readers) == fast  # type: ignore[attr-defined]
            for name in dialect.list_tables(conn):
                table = dialect.reflect(conn, name)
                schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
                try:
                    batches = list(dialect.read_table(conn, table, batch_rows))
                    out[name] = pa.Table.from_batches(batches, schema=schema)
                except SourceValueError as exc:
                    out[name] = exc.message
            dialect.end_snapshot(conn)
    finally:
        engine.dispose()
    return out


def bits(col: pa.ChunkedArray) -> list[object]:
    """Values for an exact comparison (floats by their bits: -0.0 is not 0.0)."""
    if pa.types.is_floating(col.type):
        arr = col.combine_chunks()
        nulls = arr.is_null().to_numpy(zero_copy_only=False)
        raw = arr.fill_null(0).to_numpy(zero_copy_only=False)
        view = raw.view(np.uint32 if col.type == pa.float32() else np.uint64).tolist()
        return [None if n else v for n, v in zip(nulls, view)]
    return col.to_pylist()


def assert_same(fast: dict[str, pa.Table | str], slow: dict[str, pa.Table | str]) -> None:
    assert fast.keys() == slow.keys()
    for name in fast:
        a, b = fast[name], slow[name]
        if isinstance(a, str) or isinstance(b, str):
            assert a == b, name
            continue
        assert a.schema.equals(b.schema), name
        for col in a.column_names:
            assert bits(a[col]) == bits(b[col]), (name, col)


@needs_mysqlclient
def test_edge_values_read_alike(dbs: Databases, monkeypatch: pytest.MonkeyPatch) -> None:
    src = dbs.new("mysql")
    create_edge_database("mysql", src)
    fast = read_tables(src, fast=True, monkeypatch=monkeypatch)
    slow = read_tables(src, fast=False, monkeypatch=monkeypatch)
    assert_same(fast, slow)
    assert all(isinstance(t, pa.Table) for t in fast.values())
    assert fast["Edge Values"].num_rows == 5


# values where Arrow's parser and PyMySQL could disagree: every one must come out the same (or
# fail with the same message); one table per case so that one error does not hide another
ODD_TABLES: dict[str, tuple[str, list[str]]] = {
    "zero_date": ("d date", ["'0000-00-00'", "'2024-01-01'", "NULL"]),
    "year_zero": ("d date", ["'0000-01-01'"]),
    "year_zero_datetime": ("d datetime", ["'0000-12-31 23:59:59'"]),
    "year_one": ("d date, t datetime(6)", ["'0001-01-01', '0001-01-01 00:00:00.000000'",
                                            "'9999-12-31', '9999-12-31 23:59:59.999999'"]),
    "zero_in_date": ("d date", ["'2024-00-10'"]),
    "invalid_day": ("d date", ["'2023-02-30'"]),
    "zero_datetime": ("d datetime(6)", ["'0000-00-00 00:00:00'"]),
    "time_negative": ("t time", ["'-01:00:00'"]),
    "time_long": ("t time(6)", ["'838:59:59.000000'"]),
    "time_ok": ("t time(3)", ["'00:00:00'", "'23:59:59.999'", "'12:34:56.5'", "NULL"]),
    "datetime_fsp": ("d datetime(3)", ["'0001-01-01 00:00:00.001'", "'9999-12-31 23:59:59.999'",
                                       "'2024-02-29 12:00:00'"]),
    "ts": ("t timestamp(6) NULL", ["'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'"]),
    "zerofill": ("i int(6) zerofill, n decimal(8,3) zerofill, u tinyint zerofill",
                 ["12, 1.5, 7", "NULL, NULL, NULL", "0, 0, 0"]),
    "decimals": ("n decimal(20,10), m decimal(5,0)",
                 ["-0.0000000001, -99999", "0, 0", "1234567890.0123456789, 1", "-0, -0"]),
    "floats": ("f float, g double, h float unsigned",
               ["3.4028235e38, 1.7976931348623157e308, 0", "-1.17549435e-38, 2.2250738585072014e-308, 1",
                "0.1, 0.1, 0.1", "1e-45, 4.9e-324, 123456789", "-0.0, -0.0, 16777217",
                "1.0000001, 0.30000000000000004, 3.3333333"]),
    "ints": ("a tinyint, b smallint unsigned, c mediumint unsigned, d bigint unsigned, e year, "
             "f bit(1), g bit(64), h bigint",
             ["-128, 65535, 16777215, 18446744073709551615, 0, b'1', "
              "b'0111111111111111111111111111111111111111111111111111111111111111', "
              "-9223372036854775808",
              "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
              "127, 0, 0, 0, 1901, b'0', b'0', 9223372036854775807"]),
    "texts": ("a varchar(10) CHARACTER SET latin1, b char(3) CHARACTER SET utf8mb3, c tinytext, "
              "d enum('x','é','') , e set('a','b','c'), f json, g mediumtext",
              ["'àé¤', 'ñ€x', '', 'é', 'a,c', '{\"k\": \"\\\\u00e9 😀\"}', 'tab\\there\\nnewline'",
               "'', '', NULL, '', '', '[]', ''",
               "NULL, NULL, NULL, NULL, NULL, NULL, NULL"]),
    "binaries": ("a binary(4), b varbinary(8), c tinyblob, d blob",
                 ["x'00', x'', x'00ff', x'5c4e'", "NULL, NULL, NULL, NULL",
                  "'ab', 'a b ', '\\\\N', ''"]),
    "uuids": ("u uuid", ["'123e4567-e89b-12d3-a456-426614174000'", "NULL"]),
    "inet": ("a inet6", ["'::1'", "'1.2.3.4'", "NULL"]),
    "geometry": ("g point", ["PointFromText('POINT(1 2)')"]),
}


@pytest.fixture(scope="module")
def odd_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    holder = Databases(tmp_path_factory.mktemp("odd"))
    url = holder.new("mysql")
    statements = ["SET SESSION sql_mode = 'ALLOW_INVALID_DATES'"]
    for name, (cols, rows) in ODD_TABLES.items():
        statements.append(f"CREATE TABLE `{name}` (id int PRIMARY KEY AUTO_INCREMENT, {cols})")
        names = ", ".join(c.split()[0] for c in cols.split(", "))
        for row in rows:
            statements.append(f"INSERT INTO `{name}` ({names}) VALUES ({row})")
    run_sql(url, *statements)
    yield url
    holder.drop_all()


@needs_mysqlclient
def test_odd_values_read_alike(odd_source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = read_tables(odd_source, fast=True, monkeypatch=monkeypatch)
    slow = read_tables(odd_source, fast=False, monkeypatch=monkeypatch)
    assert_same(fast, slow)
    # the cases that must fail, fail (on both paths, with the row named)
    for name in ("zero_date", "year_zero", "year_zero_datetime", "zero_datetime", "time_negative", "time_long", "zero_in_date",
                 "invalid_day"):
        assert isinstance(fast[name], str), name
        assert "row id=1" in fast[name], fast[name]
    for name in ("year_one", "time_ok", "datetime_fsp", "ts", "zerofill", "decimals", "floats", "ints",
                 "texts", "binaries", "uuids", "inet", "geometry"):
        assert isinstance(fast[name], pa.Table), (name, fast[name])
    # a spatial value is the server's own bytes (SRID, then WKB), which it takes back as they are
    assert fast["geometry"].column("g").to_pylist() == [
        bytes.fromhex("00000000" "0101000000" "000000000000F03F" "0000000000000040")]


@needs_mysqlclient
def test_many_batches_read_alike(dbs: Databases, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several fetches per table (the batch size grows from 1024 rows), NULLs and a value that
    needs the per-value path in a late batch only."""
    src = dbs.new("mysql")
    run_sql(src,
            "CREATE TABLE t (id int PRIMARY KEY, v varchar(40), n decimal(12,2), d double, "
            "w datetime(6), b longblob)",
            "INSERT INTO t SELECT seq, IF(MOD(seq, 7) = 0, NULL, md5(seq)), seq / 100, seq / 3, "
            "'2024-01-01' + INTERVAL seq SECOND, IF(MOD(seq, 5) = 0, NULL, unhex(md5(seq))) "
            "FROM seq_1_to_20000",
            "CREATE TABLE late (id int PRIMARY KEY, t time)",
            "INSERT INTO late SELECT seq, IF(seq = 3000, '25:00:00', '01:02:03') FROM seq_1_to_4000")
    fast = read_tables(src, fast=True, monkeypatch=monkeypatch, batch_rows=3000)
    slow = read_tables(src, fast=False, monkeypatch=monkeypatch, batch_rows=3000)
    assert_same(fast, slow)
    assert isinstance(fast["t"], pa.Table) and fast["t"].num_rows == 20000
    assert fast["late"] == slow["late"] and "row id=3000" in str(fast["late"])


@needs_mysqlclient
def test_reader_reads_the_snapshot(dbs: Databases, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row committed after the snapshot began is not read, and every later table of the
    dump is still read on the same connection after a table failed (--tolerate)."""
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1")
    src = dbs.new("mysql")
    run_sql(src, "CREATE TABLE a (id int PRIMARY KEY)", "INSERT INTO a VALUES (1), (2)",
            "CREATE TABLE bad (id int PRIMARY KEY, d date)")
    run_sql(src, "SET SESSION sql_mode = ''",
            "INSERT INTO bad SELECT seq, IF(seq = 2, '0000-00-00', '2024-01-01') "
            "FROM seq_1_to_5000")
    engine, dialect, _ = open_engine(src, read_only=True)
    writer = engine_of(src)
    try:
        with engine.connect() as conn, writer.connect() as w:
            dialect.begin_snapshot(conn)
            w.exec_driver_sql("INSERT INTO a VALUES (3)")
            bad, table_a = dialect.reflect(conn, "bad"), dialect.reflect(conn, "a")
            with pytest.raises(SourceValueError, match="row id=2"):
                list(dialect.read_table(conn, bad, 1000))
            rows = sum(b.num_rows for b in dialect.read_table(conn, table_a, 1000))
            assert rows == 2
            dialect.end_snapshot(conn)
            assert not dialect._readers  # type: ignore[attr-defined]
    finally:
        writer.dispose()
        engine.dispose()


@needs_mysqlclient
def test_tolerate_goes_on_after_a_bad_table(dbs: Databases, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1")
    src = dbs.new("mysql")
    run_sql(src, "SET SESSION sql_mode = ''",
            "CREATE TABLE a_bad (id int PRIMARY KEY, d date)",
            "INSERT INTO a_bad SELECT seq, IF(seq = 10, '0000-00-00', '2024-01-01') "
            "FROM seq_1_to_50000",
            "CREATE TABLE b_good (id int PRIMARY KEY)", "INSERT INTO b_good VALUES (1), (2)")
    result = dbcrate.dump(src, tmp_path / "t.crate", tolerate=True)
    status = {t.name: (t.status, t.rows) for t in result.manifest.tables}
    assert status["a_bad"][0] == "failed"
    assert status["b_good"] == ("ok", 2), status


@pytest.mark.parametrize("fast", [True, False])
def test_dump_and_restore_with_either_driver(fast: bool, dbs: Databases, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The PyMySQL path keeps working when mysqlclient is switched off (or absent)."""
    if fast and not HAVE_MYSQLCLIENT:
        pytest.skip("mysqlclient not installed")
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1" if fast else "0")
    src = dbs.new("mysql")
    create_edge_database("mysql", src)
    dbcrate.dump(src, tmp_path / "e.crate", jobs=2, chunk_rows=2)
    dst = dbs.new("mysql")
    report = dbcrate.restore(tmp_path / "e.crate", dst)
    assert report.ok, report.to_dict()
    eng = engine_of(dst)
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM `Edge Values`").scalar() == 5
    eng.dispose()


def test_absent_driver_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an importable MySQLdb no reader is opened (PyMySQL reads)."""
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # what `import MySQLdb` then raises
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1")
    assert not mysql_fast.available()
    assert mysql_fast.FastReader.open(sa.engine.make_url("mysql+pymysql://x@127.0.0.1/y"), []) is None


@pytest.mark.parametrize("fast", [True, False])
def test_key_ranges_cover_rows_added_before_the_shared_snapshot(
        fast: bool, dbs: Databases, monkeypatch: pytest.MonkeyPatch) -> None:
    """-j N: the key ranges come from the leader's first snapshot, share_snapshot then opens a
    new one on every connection; rows committed in between, below the min or above the max
    key, are read exactly once."""
    if fast and not HAVE_MYSQLCLIENT:
        pytest.skip("mysqlclient not installed")
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1" if fast else "0")
    src = dbs.new("mysql")
    run_sql(src, "CREATE TABLE t (id bigint PRIMARY KEY)", "INSERT INTO t SELECT seq FROM seq_1_to_1000")
    engine, dialect, _ = open_engine(src, read_only=True)
    writer = engine_of(src)
    try:
        with engine.connect() as leader, engine.connect() as worker, writer.connect() as w:
            dialect.begin_snapshot(leader)
            table = dialect.reflect(leader, "t")
            ranges = dialect.key_ranges(leader, table, 4)
            assert ranges and len(ranges) == 4
            w.exec_driver_sql("INSERT INTO t VALUES (-5), (0), (1001), (9223372036854775807)")
            dialect.share_snapshot(leader, [worker])
            assert len(dialect._readers) == (2 if fast else 0)  # type: ignore[attr-defined]
            ids: list[int] = []
            for i, key_range in enumerate(ranges):
                conn = leader if i % 2 else worker
                for batch in dialect.read_table(conn, table, 100, key_range):
                    ids += batch.column(0).to_pylist()
            assert sorted(ids) == [-5, 0, *range(1, 1002), 9223372036854775807]
            for conn in (leader, worker):
                dialect.end_snapshot(conn)
    finally:
        writer.dispose()
        engine.dispose()
