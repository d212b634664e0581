"""Databases spread over several PostgreSQL schemas (issue 16, "-n/--schema"): every schema
but the engine's own is dumped by default, as pg_dump does; ``-n``/``-N`` choose; ``-t``
takes ``schema.table``. The spine is a schema nobody on this project wrote (AdventureWorks,
examples/adventureworks: 68 tables in five schemas, views in five more, foreign keys and
domains across them), given back the same by a native restore: ``pg_dump --schema-only``
of the copy equals the source's line for line, and so do all the rows. Then the portable
paths: the same tables recreated from the portable schema (schemas created), into existing
tables, and into engines without schemas, where tables keep their own names and two tables
of one name are refused before anything is written.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import dbcrate
from dbcrate.dump.plan import plan as plan_dump
from dbcrate.errors import NotPortable, UnknownTable, UsageError
from dbcrate.model.manifest import Manifest
from test_native_restore_pg import _psql, same_database

from conftest import ROOT, Databases, require, rows, run_cli, run_sql, tables

AW = ROOT / "examples" / "adventureworks"
SCHEMAS = ["humanresources", "person", "production", "purchasing", "sales"]


@pytest.fixture(scope="module")
def adventureworks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """AdventureWorks' schema, without its CSV rows (not bundled), with rows in a chain of
    tables across schemas: sales.countryregioncurrency refers to person.countryregion."""
    require("postgresql")
    holder = Databases(tmp_path_factory.mktemp("aw"))
    url = holder.new("postgresql")
    script = gzip.decompress((AW / "install.sql.gz").read_bytes()).decode()
    script = "\n".join(line for line in script.splitlines() if not line.startswith("\\copy"))
    # the script's one inline INSERT (product reviews of products the CSV rows would hold)
    # makes its foreign key fail, as intended upstream without the data: not ON_ERROR_STOP
    _psql_lenient(url, script)
    run_sql(url,
            "INSERT INTO person.countryregion (countryregioncode, name) "
            "VALUES ('US', 'United States'), ('DE', 'Germany'), ('FR', 'France')",
            "INSERT INTO sales.currency (currencycode, name) VALUES ('USD', 'US Dollar'), "
            "('EUR', 'Euro')",
            "INSERT INTO sales.countryregioncurrency (countryregioncode, currencycode) "
            "VALUES ('US', 'USD'), ('DE', 'EUR'), ('FR', 'EUR')",
            "INSERT INTO humanresources.department (name, groupname) "
            "VALUES ('Engineering', 'Research and Development'), ('Sales', 'Sales')")
    yield url
    holder.drop_all()


def _psql_lenient(url: str, script: str) -> None:
    import subprocess

    import sqlalchemy as sa
    parsed = sa.engine.make_url(url)
    subprocess.run(["psql", "-q", "-h", parsed.host or "127.0.0.1", "-p",
                    str(parsed.port or 5432), "-U", parsed.username or "postgres", "-d",
                    parsed.database or ""], input=script.encode(), check=True,
                   capture_output=True)


def test_every_schema_is_dumped_and_given_back_the_same(adventureworks: str, dbs: Databases,
                                                        tmp_path: Path) -> None:
    archive = tmp_path / "aw.crate"
    result = dbcrate.dump(adventureworks, archive, jobs=2)
    assert not any("schema" in w for w in result.warnings), result.warnings
    manifest = dbcrate.open_archive(archive).manifest
    assert manifest.format_version == 4
    names = [t.name for t in manifest.tables]
    assert len(names) == 68
    assert {n.split(".")[0] for n in names} == set(SCHEMAS)
    table = manifest.table("sales.countryregioncurrency").schema
    assert (table.schema, table.sql_name) == ("sales", "countryregioncurrency")
    (fk,) = [f for f in table.foreign_keys if f.ref_schema == "person"]
    assert (fk.ref_table, fk.ref_sql_name) == ("person.countryregion", "countryregion")
    native = manifest.native
    assert native is not None and native.kinds()["SCHEMA"] == 10
    copy = dbs.new("postgresql")
    report = dbcrate.restore(archive, copy)
    assert report.ok, [(t.name, t.error) for t in report.tables if t.status != "restored"]
    same_database(adventureworks, copy)


def test_schema_patterns_choose_what_is_dumped(adventureworks: str, dbs: Databases,
                                               tmp_path: Path) -> None:
    archive = tmp_path / "sales.crate"
    plan = plan_dump(adventureworks, dbcrate.DumpOptions(schemas=["sa*"]))
    assert plan.schemas == ("sa", "sales")
    dbcrate.dump(adventureworks, archive, schemas=["sales"])
    names = [t.name for t in dbcrate.open_archive(archive).manifest.tables]
    assert names and all(n.startswith("sales.") for n in names)
    # a foreign key to a schema the dump left out is left out, and said, as with pg_restore
    # into a database without it (the schema's domains in public are the user's to add)
    copy = dbs.new("postgresql")
    _psql(copy, b'CREATE DOMAIN public."Name" varchar(50); CREATE DOMAIN public."Flag" boolean '
                b'NOT NULL; CREATE DOMAIN public."AccountNumber" varchar(15); CREATE DOMAIN '
                b'public."OrderNumber" varchar(25); CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    report = dbcrate.restore(archive, copy, include=["sales.countryregioncurrency",
                                                     "sales.currency"])
    assert report.ok, [(t.name, t.error) for t in report.tables]
    assert rows(copy, "SELECT count(*) FROM sales.countryregioncurrency") == [(3,)]
    notes = {n["name"]: n["reason"] for t in report.tables for n in t.not_recreated}
    assert notes["FK_CountryRegionCurrency_CountryRegion_CountryRegionCode"] == \
        "table 'person.countryregion' is neither in the archive nor in the target"
    # -N leaves schemas out; -T and -t take schema.table and globs over it
    plan = plan_dump(adventureworks, dbcrate.DumpOptions(
        exclude_schemas=["p*", "h*"], include=["sales.currency*", "sales.sales*"],
        exclude=["sales.salesorder*"]))
    assert [t.name for t in plan.tables] == [
        "sales.currency", "sales.currencyrate", "sales.salesperson",
        "sales.salespersonquotahistory", "sales.salesreason", "sales.salestaxrate",
        "sales.salesterritory", "sales.salesterritoryhistory"]
    with pytest.raises(UnknownTable, match="no schema in the source matches 'nope'"):
        plan_dump(adventureworks, dbcrate.DumpOptions(schemas=["nope"]))


def test_public_tables_keep_their_names_and_match_public_dot(dbs: Databases,
                                                            tmp_path: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE SCHEMA a", "CREATE TABLE t (id integer PRIMARY KEY)",
            "CREATE TABLE a.t (id integer PRIMARY KEY, p integer REFERENCES public.t (id))",
            "INSERT INTO t VALUES (1), (2)", "INSERT INTO a.t VALUES (10, 1), (20, 2)")
    plan = plan_dump(source, dbcrate.DumpOptions(include=["public.t"]))
    assert [t.name for t in plan.tables] == ["t"]
    archive = tmp_path / "two.crate"
    dbcrate.dump(source, archive)
    manifest = dbcrate.open_archive(archive).manifest
    assert [t.name for t in manifest.tables] == ["a.t", "t"]
    assert manifest.table("t").schema.schema is None
    # recreated through the portable schema: the schema is created, the key across schemas too
    portable = dbs.new("postgresql")
    report = dbcrate.restore(archive, portable, ddl="portable")
    assert report.ok
    assert rows(portable, "SELECT id, p FROM a.t ORDER BY id") == [(10, 1), (20, 2)]
    assert rows(portable, "SELECT confrelid::regclass::text FROM pg_constraint WHERE "
                          "contype = 'f'") == [("t",)]
    # into the tables that exist: the archive's schemas are the target's
    report = dbcrate.restore(archive, portable, data_only=True, clean=True)
    assert report.ok and rows(portable, "SELECT count(*) FROM a.t") == [(2,)]
    code, out, _ = run_cli("ls", str(archive), "--against", portable, "--json")
    assert code == 0
    listed = json.loads(out)
    assert {r["name"]: r["present"] for r in listed["tables"]} == {"a.t": True, "t": True}
    # an engine without schemas: one namespace, two tables named t are refused up front
    sqlite = dbs.new("sqlite")
    with pytest.raises(NotPortable, match="its name 't' is that of 't' here"):
        dbcrate.restore(archive, sqlite)
    assert tables(sqlite) == set()
    report = dbcrate.restore(archive, sqlite, exclude=["public.t"])
    assert report.ok and rows(sqlite, "SELECT id, p FROM t ORDER BY id") == [(10, 1), (20, 2)]


def test_adventureworks_into_engines_without_schemas(adventureworks: str, dbs: Databases,
                                                     tmp_path: Path) -> None:
    archive = tmp_path / "aw.crate"
    dbcrate.dump(adventureworks, archive, include=["person.countryregion", "sales.currency",
                                                   "sales.countryregioncurrency"])
    for kind in ("sqlite", "mariadb"):
        target = dbs.new(kind)
        report = dbcrate.restore(archive, target)
        assert report.ok, (kind, [(t.name, t.error) for t in report.tables])
        assert rows(target, "SELECT countryregioncode, currencycode FROM countryregioncurrency "
                            "ORDER BY 1") == [("DE", "EUR"), ("FR", "EUR"), ("US", "USD")]
    # a domain's values are its base type's: varchar(50) (a key of text is refused there)
    name = dbcrate.open_archive(archive).manifest.table("sales.currency").schema.column("name")
    assert (name.type.kind, name.type.length, name.engine_type) == ("string", 50, "domain:Name")


def test_engines_without_schemas_refuse_schema_options(dbs: Databases, tmp_path: Path) -> None:
    source = dbs.new("sqlite")
    run_sql(source, "CREATE TABLE t (id integer PRIMARY KEY)")
    with pytest.raises(UsageError, match="no schemas inside a database"):
        dbcrate.dump(source, tmp_path / "x.crate", schemas=["main"])
    assert not (tmp_path / "x.crate").exists()
    code, _, err = run_cli("dump", source, str(tmp_path / "y.crate"), "-N", "x")
    assert code == 2 and "--exclude-schema PATTERN" in err, err


def test_a_schema_field_needs_format_version_4(tmp_path: Path) -> None:
    table = {"name": "s.t", "schema": "s", "columns": [
        {"name": "id", "type": {"kind": "int32"}, "engine_type": "integer"}]}
    manifest = {"format": "dbcrate-archive", "format_version": 3, "tables": [
        {"name": "s.t", "schema": table, "chunks": []}]}
    with pytest.raises(Exception, match="needs format version 4"):
        Manifest.from_json(json.dumps(manifest).encode())
    manifest["format_version"] = 4
    assert Manifest.from_json(json.dumps(manifest).encode()).tables[0].schema.sql_name == "t"
    table["name"] = "other.t"
    with pytest.raises(Exception, match=re.escape("must be named 's' + '.' + its name")):
        Manifest.from_json(json.dumps(manifest).encode())
