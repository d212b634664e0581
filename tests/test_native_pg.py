"""PostgreSQL native schema: capture with pg_dump, the statement guard, and a round trip of the
captured objects into a fresh database (its pg_dump -s equals the source's)."""

from __future__ import annotations

import difflib
import re
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import engine_of, rows, run_sql

from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.dialects.native_pg import SESSION_SETUP, capture, find_tool, pg_environment
from dbcrate.dialects.native_pg_guard import check_object
from dbcrate.model.native import NativeObject, NativeSchema

SAMPLE = [
    "CREATE SCHEMA shop",
    "CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN shop.posint AS integer CHECK (VALUE > 0)",
    "CREATE TYPE shop.pair AS (a integer, b text)",
    "CREATE SEQUENCE shop.loose_seq START 100",
    """CREATE TABLE shop.item (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL,
        qty shop.posint,
        price numeric(10,2) CHECK (price >= 0),
        total numeric GENERATED ALWAYS AS (price * 2) STORED,
        feel shop.mood DEFAULT 'ok',
        created timestamptz DEFAULT now(),
        code text DEFAULT lower(md5(random()::text)),
        body tsvector,
        p shop.pair)""",
    "CREATE INDEX item_body_gin ON shop.item USING gin (body)",
    "CREATE INDEX item_body_gist ON shop.item USING gist (body)",
    "CREATE INDEX item_cheap ON shop.item (price) WHERE price < 10",
    """CREATE TABLE public.measure (id int, at date NOT NULL, v int)
       PARTITION BY RANGE (at)""",
    "CREATE TABLE public.measure_2023 PARTITION OF public.measure "
    "FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
    "CREATE TABLE public.measure_2024 PARTITION OF public.measure "
    "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE VIEW shop.cheap AS SELECT id, name FROM shop.item WHERE price < 10",
    "CREATE MATERIALIZED VIEW shop.totals AS SELECT feel, count(*) AS n FROM shop.item "
    "GROUP BY feel",
    """CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.created := now(); RETURN NEW; END $$""",
    "CREATE TRIGGER item_touch BEFORE UPDATE ON shop.item FOR EACH ROW "
    "EXECUTE FUNCTION shop.touch()",
    "CREATE TABLE shop.log (id serial PRIMARY KEY, msg text)",
    "CREATE RULE log_noupdate AS ON UPDATE TO shop.log DO INSTEAD NOTHING",
    "ALTER TABLE shop.item ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY item_mine ON shop.item USING (name <> 'secret')",
    "COMMENT ON TABLE shop.item IS 'the items; -- not a statement'",
    "COMMENT ON COLUMN shop.item.qty IS 'how many'",
    "CREATE TABLE public.dbcrate_journal (archive_id text)",
    "CREATE COLLATION shop.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
    "CREATE AGGREGATE shop.textcat_all(text) (SFUNC = textcat, STYPE = text, INITCOND = '')",
    "GRANT SELECT ON shop.cheap TO PUBLIC",
    "CREATE TABLE shop.booking (id int PRIMARY KEY, item int REFERENCES shop.item(id),"
    " during tsrange, who text COLLATE shop.ci, EXCLUDE USING gist (during WITH &&))",
    "CREATE TABLE shop.booking_old () INHERITS (shop.booking)",
    "INSERT INTO shop.item (name, qty, price) VALUES ('a', 1, 5)",
    "SELECT nextval('shop.loose_seq')",
]


def _find(schema: NativeSchema, kind: str, name: str) -> NativeObject:
    hits = [o for o in schema.objects if o.kind == kind and o.name == name]
    assert hits, f"{kind} {name} not captured: {sorted(schema.kinds())}"
    return hits[0]


def _schema_dump(url: str) -> str:
    path, _ = find_tool("pg_dump")
    out = subprocess.run([path, "-s", "--no-owner", "--no-privileges",
                          "--exclude-table=*.dbcrate_journal"],
                         env=pg_environment(sa.engine.make_url(url)), capture_output=True,
                         text=True, check=True).stdout
    out = re.sub(r"^\\(un)?restrict .*$", "", out, flags=re.M)
    return "\n".join(line for line in out.splitlines() if not line.startswith("-- Dumped "))


def _apply(url: str, objects: list[NativeObject]) -> None:
    eng = engine_of(url)
    with eng.connect() as c:
        for stmt in SESSION_SETUP:
            c.exec_driver_sql(stmt)
        for o in objects:
            c.exec_driver_sql(o.sql.replace("%", "%%"))
    eng.dispose()


def test_capture_guard_and_round_trip(dbs) -> None:
    src = dbs.new("postgresql")
    run_sql(src, *SAMPLE)
    started = time.monotonic()
    native = capture(src)
    elapsed = time.monotonic() - started
    print(f"capture: {elapsed:.2f}s, {len(native.objects)} objects, {native.kinds()}")
    assert native.engine == "postgresql" and native.tool and native.tool.startswith("pg_dump")
    expect = [("SCHEMA", "shop", None, "pre-data"), ("TYPE", "mood", "shop", "pre-data"),
              ("DOMAIN", "posint", "shop", "pre-data"), ("TYPE", "pair", "shop", "pre-data"),
              ("SEQUENCE", "loose_seq", "shop", "pre-data"),
              ("TABLE", "item", "shop", "pre-data"), ("TABLE", "measure", "public", "pre-data"),
              ("TABLE", "measure_2024", "public", "pre-data"),
              ("TABLE ATTACH", "measure_2023", "public", "pre-data"),
              ("VIEW", "cheap", "shop", "pre-data"),
              ("MATERIALIZED VIEW", "totals", "shop", "pre-data"),
              ("FUNCTION", "touch()", "shop", "pre-data"),
              ("COMMENT", "TABLE item", "shop", "pre-data"),
              ("SEQUENCE SET", "loose_seq", "shop", "data"),
              ("INDEX", "item_body_gin", "shop", "post-data"),
              ("INDEX", "item_body_gist", "shop", "post-data"),
              ("INDEX", "item_cheap", "shop", "post-data"),
              ("CONSTRAINT", "item_pkey", "shop", "post-data"),
              ("TRIGGER", "item_touch", "shop", "post-data"),
              ("RULE", "log_noupdate", "shop", "post-data"),
              ("POLICY", "item_mine", "shop", "post-data"),
              ("ROW SECURITY", "item", "shop", "post-data"),
              ("MATERIALIZED VIEW DATA", "totals", "shop", "post-data"),
              ("COLLATION", "ci", "shop", "pre-data"),
              ("AGGREGATE", "textcat_all(text)", "shop", "pre-data"),
              ("ACL", "TABLE cheap", "shop", "pre-data"),
              ("TABLE", "booking_old", "shop", "pre-data"),
              ("CONSTRAINT", "booking_during_excl", "shop", "post-data"),
              ("FK CONSTRAINT", "booking_item_fkey", "shop", "post-data")]
    for kind, name, schema, section in expect:
        o = _find(native, kind, name)
        assert (o.schema, o.section) == (schema, section), o
    assert _find(native, "SEQUENCE SET", "loose_seq").sql == \
        "SELECT pg_catalog.setval('shop.loose_seq', 100, true);"
    assert _find(native, "TRIGGER", "item_touch").table == "item"
    assert not [o for o in native.objects if "dbcrate_journal" in o.name]
    for o in native.objects:
        check_object(o)
    assert NativeSchema.from_json(native.to_json()) == native

    copy = dbs.new("postgresql")
    _apply(copy, native.of_section("pre-data"))
    _apply(copy, native.of_section("data"))
    _apply(copy, native.of_section("post-data"))
    source_ddl, copy_ddl = _schema_dump(src), _schema_dump(copy)
    assert copy_ddl == source_ddl, "\n".join(difflib.unified_diff(
        source_ddl.splitlines(), copy_ddl.splitlines(), lineterm=""))
    assert rows(copy, "SELECT last_value FROM shop.loose_seq") == [(100,)]


HOSTILE = [
    ("FUNCTION", "DO $$ BEGIN PERFORM pg_sleep(0); END $$"),
    ("TABLE", "COPY public.canary FROM PROGRAM 'touch /tmp/x'"),
    ("TABLE", "ALTER SYSTEM SET work_mem = '1GB'"),
    ("SCHEMA", "CREATE ROLE intruder SUPERUSER"),
    ("ACL", "ALTER ROLE postgres NOSUPERUSER"),
    ("INDEX", "CREATE INDEX i ON public.canary (id); DROP TABLE public.canary"),
    ("INDEX", "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    ("INDEX", "CREATE INDEX i ON public.canary (id); --\nDROP TABLE public.canary"),
    ("COMMENT", "COMMENT ON TABLE public.canary IS 'x'; /* hidden */ DROP TABLE public.canary"),
    ("COMMENT", "COMMENT ON TABLE public.canary IS 'x';\r\nDELETE FROM public.canary"),
    ("SEQUENCE SET", "SELECT pg_catalog.setval('s', (SELECT count(*) FROM pg_authid), true)"),
    ("SEQUENCE SET", "SELECT pg_catalog.pg_read_file('/etc/passwd')"),
    ("TABLE", "CREATE TABLE public.t (a int); SET session_authorization = 'postgres'"),
    ("TABLE", "CREATE TABLE public.t AS SELECT pg_sleep(10)"),
    ("FUNCTION", "CREATE FUNCTION public.f() RETURNS int LANGUAGE c AS '/tmp/evil.so', 'f'"),
    ("SCHEMA", "CREATE SCHEMA s CREATE TABLE t (a int)"),
    ("VIEW", "CREATE VIEW v AS SELECT 1; SELECT public.f()"),
    ("MATERIALIZED VIEW", "CREATE MATERIALIZED VIEW m AS SELECT pg_sleep(10)"),
    ("TRIGGER", "ALTER TABLE public.canary DROP COLUMN id"),
    ("NOT A KIND", "CREATE SCHEMA s"),
    ("TABLE", "CREATE TABLE ("),
]


@pytest.mark.parametrize(("kind", "sql"), HOSTILE)
def test_guard_refuses(kind: str, sql: str) -> None:
    obj = NativeObject(kind=kind, name="x", section="pre-data", sql=sql, schema="public")
    with pytest.raises(UnsafeNativeSql) as info:
        check_object(obj)
    assert f"{kind} public.x" in info.value.message
    assert info.value.exit_code == 6


def test_guard_accepts_pg_dump_forms() -> None:
    ok = [("TABLE", "SET default_table_access_method = heap;\nCREATE TABLE public.t (a int);"
                    "\nALTER TABLE public.t OWNER TO postgres;"),
          ("FUNCTION", "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ DROP TABLE x;"
                       " SELECT 1 $$;\nALTER FUNCTION public.f() OWNER TO postgres;"),
          ("SEQUENCE SET", "SELECT pg_catalog.setval('public.s', 4, true);"),
          ("ACL", "GRANT SELECT ON TABLE public.t TO PUBLIC;"),
          ("FK CONSTRAINT", "ALTER TABLE ONLY public.a ADD CONSTRAINT a_fk FOREIGN KEY (b) "
                            "REFERENCES public.b(id);")]
    for kind, sql in ok:
        check_object(NativeObject(kind=kind, name="x", section="pre-data", sql=sql))


def test_nothing_runs_in_guard(dbs) -> None:
    url = dbs.new("postgresql")
    run_sql(url, "CREATE TABLE public.canary (id int)", "INSERT INTO public.canary VALUES (1)")
    for kind, sql in HOSTILE:
        with pytest.raises(UnsafeNativeSql):
            check_object(NativeObject(kind=kind, name="x", section="pre-data", sql=sql))
    assert rows(url, "SELECT id FROM public.canary") == [(1,)]


def test_tool_missing_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbcrate.errors import UsageError
    with pytest.raises(UsageError, match="older than the server"):
        find_tool("pg_dump", server_major=99)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match="not found"):
        find_tool("pg_dump_nope")


def test_schema_filters_and_password_in_a_private_file(dbs, tmp_path: Path) -> None:
    url = dbs.new("postgresql")
    run_sql(url, "CREATE SCHEMA a", "CREATE TABLE a.t (id int)", "CREATE TABLE public.u (id int)")
    only_a = capture(url, schemas_include=["a"])
    assert {o.schema or o.name for o in only_a.objects} == {"a"}  # SCHEMA a has no schema
    no_a = capture(url, schemas_exclude=["a"])
    assert "a" not in {o.schema for o in no_a.objects}
    assert any(o.name == "u" for o in no_a.objects)
    env = pg_environment(sa.engine.make_url("postgresql+psycopg://bob:s3:cr\\et@h:5433/db"),
                         tmp_path)
    assert (env["PGUSER"], env["PGPORT"], env["PGDATABASE"]) == ("bob", "5433", "db")
    assert "PGPASSWORD" not in env and "s3" not in " ".join(env.values())
    passfile = Path(env["PGPASSFILE"])
    assert passfile.read_text() == "*:*:*:*:s3\\:cr\\\\et\n"
    assert passfile.stat().st_mode & 0o777 == 0o600
