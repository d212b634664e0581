"""Edge values per engine: dump -> restore -> dump gives identical data (same engine), and
another engine refuses, before writing anything, what it cannot hold exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.errors import NotPortable

from conftest import ENGINES, Databases, engine_of
from content import snapshot
from edge_fixtures import create_edge_database


def same_column(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    """Exact equality, NaN equal to NaN and -0.0 distinct from 0.0."""
    if pa.types.is_floating(a.type):
        x = a.to_numpy(zero_copy_only=False).astype(float)
        y = b.to_numpy(zero_copy_only=False).astype(float)
        nx, ny = a.is_null().to_numpy(zero_copy_only=False), b.is_null().to_numpy(zero_copy_only=False)
        return bool(
            np.array_equal(nx, ny)
            and np.array_equal(x[~nx], y[~ny], equal_nan=True)
            and np.array_equal(np.signbit(x[~nx]), np.signbit(y[~ny]))
        )
    return a.equals(b)


def assert_same_archives(first: Path, second: Path) -> None:
    with dbcrate.open_archive(first) as a, dbcrate.open_archive(second) as b:
        assert [t.name for t in a.tables] == [t.name for t in b.tables]
        for entry in a.tables:
            ta, tb = a.read_table(entry.name), b.read_table(entry.name)
            assert ta.schema.equals(tb.schema), entry.name
            assert ta.num_rows == tb.num_rows, entry.name
            for col in ta.column_names:
                assert same_column(ta[col], tb[col]), (entry.name, col)


@pytest.mark.parametrize("kind", ENGINES)
def test_edge_values_same_engine(kind: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(kind)
    create_edge_database(kind, src)
    first, second = tmp_path / "first.crate", tmp_path / "second.crate"
    dbcrate.dump(src, first)
    dst = dbs.new(kind)
    report = dbcrate.restore(first, dst)
    assert report.ok, report.to_dict()
    dbcrate.dump(dst, second)
    assert_same_archives(first, second)
    assert snapshot(src) == snapshot(dst)

    # identity / serial / AUTO_INCREMENT / sqlite_sequence: the next plain INSERT works and
    # continues after the source's next value (500), not after max(id)
    eng = engine_of(dst)
    with eng.connect() as c:
        q = eng.dialect.identifier_preparer.quote
        if kind == "postgresql":
            new_id = c.exec_driver_sql(
                f"INSERT INTO {q('Edge Values')} (t) VALUES ('new') RETURNING id").scalar()
            ident = c.exec_driver_sql("INSERT INTO ident (v) VALUES ('c') RETURNING id").scalar()
            assert ident == 3  # 'b' (id 2) was deleted in the source: 2 is not reused
        else:
            c.exec_driver_sql(f"INSERT INTO {q('Edge Values')} (t) VALUES ('new')")
            new_id = c.exec_driver_sql(
                "SELECT last_insert_rowid()" if kind == "sqlite" else "SELECT LAST_INSERT_ID()"
            ).scalar()
        assert new_id >= 500
        if kind == "mysql":  # id 0 kept as 0 (NO_AUTO_VALUE_ON_ZERO during the load)
            assert c.exec_driver_sql(f"SELECT count(*) FROM {q('Edge Values')} WHERE id = 0").scalar() == 1
    eng.dispose()

    # indexes, unique constraints and the self-referencing foreign key were recreated
    insp_src, insp_dst = sa.inspect(engine_of(src)), sa.inspect(engine_of(dst))
    for table in ("tree", "nopk"):
        assert {tuple(i["column_names"]) for i in insp_dst.get_indexes(table)} >= {
            tuple(i["column_names"]) for i in insp_src.get_indexes(table)
        }
    assert [fk["referred_table"] for fk in insp_dst.get_foreign_keys("tree")] == ["tree"]


# (source, target) -> problems the preflight must report, as (column, words in the problem)
EXPECTED_REFUSALS = {
    ("postgresql", "mysql"): [("f8", "NaN"), ("f8", "infinity"), ("f8", "-0.0"),
                              ("d", "infinite date"), ("d", "outside the years"),
                              ("ts", "outside the years")],
    ("postgresql", "sqlite"): [("f8", "NaN"), ("f8", "-0.0"), ("d", "infinite date"),
                               ("tstz", "infinite timestamp")],
    ("mysql", "postgresql"): [("t", "NUL")],
    ("mysql", "sqlite"): [("u8", "larger than")],
    ("sqlite", "postgresql"): [("t", "NUL"), ("vc", "longer than 5")],
    ("sqlite", "mysql"): [("vc", "longer than 5")],
}


@pytest.mark.parametrize(("source", "target"), sorted(EXPECTED_REFUSALS))
def test_cross_engine_refuses_before_writing(source: str, target: str, dbs: Databases,
                                             tmp_path: Path) -> None:
    src = dbs.new(source)
    create_edge_database(source, src)
    archive = tmp_path / "edge.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new(target)
    with pytest.raises(NotPortable) as info:
        # 'mixedcase' would collide with 'MixedCase' in SQLite (tested below)
        dbcrate.restore(archive, dst, exclude=["mixedcase"])
    problems = info.value.problems
    for column, words in EXPECTED_REFUSALS[(source, target)]:
        assert any(p.table == "Edge Values" and p.column == column and words in p.problem
                   for p in problems), (column, words, [p.describe() for p in problems])
    # every problem names a row key where rows are involved
    assert all(p.row_key for p in problems if p.column and "name" not in p.problem)
    # (into a SQLite file the restore made, checked as it loaded: the file is removed)
    assert ("nothing is left" if target == "sqlite" else "nothing was written") \
        in info.value.message
    if target == "sqlite":
        assert not Path(dst.removeprefix("sqlite:///")).exists()
    eng = engine_of(dst)
    assert sa.inspect(eng).get_table_names() == []
    eng.dispose()


def test_identifier_too_long_for_target_is_refused(dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new("sqlite")
    long_name = "t" + "x" * 69
    eng = engine_of(src)
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE TABLE "{long_name}" (id INTEGER PRIMARY KEY, "{"c" * 70}" TEXT)')
    eng.dispose()
    archive = tmp_path / "long.crate"
    dbcrate.dump(src, archive)
    for target in ("postgresql", "mysql"):
        dst = dbs.new(target)
        with pytest.raises(NotPortable) as info:
            dbcrate.restore(archive, dst)
        text = info.value.message
        assert long_name in text and "longer than" in text
        eng = engine_of(dst)
        assert sa.inspect(eng).get_table_names() == []
        eng.dispose()


def test_names_that_collide_case_insensitively_are_refused(dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new("postgresql")
    create_edge_database("postgresql", src)
    archive = tmp_path / "pg.crate"
    dbcrate.dump(src, archive, include=["MixedCase", "mixedcase"])
    with pytest.raises(NotPortable) as info:
        dbcrate.restore(archive, dbs.new("sqlite"))
    assert "collides" in info.value.message


@pytest.mark.parametrize("kind", ENGINES)
def test_a_row_larger_than_every_read_block_round_trips(kind: str, dbs: Databases,
                                                        tmp_path: Path) -> None:
    """A 12 MB blob and a 9 MB text (half that on MariaDB): bigger than the blocks a dump reads
    at once (PostgreSQL parses COPY text in blocks of 2 MiB, 24 MB of hex here)."""
    import os

    src = dbs.new(kind)
    blob_type = {"postgresql": "BYTEA", "mysql": "LONGBLOB", "sqlite": "BLOB"}[kind]
    text_type = "LONGTEXT" if kind == "mysql" else "TEXT"
    eng = engine_of(src)
    # (MariaDB's default max_allowed_packet, 16 MiB, bounds one statement there)
    scale = 2 if kind == "mysql" else 1
    blob, text = os.urandom(12_000_000 // scale), "y" * (9_000_000 // scale)
    with eng.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE b (id INTEGER PRIMARY KEY, v {blob_type}, t {text_type})")
        conn.execute(sa.text("INSERT INTO b VALUES (1, :v, 'x')"), {"v": blob})
        conn.execute(sa.text("INSERT INTO b VALUES (2, :w, :t)"), {"w": b"ab", "t": text})
        conn.execute(sa.text("INSERT INTO b VALUES (3, NULL, NULL)"))
    eng.dispose()
    archive = tmp_path / "big.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new(kind)
    assert dbcrate.restore(archive, dst).ok
    assert snapshot(dst, ["b"]) == snapshot(src, ["b"])
    got = {r[0]: (r[1], r[2]) for r in _rows(dst, "SELECT id, v, t FROM b")}
    assert bytes(got[1][0]) == blob and got[2][1] == text and got[3] == (None, None)


def _rows(url: str, sql: str) -> list[tuple]:
    eng = engine_of(url)
    with eng.connect() as conn:
        out = [tuple(r) for r in conn.exec_driver_sql(sql)]
    eng.dispose()
    return out
