"""MariaDB builds a table's indexes with one ALTER TABLE (one scan of the table); names that
need quoting, prefix lengths and unique constraints survive it, and a failure falls back to one
statement per index, so the good indexes are built and the error names the bad one."""

from __future__ import annotations

import sqlalchemy as sa

from dbcrate.ddl import CombinedDDL
from dbcrate.dialects import dialect_for
from dbcrate.restore import TableResult, _Runner, _step

from conftest import Databases, engine_of


def _table(md: sa.MetaData) -> sa.Table:
    return sa.Table("weird `name`", md,
                    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column("a b", sa.String(200)), sa.Column("c", sa.Integer))


def _indexes(engine: sa.Engine) -> dict[str, tuple[bool, list[str]]]:
    insp = sa.inspect(engine)
    out = {ix["name"]: (bool(ix["unique"]), list(ix["column_names"]))
           for ix in insp.get_indexes("weird `name`")}
    out.update({uc["name"]: (True, list(uc["column_names"]))
                for uc in insp.get_unique_constraints("weird `name`")})
    return out


def test_one_alter_builds_every_index(dbs: Databases) -> None:
    url = dbs.new("mysql")
    engine = engine_of(url)
    try:
        md = sa.MetaData()
        t = _table(md)
        md.create_all(engine)
        with engine.connect() as c:
            c.execute(t.insert(), [{"id": i, "a b": f"v{i}", "c": i % 7} for i in range(100)])
        ix_one = sa.Index("ix one", t.c["a b"], mysql_length=10)
        ix_two = sa.Index("ix`2", t.c.c)
        unique = sa.UniqueConstraint(t.c["a b"], name="uq a")
        t.append_constraint(unique)
        elements = [sa.schema.CreateIndex(ix_one), sa.schema.CreateIndex(ix_two),
                    sa.schema.AddConstraint(unique)]
        dialect = dialect_for(engine)
        sql = dialect.combined_index_ddl(elements)
        assert sql is not None and sql.startswith("ALTER TABLE `weird ``name``` ADD INDEX")
        assert sql.count(" ADD ") == 3
        result = TableResult("weird `name`", status="restored")
        _step(_Runner(dialect, single=False), [CombinedDDL(sql, elements)], result, "index")
        assert result.status == "restored", result.error
        with engine.connect() as c:  # the server's own list (no reflection parsing)
            found = {(name, col) for name, col in c.exec_driver_sql(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'weird `name`'")}
        assert found == {("PRIMARY", "id"), ("ix one", "a b"), ("ix`2", "c"), ("uq a", "a b")}
    finally:
        engine.dispose()


def test_a_failing_index_does_not_take_the_others_down(dbs: Databases) -> None:
    url = dbs.new("mysql")
    engine = engine_of(url)
    try:
        md = sa.MetaData()
        t = _table(md)
        md.create_all(engine)
        with engine.connect() as c:  # c repeats: a unique index on it fails
            c.execute(t.insert(), [{"id": i, "a b": f"v{i}", "c": i % 7} for i in range(100)])
        good = sa.Index("ix_good", t.c["a b"])
        bad = sa.Index("ix_bad", t.c.c, unique=True)
        elements = [sa.schema.CreateIndex(good), sa.schema.CreateIndex(bad)]
        dialect = dialect_for(engine)
        sql = dialect.combined_index_ddl(elements)
        assert sql is not None
        result = TableResult("weird `name`", status="restored")
        _step(_Runner(dialect, single=False), [CombinedDDL(sql, elements)], result, "index")
        assert result.status == "failed"
        assert result.error is not None and "ix_bad" in result.error
        assert "Duplicate entry" in result.error
        found = _indexes(engine)
        assert "ix_good" in found and "ix_bad" not in found
    finally:
        engine.dispose()


def test_forms_it_does_not_know_run_one_by_one(dbs: Databases) -> None:
    url = dbs.new("mysql")
    engine = engine_of(url)
    try:
        md = sa.MetaData()
        t = _table(md)
        dialect = dialect_for(engine)
        using = sa.schema.CreateIndex(sa.Index("ix_using", t.c.c, mysql_using="btree"))
        plain = sa.schema.CreateIndex(sa.Index("ix_plain", t.c.id))
        assert dialect.combined_index_ddl([using, plain]) is None
        assert dialect.combined_index_ddl([plain]) is None  # one index: nothing to combine
    finally:
        engine.dispose()
