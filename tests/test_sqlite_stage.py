"""SQLite loads through an ADBC-written staging file (dbcrate.dialects.sqlitestage) store
exactly what binding every value through sqlite3 stores, stay inside the restore's
transaction, fall back mid-table, and leave no file behind. Into a file the restore makes,
ADBC loads each table in place (``load_direct``): the same values, nothing committed when it
fails, and a table whose load failed is removed again and said so."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.dialects import dialect_for, sqlitestage
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table
from dbcrate.model.values import decimal_text
from dbcrate.options import RestoreOptions

pytestmark = pytest.mark.skipif(not sqlitestage.usable(), reason="adbc-driver-sqlite missing")

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
#: kind -> (declared type of the target column, strategy of its Python values)
KINDS: dict[str, tuple[str, Any]] = {
    "boolean": ("BOOLEAN", st.booleans()),
    "int16": ("INTEGER", st.integers(-(2**15), 2**15 - 1)),
    "int64": ("INTEGER", st.integers(-(2**63), 2**63 - 1)),
    "uint64": ("INTEGER", st.integers(0, 2**63 - 1)),
    "float32": ("REAL", st.floats(width=32)),
    "float64": ("REAL", st.floats()),
    "decimal": ("NUMERIC(12, 2)", st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(decimal_text),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "12.50", "0.01", "123456789012.34"]))),
    "string": ("TEXT", _TEXT),
    "json": ("JSON", _TEXT),
    "uuid": ("UUID", st.uuids().map(str)),
    "binary": ("BLOB", st.binary(max_size=16)),
    "date": ("DATE", st.dates()),
    "time": ("TIME", st.times()),
    "datetime": ("DATETIME", st.datetimes()),
    "timestamptz": ("TIMESTAMPTZ", st.datetimes(timezones=st.just(dt.UTC))),
    "untyped": ("", _TEXT),
}


def _table(name: str, kinds: list[str]) -> Table:
    cols = [Column(f"c_{k}", LogicalType("string" if k == "untyped" else k), "") for k in kinds]
    return Table(name=name, columns=cols)


def _batch(table: Table, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
    arrays = [pa.array([r[i] for r in rows], col.type.arrow) for i, col in enumerate(table.columns)]
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in table.columns])


def _load(path: Path, table: Table, batches: list[pa.RecordBatch], *, stage: bool,
          monkeypatch: pytest.MonkeyPatch, ddl: str | None = None) -> list[tuple[Any, ...]]:
    """Load into a fresh database the way a restore does (one explicit transaction); every
    value with its storage class."""
    monkeypatch.setattr(sqlitestage, "ENABLED_BY_DEFAULT", stage)
    path.unlink(missing_ok=True)
    kinds = [c.name.removeprefix("c_") for c in table.columns]
    columns = ", ".join(f'"c_{k}" {KINDS[k][0]}' for k in kinds)
    with sqlite3.connect(path) as raw:
        raw.execute(ddl or f'CREATE TABLE "{table.name}" (rid INTEGER PRIMARY KEY, {columns})')
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        dialect = dialect_for(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            assert dialect.load(conn, table, iter(batches)) == sum(b.num_rows for b in batches)
            conn.exec_driver_sql("COMMIT")
    finally:
        engine.dispose()
    with sqlite3.connect(path) as raw:
        names = ", ".join(f'"{c.name}", typeof("{c.name}")' for c in table.columns)
        return raw.execute(f'SELECT {names} FROM "{table.name}" ORDER BY rowid').fetchall()


def _same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return [tuple(repr(v) for v in r) for r in a] == [tuple(repr(v) for v in r) for r in b]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_staged_values_are_the_bound_values(data: st.DataObject, tmp_path_factory:
                                            pytest.TempPathFactory) -> None:
    monkeypatch = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("stage")
    kinds = list(KINDS)
    table = _table("every kind", kinds)
    row = st.tuples(*[st.one_of(st.none(), KINDS[k][1]) for k in kinds])
    batches = [_batch(table, data.draw(st.lists(row, max_size=12))) for _ in range(2)]
    try:
        staged = _load(tmp / "staged.db", table, batches, stage=True, monkeypatch=monkeypatch)
        bound = _load(tmp / "bound.db", table, batches, stage=False, monkeypatch=monkeypatch)
    finally:
        monkeypatch.undo()
    assert _same(staged, bound)
    assert not list(tmp.glob(".dbcrate-stage-*"))


def test_edge_values_and_storage_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NaN becomes NULL, -0.0 and infinities stay REAL, NUL characters and empty values survive,
    decimal text takes NUMERIC affinity, 24:00:00 and year 1 keep their text: both ways."""
    table = _table("edges", ["float64", "decimal", "string", "binary", "time", "date", "boolean"])
    rows = [
        (float("nan"), "NaN", "a\x00b", b"", dt.time(0, 0), dt.date(1, 1, 1), True),
        (-0.0, "12.50", "", b"\x00", dt.time(23, 59, 59, 999999), dt.date(9999, 12, 31), False),
        (float("inf"), "1234567890123456789.5", "é😀", bytes(range(256)), None, None, None),
        (None, "0.000", "x" * 10_000, b"y" * 100_000, dt.time(12), dt.date(2024, 2, 29), None),
    ]
    batch = _batch(table, rows)
    time_col = pa.array([86_400_000_000, 0, None, 5], pa.time64("us"))  # PostgreSQL's 24:00:00
    batch = batch.set_column(4, "c_time", time_col)
    staged = _load(tmp_path / "a.db", table, [batch], stage=True, monkeypatch=monkeypatch)
    bound = _load(tmp_path / "b.db", table, [batch], stage=False, monkeypatch=monkeypatch)
    assert _same(staged, bound)
    assert staged[0][:2] == (None, "null") and staged[1][:2] == (-0.0, "real")
    assert staged[1][2:4] == (12.5, "real") and staged[0][8] == "24:00:00"


def test_a_batch_only_python_binds_ends_the_staging(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged rows go in first, then that batch and the rest through sqlite3, in order."""
    moved: list[int] = []
    move = sqlitestage._move

    def counting(raw: Any, path: str, insert: str, width: int) -> None:
        moved.append(width)
        move(raw, path, insert, width)

    monkeypatch.setattr(sqlitestage, "_move", counting)
    table = _table("mixed", ["int64", "untyped"])
    first = _batch(table, [(1, "a"), (2, "b")])
    odd = pa.RecordBatch.from_arrays([pa.array([3]), pa.array([7])], names=["c_int64", "c_untyped"])
    last = _batch(table, [(4, "d")])
    got = _load(tmp_path / "m.db", table, [first, odd, last], stage=True, monkeypatch=monkeypatch)
    assert got == [(1, "integer", "a", "text"), (2, "integer", "b", "text"),
                   (3, "integer", 7, "integer"), (4, "integer", "d", "text")]
    assert moved == [2]


def _keyed(path: Path) -> tuple[Table, sa.Engine]:
    """A table ``keyed`` whose one column is its key, in a new file; an engine on the file."""
    with sqlite3.connect(path) as raw:
        raw.execute('CREATE TABLE keyed ("c_int64" INTEGER PRIMARY KEY)')
    return _table("keyed", ["int64"]), sa.create_engine(f"sqlite:///{path}")


def test_a_failed_load_rolls_back_and_leaves_no_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.db"
    table, engine = _keyed(path)
    try:
        dialect = dialect_for(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            with pytest.raises(sqlite3.IntegrityError):  # the driver's error, as executemany's
                dialect.load(conn, table, iter([_batch(table, [(1,), (2,), (1,)])]))
            conn.exec_driver_sql("ROLLBACK")
            # the same connection loads again: the staging file of the failed load is released
            conn.exec_driver_sql("BEGIN")
            assert dialect.load(conn, table, iter([_batch(table, [(5,), (6,)])])) == 2
            conn.exec_driver_sql("COMMIT")
            attached = [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")]
    finally:
        engine.dispose()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT c_int64 FROM keyed ORDER BY 1").fetchall() == [(5,), (6,)]
    # the failed load's staging file was detached by the next load; the last one is held
    # until the connection's next load or its end (SQLite refuses DETACH inside a transaction)
    assert len([a for a in attached if a.startswith("dbcrate_stage_")]) <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.db"]


def test_single_transaction_restore_of_many_tables(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """All or nothing keeps every staging file attached until its COMMIT: after MAX_PENDING
    tables, the rest bind through sqlite3; every row arrives either way."""
    source = tmp_path / "src.db"
    with sqlite3.connect(source) as raw:
        for i in range(sqlitestage.MAX_PENDING + 3):
            raw.execute(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT)")
            raw.executemany(f"INSERT INTO t{i} VALUES (?, ?)", [(j, f"v{j}") for j in range(50)])
    archive = tmp_path / "many.crate"
    dbcrate.dump(f"sqlite:///{source}", archive)
    moved: list[int] = []
    move = sqlitestage._move
    monkeypatch.setattr(sqlitestage, "_move",
                        lambda *a: (moved.append(1), move(*a))[1])  # type: ignore[func-returns-value]
    target = tmp_path / "out.db"
    report = dbcrate.restore(archive, f"sqlite:///{target}",
                             RestoreOptions(single_transaction=True))
    report.raise_for_failures()
    assert len(moved) == sqlitestage.MAX_PENDING
    with sqlite3.connect(target) as raw:
        for i in range(sqlitestage.MAX_PENDING + 3):
            assert raw.execute(f"SELECT count(*), max(v) FROM t{i}").fetchone() == (50, "v9")
    assert not list(tmp_path.glob(".dbcrate-stage-*"))


def test_a_staging_failure_says_where_and_what_to_do(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while ADBC writes the staging file fails the table with a sentence that
    names the directory and the way around it, and removes the file."""
    import adbc_driver_manager

    def full(path: str, *args: Any) -> Any:
        Path(path).write_bytes(b"x" * 100)
        raise adbc_driver_manager.OperationalError(
            "database or disk is full", status_code=adbc_driver_manager.AdbcStatusCode.IO)

    monkeypatch.setattr(sqlitestage, "_write", full)
    table = _table("full", ["int64"])
    with pytest.raises(dbcrate.DbcrateError) as info:
        _load(tmp_path / "f.db", table, [_batch(table, [(1,)])], stage=True,
              monkeypatch=monkeypatch)
    assert str(tmp_path) in info.value.message
    assert "DBCRATE_SQLITE_STAGE=0" in info.value.message
    assert "disk is full" in info.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.db"]


# ------------------------------------------------------------------ into a file the restore made
def _load_direct(path: Path, table: Table, batches: list[pa.RecordBatch]) -> tuple[
        int, list[pa.RecordBatch], list[tuple[Any, ...]]]:
    """Create the table committed, then load it the way a restore into a file it made does
    (:meth:`load_committed`); (rows committed, batches left to the caller, every value with
    its storage class)."""
    path.unlink(missing_ok=True)
    kinds = [c.name.removeprefix("c_") for c in table.columns]
    columns = ", ".join(f'"c_{k}" {KINDS[k][0]}' for k in kinds)
    with sqlite3.connect(path) as raw:
        raw.execute(f'CREATE TABLE "{table.name}" (rid INTEGER PRIMARY KEY, {columns})')
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        rows, rest = dialect_for(engine).load_committed(table, iter(batches))
    finally:
        engine.dispose()
    with sqlite3.connect(path) as raw:
        names = ", ".join(f'"{c.name}", typeof("{c.name}")' for c in table.columns)
        got = raw.execute(f'SELECT {names} FROM "{table.name}" ORDER BY rowid').fetchall()
    return rows, list(rest), got


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_direct_values_are_the_bound_values(data: st.DataObject, tmp_path_factory:
                                            pytest.TempPathFactory) -> None:
    """ADBC's inserts into the table itself store what binding every value through sqlite3
    stores: the same values, the same storage classes, in order (the rowid each row gets),
    several rows to a statement and the rows left over one at a time."""
    per = data.draw(st.integers(1, 5))
    table = _table("every kind", list(KINDS))
    row = st.tuples(*[st.one_of(st.none(), KINDS[k][1]) for k in KINDS])
    batches = [_batch(table, data.draw(st.lists(row, min_size=1, max_size=12)))
               for _ in range(3)]
    tmp = tmp_path_factory.mktemp("direct")
    # (set after every draw: a draw that ends the example must not leave it set)
    monkeypatch = pytest.MonkeyPatch()
    try:
        monkeypatch.setattr(sqlitestage, "ROWS_PER_STATEMENT", per)
        rows, rest, direct = _load_direct(tmp / "direct.db", table, batches)
        bound = _load(tmp / "bound.db", table, batches, stage=False, monkeypatch=monkeypatch)
    finally:
        monkeypatch.undo()
    assert rows == sum(b.num_rows for b in batches) and rest == []
    assert _same(direct, bound)


def test_rows_grouped_per_statement_keep_their_order() -> None:
    """Statement row r holds rows r*per ... r*per+per-1, column j of its g-th row named g_j;
    the rows left over come one per statement; within SQLite's 999 parameters."""
    arrays = [pa.array(range(10)), pa.array([f"v{i}" for i in range(10)])]
    many, rest = sqlitestage.grouped(arrays, 3)
    assert many is not None and rest is not None
    assert many.schema.names == ["0_0", "0_1", "1_0", "1_1", "2_0", "2_1"]
    assert [list(r.values()) for r in many.to_pylist()] == [
        [0, "v0", 1, "v1", 2, "v2"], [3, "v3", 4, "v4", 5, "v5"], [6, "v6", 7, "v7", 8, "v8"]]
    assert rest.to_pylist() == [{"0_0": 9, "0_1": "v9"}]
    assert sqlitestage.grouped(arrays[:1], 5)[1] is None
    assert sqlitestage.rows_per_statement(5) == sqlitestage.ROWS_PER_STATEMENT
    assert sqlitestage.rows_per_statement(400) == 2
    assert sqlitestage.rows_per_statement(2000) == 1


def test_a_first_batch_only_python_binds_is_left_to_the_caller(tmp_path: Path) -> None:
    """Nothing is written, and every batch comes back in order, that one first."""
    table = _table("big unsigned", ["uint64"])
    huge = pa.RecordBatch.from_arrays([pa.array([2**63 + 1], pa.uint64())], names=["c_uint64"])
    fine = _batch(table, [(1,)])
    rows, rest, got = _load_direct(tmp_path / "u.db", table, [huge, fine])
    assert (rows, got) == (0, [])
    assert [b.to_pylist() for b in rest] == [huge.to_pylist(), fine.to_pylist()]


def test_a_direct_load_that_fails_commits_nothing(tmp_path: Path) -> None:
    """A key the table refuses in the second batch: the error names it, the first batch's rows
    are rolled back with it, and the connection is closed (the file can be removed)."""
    path = tmp_path / "k.db"
    table, engine = _keyed(path)
    try:
        with pytest.raises(dbcrate.DbcrateError, match="UNIQUE constraint failed"):
            dialect_for(engine).load_committed(
                table, iter([_batch(table, [(1,), (2,)]), _batch(table, [(3,), (1,)])]))
    finally:
        engine.dispose()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM keyed").fetchone() == (0,)
    path.unlink()  # (no connection holds it)
    assert list(tmp_path.iterdir()) == []


def _source_db(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, d DATETIME)")
        raw.executemany("INSERT INTO a VALUES (?, ?, ?)",
                        [(i, f"v{i}", f"2024-01-01 00:00:{i % 60:02d}") for i in range(5000)])
        raw.execute("CREATE TABLE z (id INTEGER PRIMARY KEY, w REAL)")
        raw.executemany("INSERT INTO z VALUES (?, ?)", [(i, i / 3) for i in range(5000)])
        raw.execute("CREATE INDEX z_w ON z (w)")
    return f"sqlite:///{path}"


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"direct": 0, "moved": 0}
    direct, move = sqlitestage.load_direct, sqlitestage._move

    def counted_direct(*args: Any) -> Any:
        rows, rest = direct(*args)
        calls["direct"] += rows > 0
        return rows, rest

    def counted_move(*args: Any) -> None:
        calls["moved"] += 1
        move(*args)

    monkeypatch.setattr(sqlitestage, "load_direct", counted_direct)
    monkeypatch.setattr(sqlitestage, "_move", counted_move)
    return calls


def test_a_restore_into_a_file_it_makes_loads_each_table_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Into a new file every table is loaded by ADBC in place (no staging file); into an
    existing file each table still loads through its staging file, inside the table's own
    transaction. Both give the source's rows, and the journal is gone after success."""
    source = _source_db(tmp_path / "src.db")
    archive = tmp_path / "a.crate"
    dbcrate.dump(source, archive, chunk_rows=700)  # several chunks: several batches per table
    calls = _counting(monkeypatch)
    new = tmp_path / "new.db"
    dbcrate.restore(archive, f"sqlite:///{new}", ddl="portable").raise_for_failures()
    assert calls == {"direct": 2, "moved": 0}
    existing = tmp_path / "existing.db"
    sqlite3.connect(existing).close()
    dbcrate.restore(archive, f"sqlite:///{existing}", ddl="portable").raise_for_failures()
    assert calls == {"direct": 2, "moved": 2}
    for path in (new, existing):
        with sqlite3.connect(path) as got, sqlite3.connect(tmp_path / "src.db") as want:
            for sql in ("SELECT * FROM a ORDER BY id", "SELECT * FROM z ORDER BY id"):
                assert got.execute(sql).fetchall() == want.execute(sql).fetchall()
            assert got.execute("SELECT count(*) FROM sqlite_master WHERE name = "
                               "'dbcrate_journal'").fetchone() == (0,)
    assert not list(tmp_path.glob(".dbcrate-stage-*"))


def test_a_table_whose_load_fails_in_place_is_removed_and_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A load that fails halfway (the hook raises on its second batch) after the table was
    committed: the table is dropped again, its journal mark removed, the report says it is
    absent; the other table is restored; --resume then restores the failed one alone."""
    from conftest import failing_load_hook

    source = _source_db(tmp_path / "src.db")
    archive = tmp_path / "a.crate"
    dbcrate.dump(source, archive, chunk_rows=700)
    hooks = tmp_path / "fail_z.py"
    hooks.write_text(failing_load_hook("z", "stopped by the test's hook"))
    target = tmp_path / "new.db"
    report = dbcrate.restore(archive, f"sqlite:///{target}", hooks=str(hooks),
                             ddl="portable")
    by_name = {t.name: t for t in report.tables}
    assert by_name["a"].status == "restored"
    z = by_name["z"]
    assert z.status == "failed" and "stopped by the test's hook" in (z.error or "")
    assert (z.error or "").endswith("the table was removed again: it is absent")
    with sqlite3.connect(target) as raw:
        assert raw.execute("SELECT name FROM sqlite_master WHERE name IN ('a', 'z')"
                           ).fetchall() == [("a",)]
        # a: started, then committed whole; z: nothing (its mark went with the table)
        assert raw.execute("SELECT table_name, chunk FROM dbcrate_journal ORDER BY 1, 2"
                           ).fetchall() == [("a", -2), ("a", -1)]
    dbcrate.restore(archive, f"sqlite:///{target}", resume=True,
                    ddl="portable").raise_for_failures()
    with sqlite3.connect(target) as got, sqlite3.connect(tmp_path / "src.db") as want:
        sql = "SELECT * FROM z ORDER BY id"
        assert got.execute(sql).fetchall() == want.execute(sql).fetchall()
        assert got.execute("SELECT count(*) FROM a").fetchone() == (5000,)
