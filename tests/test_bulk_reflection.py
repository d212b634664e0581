"""Reflecting many tables at once (``Dialect.reflect_many``) gives each table exactly what
reflecting it alone gives, whether the bulk reads name the tables or read the whole schema
(``reflection.UNFILTERED_MIN_TABLES``: a dump of every table of a big schema)."""

from __future__ import annotations

from typing import Any

import pytest

from dbcrate.dialects import reflection
from dbcrate.dump.source import open_snapshot

from conftest import Databases, run_sql

TABLES = reflection.UNFILTERED_MIN_TABLES + 5


def _schema(kind: str) -> list[str]:
    """``TABLES`` tables of a few shapes: keys, indexes, foreign keys, checks, comments."""
    serial = {"postgresql": "serial", "mysql": "integer AUTO_INCREMENT",
              "sqlite": "integer"}[kind]
    ddl = [f"CREATE TABLE parent (id {serial} PRIMARY KEY, code varchar(10) UNIQUE)"]
    for i in range(1, TABLES):
        shape = i % 3
        if shape == 0:
            ddl.append(f"CREATE TABLE t{i:03d} (id integer PRIMARY KEY, p integer REFERENCES "
                       f"parent (id), v varchar(20) NOT NULL, CHECK (id > 0))")
            ddl.append(f"CREATE INDEX t{i:03d}_v ON t{i:03d} (v)")
        elif shape == 1:
            ddl.append(f"CREATE TABLE t{i:03d} (a integer, b varchar(5), n numeric(10, 2))")
        else:
            ddl.append(f"CREATE TABLE t{i:03d} (a integer NOT NULL, b integer NOT NULL, "
                       f"PRIMARY KEY (a, b))")
            ddl.append(f"CREATE UNIQUE INDEX t{i:03d}_ba ON t{i:03d} (b, a)")
    if kind == "postgresql":
        ddl.append("COMMENT ON TABLE t001 IS 'the first'")
    return ddl


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_bulk_reflection_equals_one_table_at_a_time(dbs: Databases, kind: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url = dbs.new(kind)
    run_sql(url, *_schema(kind))
    filters: list[Any] = []
    real = reflection._filter

    def spy(insp: Any, schema: str | None, names: list[str]) -> list[str] | None:
        filters.append(real(insp, schema, names))
        return filters[-1]

    monkeypatch.setattr(reflection, "_filter", spy)
    with open_snapshot(url) as snapshot:
        dialect, conn = snapshot.dialect, snapshot.conn
        names = sorted(dialect.list_tables(conn))
        assert len(names) == TABLES
        alone = {n: dialect.reflect(conn, n).to_dict() for n in names}
        every = dialect.reflect_many(conn, names)  # the whole schema: read unfiltered
        some = dialect.reflect_many(conn, names[:-1])  # not all of it: by name
        few = dialect.reflect_many(conn, names[:3])
    assert filters == [None, names[:-1], names[:3]]
    assert [t.to_dict() for t in every] == [alone[n] for n in names]
    assert [t.to_dict() for t in some] == [alone[n] for n in names[:-1]]
    assert [t.to_dict() for t in few] == [alone[n] for n in names[:3]]
    t003 = alone["t003"]
    assert t003["primary_key"] == ["id"] and t003["foreign_keys"] and t003["indexes"]
