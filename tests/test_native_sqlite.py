"""SQLite's native schema module on its own (issue 16): the capture of ``sqlite_master``, a
restore done by hand from the captured objects into a new file (its ``sqlite_master``, pragmas,
counters and rows equal the source's), the guard against hostile SQL, the settings' statements,
and the guard's one-pass statement splitter against SQLite's own ``complete_statement``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.dialects.native_sqlite import (
    SqliteNative,
    capture,
    check_object,
    restore_settings_sql,
    split_first,
)
from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.native import NativeObject, NativeSchema

RICH = """
PRAGMA user_version = 7;
PRAGMA application_id = 1234;
CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
CREATE TABLE s (id INTEGER PRIMARY KEY, n INTEGER NOT NULL,
                t TEXT COLLATE NOCASE CHECK (length(t) < 10)) STRICT;
CREATE TABLE g (id INTEGER PRIMARY KEY AUTOINCREMENT, a INT,
                b INT GENERATED ALWAYS AS (a * 2) VIRTUAL,
                c INT GENERATED ALWAYS AS (a + 1) STORED) -- a comment at the end
;
CREATE INDEX g_part ON g (a) WHERE a > 1;
CREATE INDEX g_expr ON g (abs(a));
CREATE VIEW v AS SELECT id, b FROM g;
CREATE TABLE log (msg TEXT, "semi;colon" TEXT DEFAULT 'x;y');
CREATE TRIGGER g_ins AFTER INSERT ON g BEGIN
  INSERT INTO log (msg) VALUES ('ins ' || new.id); INSERT INTO log (msg) VALUES ('two;');
  SELECT CASE WHEN new.a < 0 THEN RAISE(ABORT, 'neg; END') END;
END;
CREATE TRIGGER v_del INSTEAD OF DELETE ON v BEGIN DELETE FROM g WHERE id = old.id; END;
CREATE UNIQUE INDEX IF NOT EXISTS s_n ON s (n);
CREATE TABLE dbcrate_journal (x);
INSERT INTO kv VALUES ('a', x'00ff');
INSERT INTO s VALUES (1, 2, 'Abc');
INSERT INTO g (a) VALUES (1), (5), (9);
DELETE FROM g WHERE a = 9;
"""
TABLES = ("kv", "s", "g", "log")


def _db(path: Path, script: str) -> Path:
    con = sqlite3.connect(path)
    con.executescript(script)
    con.close()
    return path


def _capture(path: Path | str, tables: list[str] | None = None) -> NativeSchema:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return capture(conn, tables)
    finally:
        engine.dispose()


def _master(con: sqlite3.Connection) -> list[tuple[str, ...]]:
    return con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                       "WHERE name <> 'dbcrate_journal' ORDER BY name").fetchall()


@pytest.fixture
def rich(tmp_path: Path) -> Iterator[Path]:
    yield _db(tmp_path / "rich.db", RICH)


def test_capture_kinds_sections_order_and_settings(rich: Path) -> None:
    native = _capture(rich)
    assert native.engine == "sqlite" and native.tool is None
    assert native.server_version == sqlite3.sqlite_version
    got = [(o.kind, o.name, o.section, o.table) for o in native.objects]
    assert got == [
        ("TABLE", "kv", "pre-data", None), ("TABLE", "s", "pre-data", None),
        ("TABLE", "g", "pre-data", None), ("TABLE", "log", "pre-data", None),
        ("VIEW", "v", "pre-data", None),
        ("INDEX", "g_part", "post-data", "g"), ("INDEX", "g_expr", "post-data", "g"),
        ("TRIGGER", "g_ins", "post-data", "g"), ("TRIGGER", "v_del", "post-data", "v"),
        ("INDEX", "s_n", "post-data", "s")]
    assert native.settings == {"user_version": "7", "application_id": "1234",
                               "sqlite_sequence:g": "3"}
    assert all(o.sql.endswith(";") for o in native.objects)
    # as written, and the trailing comment does not swallow the ';'
    g = next(o for o in native.objects if o.name == "g")
    assert g.sql.endswith("-- a comment at the end\n;") or g.sql.endswith(") ;") \
        or g.sql.endswith(");"), g.sql
    assert "STRICT" in native.objects[1].sql and "WITHOUT ROWID" in native.objects[0].sql


def test_capture_selection_keeps_views_and_leaves_out_the_others(rich: Path) -> None:
    native = _capture(rich, ["g"])
    assert [o.name for o in native.objects] == ["g", "v", "g_part", "g_expr", "g_ins", "v_del"]
    assert native.settings["sqlite_sequence:g"] == "3"
    none = _capture(rich, ["kv"])
    assert "sqlite_sequence:g" not in none.settings
    assert [o.name for o in none.objects] == ["kv", "v", "v_del"]


def _restore_by_hand(native: NativeSchema, source: Path, target: Path) -> None:
    """What a same-engine restore does: pre-data, the rows (INSERT ... SELECT from the
    ATTACHed source, generated columns left out), the settings, post-data."""
    for obj in native.objects:
        check_object(obj)
    con = sqlite3.connect(target, isolation_level=None)
    try:
        for obj in native.of_section("pre-data"):
            con.execute(obj.sql)
        assert not native.of_section("data")
        con.execute("ATTACH DATABASE ? AS src", (str(source),))
        for obj in native.of_section("pre-data"):
            if obj.kind != "TABLE":
                continue
            cols = ", ".join('"' + r[1].replace('"', '""') + '"' for r in con.execute(
                "SELECT * FROM pragma_table_xinfo(?) WHERE hidden = 0", (obj.name,)))
            quoted = '"' + obj.name.replace('"', '""') + '"'
            con.execute(f"INSERT INTO main.{quoted} ({cols}) SELECT {cols} FROM src.{quoted}")
        con.execute("DETACH DATABASE src")
        for sql in restore_settings_sql(native):
            con.execute(sql)
        for obj in native.of_section("post-data"):
            con.execute(obj.sql)
    finally:
        con.close()


def test_restore_by_hand_gives_back_the_same_database(rich: Path, tmp_path: Path) -> None:
    native = _capture(rich)
    copy = tmp_path / "copy.db"
    _restore_by_hand(native, rich, copy)
    src, dst = sqlite3.connect(rich), sqlite3.connect(copy)
    try:
        assert _master(dst) == _master(src)
        for pragma in ("user_version", "application_id"):
            assert dst.execute(f"PRAGMA {pragma}").fetchone() == \
                src.execute(f"PRAGMA {pragma}").fetchone()
        assert dst.execute("PRAGMA user_version").fetchone() == (7,)
        assert dst.execute("PRAGMA application_id").fetchone() == (1234,)
        assert dst.execute("SELECT * FROM sqlite_sequence").fetchall() == [("g", 3)]
        for table in (*TABLES, "v"):
            assert dst.execute(f"SELECT * FROM {table}").fetchall() == \
                src.execute(f"SELECT * FROM {table}").fetchall()
        # the trigger did not fire on restored rows; the counter goes on after the deleted 3
        dst.execute("INSERT INTO g (a) VALUES (2)")
        assert dst.execute("SELECT max(id), count(*) FROM g").fetchone() == (4, 3)
        # the copy captures as the source did
        assert _capture(copy) == native
    finally:
        src.close()
        dst.close()


def test_json_round_trip_passes_the_guard(rich: Path) -> None:
    native = _capture(rich)
    again = NativeSchema.from_json(native.to_json())
    assert again == native
    for obj in again.objects:
        check_object(obj)
        SqliteNative().check(obj)
    assert any(";" in o.sql[:-1] for o in again.objects if o.kind == "TRIGGER")


def _obj(kind: str, name: str, sql: str, table: str | None = None) -> NativeObject:
    return NativeObject(kind=kind, name=name, section="pre-data", sql=sql, table=table)


HOSTILE = [
    ("TABLE", "t", "ATTACH DATABASE '/tmp/x.db' AS x;", "not a CREATE"),
    ("TABLE", "t", "PRAGMA writable_schema = 1;", "not a CREATE"),
    ("TABLE", "a", "CREATE TABLE a(x); DROP TABLE b;", "more than one statement"),
    ("TABLE", "a", "CREATE TABLE a(x); -- hidden\nDROP TABLE b;", "more than one"),
    ("TABLE", "a", "CREATE TABLE a(x) /* ; */; ATTACH 'x.db' AS x;", "more than one"),
    ("TABLE", "a", "CREATE TABLE a(x); /* a comment */ DROP TABLE b", "more than one"),
    ("TABLE", "a", "CREATE TABLE a(x);\v", "more than one"),
    ("TABLE", "a", "CREATE TABLE a(x); /* never closed", "more than one"),
    ("TABLE", "a", ";CREATE TABLE a(x);", "more than one"),
    ("TABLE", "a", "CREATE TABLE a(x)", "not a complete statement"),
    ("TABLE", "a", "CREATE TABLE a(x DEFAULT ';);", "not a complete statement"),
    ("TABLE", "a", "CREATE TABLE a(x);\x00DROP TABLE b;", "NUL"),
    ("TABLE", "t", "CREATE VIEW t AS SELECT 1;", "does not create a table"),
    ("TABLE", "t", "CREATE TEMP TABLE t (x);", "does not create a table"),
    ("TABLE", "t", "EXPLAIN CREATE TABLE t (x);", "not a CREATE"),
    ("TABLE", "t", "CREATE TABLE other (x);", "creates 'other'"),
    ("TABLE", "t", "CREATE TABLE aux.t (x);", "schema 'aux'"),
    ("TABLE", "aux", "CREATE TABLE aux.t (x);", "schema 'aux'"),
    ("TABLE", "t", "CREATE TABLE temp.t (x);", "schema 'temp'"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT load_extension('/tmp/evil.so');", "outside"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT \"load_extension\"('/tmp/evil.so');", "outside"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT [LOAD_EXTENSION] /* x */ ('/e.so');", "outside"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT `writefile`('/tmp/x', 'y');", "outside"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT 1 FROM a JOIN b ON readfile('/etc/passwd');",
     "outside"),
    ("TABLE", "t", "CREATE TABLE t (x DEFAULT (fts3_tokenizer('simple')));", "outside"),
    ("TRIGGER", "tr", "CREATE TRIGGER other AFTER INSERT ON t BEGIN SELECT 1; END;",
     "creates 'other'"),
    ("TRIGGER", "tr", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; "
                      "DROP TABLE canary;", "more than one"),
    ("TRIGGER", "tr", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 "
                      "END; END; DELETE FROM canary;", "more than one"),
    ("TRIGGER", "tr", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;", "not a complete"),
    ("TRIGGER", "tr", "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
     "does not create"),
    ("TRIGGER", "tr", "CREATE TRIGGER tr AFTER INSERT ON u BEGIN SELECT 1; END;",
     "on the table 'u'"),
    ("INDEX", "i", "CREATE INDEX i ON u (x);", "on the table 'u'"),
    ("INDEX", "i", "CREATE VIEW i AS SELECT 1;", "does not create an index"),
    ("SEQUENCE SET", "t", "INSERT OR REPLACE INTO sqlite_sequence(name, seq) "
                          "VALUES ('t', 42);", "not one dbcrate restores"),
    ("FUNCTION", "f", "CREATE TABLE f (x);", "not one dbcrate restores"),
]


@pytest.mark.parametrize(("kind", "name", "sql", "why"), HOSTILE)
def test_guard_refuses(kind: str, name: str, sql: str, why: str) -> None:
    table = "t" if kind in ("INDEX", "TRIGGER") else None
    with pytest.raises(UnsafeNativeSql, match=why) as info:
        check_object(_obj(kind, name, sql, table))
    assert isinstance(info.value, ArchiveCorrupt) and info.value.exit_code == 6
    assert f"{kind} {name} was refused" in info.value.message


def test_nothing_hostile_runs_and_the_guard_touches_no_database(tmp_path: Path) -> None:
    target = _db(tmp_path / "t.db", "CREATE TABLE canary (x); INSERT INTO canary VALUES (1);")
    for kind, name, sql, _ in HOSTILE:
        with pytest.raises(UnsafeNativeSql):
            check_object(_obj(kind, name, sql, "t"))
    con = sqlite3.connect(target)
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("canary",)]
    con.close()


@pytest.mark.parametrize(("kind", "name", "sql", "table"), [
    ("TABLE", "notes", "CREATE TABLE notes (edit TEXT, readfile INT);", None),
    ("TABLE", "load_extension", 'CREATE TABLE "load_extension"(x);', None),
    ("TABLE", "t", "CREATE TABLE main.t (x TEXT DEFAULT 'load_extension(1); DROP');", None),
    ("TABLE", "we;ird", 'CREATE TABLE IF NOT EXISTS [we;ird] (x);', None),
    ("TABLE", "q'\"", "CREATE TABLE 'q''\"' (x) -- trailing\n;", None),
    ("INDEX", "i", "CREATE UNIQUE INDEX IF NOT EXISTS i ON edit (x);", "edit"),
    ("TRIGGER", "tr", "CREATE TRIGGER tr BEFORE UPDATE OF a, b ON t FOR EACH ROW "
                      "WHEN new.a > 0 BEGIN INSERT INTO edit(a) VALUES (1); "
                      "UPDATE t SET b = CASE WHEN 1 THEN 2 END; END;", "t"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT 1 AS \"end;\", 'END;' /* ; */;", None),
])
def test_guard_accepts(kind: str, name: str, sql: str, table: str | None) -> None:
    check_object(_obj(kind, name, sql, table))


def test_settings_sql_from_checked_values(tmp_path: Path) -> None:
    native = NativeSchema(engine="sqlite", server_version="3", objects=(), settings={
        "user_version": "-5", "application_id": "2147483647",
        "sqlite_sequence:it's": "9223372036854775807"})
    sql = restore_settings_sql(native)
    assert sql == ["PRAGMA main.user_version = -5", "PRAGMA main.application_id = 2147483647",
                   "DELETE FROM main.sqlite_sequence WHERE name = 'it''s'",
                   "INSERT INTO main.sqlite_sequence (name, seq) VALUES "
                   "('it''s', 9223372036854775807)"]
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute("CREATE TABLE \"it's\" (id INTEGER PRIMARY KEY AUTOINCREMENT)")
    con.execute("INSERT INTO \"it's\" VALUES (4)")
    for stmt in sql:
        con.execute(stmt)
    assert con.execute("SELECT name, seq FROM sqlite_sequence").fetchall() == \
        [("it's", 9223372036854775807)]
    assert con.execute("PRAGMA application_id").fetchone() == (2147483647,)
    con.close()
    assert SqliteNative().settings_sql(native) == sql


@pytest.mark.parametrize(("key", "value"), [
    ("user_version", "7; ATTACH 'x' AS x"), ("user_version", "2147483648"),
    ("application_id", "1.5"), ("application_id", ""), ("user_version", " 7"),
    ("sqlite_sequence:t", "9223372036854775808"), ("sqlite_sequence:t", "0x10"),
])
def test_settings_sql_refuses_what_is_not_an_integer_in_range(key: str, value: str) -> None:
    native = NativeSchema(engine="sqlite", server_version="3", objects=(),
                          settings={key: value})
    with pytest.raises(UnsafeNativeSql, match=f"setting {key} was refused"):
        restore_settings_sql(native)


def test_the_planners_statistics_come_back_as_they_were(tmp_path: Path) -> None:
    """sqlite_stat1 as ANALYZE left it, stale rows included (sqlite3's .dump keeps it too):
    rows inserted from checked texts after an empty ANALYZE of the schema table."""
    native = NativeSchema(engine="sqlite", server_version="3", objects=(), settings={
        "sqlite_stat1:0": '["it\'s", null, "40"]', "sqlite_stat1:1": '["it\'s", "ix", "40 2"]',
        "sqlite_stat1:2": '["t", "t_v", "9 3 unordered sz=12"]'})
    sql = restore_settings_sql(native)
    assert sql[:2] == ["ANALYZE main.sqlite_schema", "DELETE FROM main.sqlite_stat1"]
    assert sql[2] == "INSERT INTO main.sqlite_stat1 (tbl, idx, stat) VALUES ('it''s', NULL, '40')"
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute("CREATE TABLE \"it's\" (id INTEGER PRIMARY KEY, v)")
    for stmt in sql:
        con.execute(stmt)
    assert con.execute("SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY 1, 2").fetchall() == [
        ("it's", None, "40"), ("it's", "ix", "40 2"), ("t", "t_v", "9 3 unordered sz=12")]
    con.close()


@pytest.mark.parametrize("value", [
    '["t", null, "40\'); DROP TABLE t; --"]', '["t", null]', '{"t": 1}', '["t", 5, "1"]',
    "not json", '["t", null, 40]', '["t", null, "1\\n2"]'])
def test_statistics_that_are_not_what_analyze_writes_are_refused(value: str) -> None:
    native = NativeSchema(engine="sqlite", server_version="3", objects=(),
                          settings={"sqlite_stat1:0": value})
    with pytest.raises(UnsafeNativeSql, match="setting sqlite_stat1:0 was refused"):
        restore_settings_sql(native)


NAMES = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                min_size=1, max_size=12) | st.sampled_from(
    ['a"b', "a;b", "a b", "x; DROP TABLE t", "]", "[x]", "`", "'", "--", "/*", "end;"])


@settings(max_examples=80, deadline=None)
@given(name=NAMES)
def test_any_captured_table_name_passes_and_an_appended_statement_does_not(name: str) -> None:
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            quoted = '"' + name.replace('"', '""') + '"'
            try:
                conn.exec_driver_sql(f"CREATE TABLE {quoted}(x)")
            except sa.exc.DBAPIError:
                return  # a name SQLite itself refuses (the sqlite_ prefix)
            native = capture(conn)
    finally:
        engine.dispose()
    assert [o.name for o in native.objects] == [name]
    obj = native.objects[0]
    check_object(obj)
    with pytest.raises(UnsafeNativeSql):
        check_object(_obj("TABLE", name, obj.sql + " DROP TABLE t"))
    with pytest.raises(UnsafeNativeSql):
        check_object(_obj("TABLE", name, obj.sql[:-1] + "; DROP TABLE t;"))


FRAGMENTS = st.sampled_from([
    "CREATE", "create", " ", "TRIGGER", "TEMP", "temporary", "END", "end", "BEGIN", "EXPLAIN",
    ";", ";", "'", '"', "`", "[", "]", "--", "\n", "/*", "*/", "x", "\t", "\v", "é", "(", ".",
    "-", "/", "*", "1"])


def _reference_first_end(sql: str) -> int | None:
    """The quadratic reference: the shortest prefix ending in ';' that SQLite calls complete."""
    for end, char in enumerate(sql, start=1):
        if char == ";" and sqlite3.complete_statement(sql[:end]):
            return end
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(FRAGMENTS, max_size=30))
def test_split_first_agrees_with_sqlite_complete_statement(parts: list[str]) -> None:
    sql = "".join(parts)
    first = split_first(sql)
    expected = _reference_first_end(sql)
    assert (None if first is None else len(sql) - len(first[1])) == expected, repr(sql)
    assert first is None or "".join(t.text for t in first[0]) + first[1] == sql


def test_split_first_is_linear_on_many_semicolons() -> None:
    sql = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN " + "SELECT 1;" * 50_000 + " END;"
    first = split_first(sql)
    assert first is not None and first[1] == ""
    check_object(_obj("TRIGGER", "tr", sql, "t"))
