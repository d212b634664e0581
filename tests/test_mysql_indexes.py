"""MariaDB builds a table's indexes with one ALTER TABLE (one scan of the table); names that
need quoting, prefix lengths and unique constraints survive it, and a failure falls back to one
statement per index, so the good indexes are built and the error names the bad one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from dbcrate.dialects import dialect_for
from dbcrate.restore.ddl import CombinedDDL
from dbcrate.restore.recreate import run_step
from dbcrate.restore.report import TableResult
from dbcrate.restore.session import Runner

from conftest import Databases, engine_of


@pytest.fixture
def filled(dbs: Databases) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """A MariaDB table that needs quoting, with 100 rows (``c`` repeats every 7)."""
    engine = engine_of(dbs.new("mysql"))
    md = sa.MetaData()
    t = sa.Table("weird `name`", md,
                 sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("a b", sa.String(200)), sa.Column("c", sa.Integer))
    md.create_all(engine)
    with engine.connect() as c:
        c.execute(t.insert(), [{"id": i, "a b": f"v{i}", "c": i % 7} for i in range(100)])
    yield engine, t
    engine.dispose()


def _build(engine: sa.Engine, elements: list[Any]) -> TableResult:
    """Run the combined statement as a restore does; the table's result."""
    dialect = dialect_for(engine)
    sql = dialect.combined_index_ddl(elements)
    assert sql is not None and sql.startswith("ALTER TABLE `weird ``name``` ADD ")
    assert sql.count(" ADD ") == len(elements)
    result = TableResult("weird `name`", status="restored")
    run_step(Runner(dialect, single=False), [CombinedDDL(sql, elements)], result, "index")
    return result


def _indexes(engine: sa.Engine) -> set[tuple[str, str]]:
    """(index, column) as the server lists them (no reflection parsing)."""
    with engine.connect() as c:
        return {(name, col) for name, col in c.exec_driver_sql(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'weird `name`'")}


def test_one_alter_builds_every_index(filled: tuple[sa.Engine, sa.Table]) -> None:
    engine, t = filled
    unique = sa.UniqueConstraint(t.c["a b"], name="uq a")
    t.append_constraint(unique)
    result = _build(engine, [sa.schema.CreateIndex(sa.Index("ix one", t.c["a b"], mysql_length=10)),
                             sa.schema.CreateIndex(sa.Index("ix`2", t.c.c)),
                             sa.schema.AddConstraint(unique)])
    assert result.status == "restored", result.error
    assert _indexes(engine) == {("PRIMARY", "id"), ("ix one", "a b"), ("ix`2", "c"),
                                ("uq a", "a b")}


def test_a_failing_index_does_not_take_the_others_down(filled: tuple[sa.Engine, sa.Table]) -> None:
    engine, t = filled
    result = _build(engine, [sa.schema.CreateIndex(sa.Index("ix_good", t.c["a b"])),
                             sa.schema.CreateIndex(sa.Index("ix_bad", t.c.c, unique=True))])
    assert result.status == "failed"
    assert result.error is not None and "ix_bad" in result.error
    assert "Duplicate entry" in result.error
    assert _indexes(engine) == {("PRIMARY", "id"), ("ix_good", "a b")}


def test_forms_it_does_not_know_run_one_by_one(filled: tuple[sa.Engine, sa.Table]) -> None:
    engine, t = filled
    dialect = dialect_for(engine)
    using = sa.schema.CreateIndex(sa.Index("ix_using", t.c.c, mysql_using="btree"))
    plain = sa.schema.CreateIndex(sa.Index("ix_plain", t.c.id))
    assert dialect.combined_index_ddl([using, plain]) is None
    assert dialect.combined_index_ddl([plain]) is None  # one index: nothing to combine


def test_keys_are_sized_for_innodb_before_anything_is_created(dbs: Databases, tmp_path: Any) -> None:
    """InnoDB refuses a key over 3,072 bytes (error 1071). From PostgreSQL: a ``varchar``
    without a length in a primary key beside an integer (AdventureWorks' productdocument)
    is narrowed to fit, said in a warning; a plain index on long declared columns is built on
    prefixes; a unique key too long by its declared lengths is refused before anything is
    created, with the key named, and the other tables restore without it."""
    import dbcrate
    from dbcrate.errors import NotPortable

    from conftest import rows, run_sql, tables

    src = dbs.new("postgresql")
    run_sql(src,
            "CREATE TABLE doc (productid int, node varchar, PRIMARY KEY (productid, node))",
            "INSERT INTO doc SELECT i, repeat('n', i * 7) FROM generate_series(1, 100) i",
            "CREATE TABLE page (id int PRIMARY KEY, title varchar(1000), code varchar(1000))",
            "CREATE INDEX page_title_code ON page (title, code)",
            "INSERT INTO page SELECT i, repeat('t', i * 9), 'c' || i FROM generate_series(1, 50) i",
            "CREATE TABLE note (id int PRIMARY KEY, code varchar(10), body text)",
            "CREATE INDEX note_code_body ON note (code, body)",
            "INSERT INTO note SELECT i, 'c' || i, repeat('b', i * 25) FROM generate_series(1, 30) i",
            "CREATE TABLE tag (name varchar(1000) UNIQUE)",
            "INSERT INTO tag VALUES ('a'), ('b')")
    archive = tmp_path / "keys.crate"
    dbcrate.dump(src, archive)

    target = dbs.new("mysql")
    with pytest.raises(NotPortable) as refused:
        dbcrate.restore(archive, target)
    assert "tag: unique index" in str(refused.value)
    assert "(name) takes 4,000 bytes" in str(refused.value)
    assert tables(target) == set()  # refused in the plan: nothing created

    report = dbcrate.restore(archive, target, exclude=["tag"])
    assert tables(target) - {"dbcrate_journal"} == {"doc", "page", "note"}
    warnings = "\n".join(report.warnings)
    assert "column doc.node: created with length 767" in warnings
    assert "index page_title_code on page (title, code): built on the first 384 of title, " \
           "384 of code" in warnings
    # the short column whole, the long one on what is left: 3,072 - 10 x 4 = 3,032 bytes
    assert "index note_code_body on note (code, body): built on the first 758 of body" in warnings
    for table, key in (("doc", "productid, node"), ("page", "id"), ("note", "id")):
        assert rows(src, f"SELECT * FROM {table} ORDER BY {key}") == \
            rows(target, f"SELECT * FROM {table} ORDER BY {key}")
    assert rows(target, "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS WHERE "
                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'doc' AND COLUMN_NAME = 'node'") \
        == [(767,)]
    assert set(rows(target, "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM "
                    "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
                    "TABLE_NAME IN ('doc', 'page', 'note')")) == {
        ("PRIMARY", "productid", None), ("PRIMARY", "node", None), ("PRIMARY", "id", None),
        ("page_title_code", "title", 384), ("page_title_code", "code", 384),
        ("note_code_body", "code", None), ("note_code_body", "body", 758)}
