"""Same-engine restore from the archive's native schema, SQLite (issue 16).

``sqlite_master`` of the copy equals the source's object for object (the SQL as written:
``WITHOUT ROWID``, ``STRICT``, generated columns, ``COLLATE NOCASE``, ``CHECK``, partial and
expression indexes, views, triggers), and so do ``user_version``, ``application_id``, the
AUTOINCREMENT counters and every row (Python's ``iterdump``, the ``.dump`` of the sqlite3
shell). The guard refuses SQL that is not one ``CREATE`` of the claimed kind and name.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.dialects.native_sqlite import capture, check_object
from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.native import NativeObject, NativeSchema
from test_restore_modes import killed_restore

from conftest import CHINOOK

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
CREATE TABLE log (msg TEXT);
CREATE TRIGGER g_ins AFTER INSERT ON g BEGIN
  INSERT INTO log VALUES ('ins ' || new.id); INSERT INTO log VALUES ('two;');
END;
CREATE TRIGGER v_del INSTEAD OF DELETE ON v BEGIN DELETE FROM g WHERE id = old.id; END;
INSERT INTO kv VALUES ('a', x'00ff');
INSERT INTO s VALUES (1, 2, 'Abc');
INSERT INTO g (a) VALUES (1), (5), (9);
DELETE FROM g WHERE a = 9;
ANALYZE;
"""


def _db(path: Path, script: str) -> str:
    con = sqlite3.connect(path)
    con.executescript(script)
    con.close()
    return f"sqlite:///{path}"


def _everything(path: Path) -> dict[str, object]:
    con = sqlite3.connect(path)
    try:
        return {
            "master": con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                  "WHERE name <> 'dbcrate_journal' ORDER BY name").fetchall(),
            "pragmas": [con.execute(f"PRAGMA {p}").fetchone() for p in
                        ("user_version", "application_id")],
            "dump": sorted(con.iterdump()),
        }
    finally:
        con.close()


def test_rich_schema_round_trips_as_written(tmp_path: Path) -> None:
    source = _db(tmp_path / "rich.db", RICH)
    archive = tmp_path / "rich.crate"
    dbcrate.dump(source, archive)
    manifest = dbcrate.open_archive(archive).manifest
    assert manifest.format_version == 3 and manifest.native is not None
    assert manifest.native.kinds() == {"TABLE": 4, "INDEX": 2, "VIEW": 1, "TRIGGER": 2}
    report = dbcrate.restore(archive, f"sqlite:///{tmp_path / 'copy.db'}")
    assert report.ok and not report.warnings, report.warnings
    assert _everything(tmp_path / "copy.db") == _everything(tmp_path / "rich.db")
    # the trigger did not fire on restored rows; the AUTOINCREMENT counter goes on
    con = sqlite3.connect(tmp_path / "copy.db")
    assert con.execute("SELECT count(*) FROM log").fetchone() == (6,)
    con.execute("INSERT INTO g (a) VALUES (2)")
    assert con.execute("SELECT max(id) FROM g").fetchone() == (4,)
    con.close()
    # dump -> restore -> dump: the same native schema
    dbcrate.dump(f"sqlite:///{tmp_path / 'copy.db'}", tmp_path / "again.crate")
    again = dbcrate.open_archive(tmp_path / "again.crate").manifest.native
    assert again is not None and again.objects == manifest.native.objects
    assert again.settings == manifest.native.settings


VIRTUAL = """
CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
INSERT INTO post VALUES (3, 'x', 'alpha beta'), (7, 'y', 'gamma delta');
CREATE VIRTUAL TABLE post_fts USING fts5(title, body, content='post', content_rowid='id');
INSERT INTO post_fts(post_fts) VALUES ('rebuild');
CREATE TRIGGER post_ai AFTER INSERT ON post BEGIN
  INSERT INTO post_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;
CREATE VIRTUAL TABLE own USING fts4(txt, tokenize=porter);
INSERT INTO own(rowid, txt) VALUES (10, 'running dogs'), (20, 'cats');
CREATE VIRTUAL TABLE docs USING fts5(title, body);
INSERT INTO docs(rowid, title, body) VALUES (5, 'a', 'hello world'), (2, 'b', 'more text');
CREATE VIRTUAL TABLE box USING rtree(id, minx, maxx);
INSERT INTO box VALUES (1, 0, 5), (9, 2, 3);
"""
#: what the copy must answer as the source does: full-text matches with their rowids (an
#: external-content table's rowids are its content table's), the R*Tree, and a new row that
#: the trigger indexes
ASKED = ("SELECT rowid, * FROM post_fts WHERE post_fts MATCH 'gamma'",
         "SELECT rowid, * FROM own WHERE own MATCH 'run'",
         "SELECT rowid, * FROM docs WHERE docs MATCH 'hello OR text' ORDER BY rowid",
         "SELECT * FROM box WHERE minx <= 2.5 AND maxx >= 2.5 ORDER BY id",
         "INSERT INTO post VALUES (11, 'z', 'epsilon')",
         "SELECT rowid FROM post_fts WHERE post_fts MATCH 'epsilon'",
         "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name <> 'dbcrate_journal' "
         "ORDER BY name")


def _answers(path: Path) -> list[list[tuple[object, ...]]]:
    con = sqlite3.connect(path)
    try:
        return [con.execute(sql).fetchall() for sql in ASKED]
    finally:
        con.close()


def test_virtual_tables_round_trip(tmp_path: Path) -> None:
    url = _db(tmp_path / "src.db", VIRTUAL)
    archive = tmp_path / "v.crate"
    dbcrate.dump(url, archive)
    opened = dbcrate.open_archive(archive)
    # the shadow tables (docs_data, own_segments ...) are the modules': neither dumped nor
    # captured; each virtual table is dumped through itself, with its rowid
    assert sorted(t.name for t in opened.manifest.tables) == ["box", "docs", "own", "post",
                                                              "post_fts"]
    assert opened.manifest.native is not None
    assert opened.manifest.native.kinds() == {"TABLE": 1, "VIRTUAL TABLE": 4, "TRIGGER": 1}
    report = dbcrate.restore(archive, f"sqlite:///{tmp_path / 'copy.db'}")
    assert report.ok and not report.warnings, report.warnings
    assert _answers(tmp_path / "copy.db") == _answers(tmp_path / "src.db")
    # another engine gets each as a plain table, rowids kept, and is told
    other = dbcrate.restore(archive, f"sqlite:///{tmp_path / 'plain.db'}", ddl="portable")
    said = {w.split(" (")[0] for w in other.warnings}
    assert {"not carried: VIRTUAL TABLE docs", "not carried: VIRTUAL TABLE box"} <= said
    con = sqlite3.connect(tmp_path / "plain.db")
    assert con.execute("SELECT rowid, title FROM docs ORDER BY rowid").fetchall() == [
        (2, "b"), (5, "a")]
    con.close()


def test_chinook_dump_equals_the_sqlite3_dump(tmp_path: Path) -> None:
    source = CHINOOK / "Chinook_Sqlite.sqlite"
    archive = tmp_path / "chinook.crate"
    dbcrate.dump(f"sqlite:///{source}", archive)
    report = dbcrate.restore(archive, f"sqlite:///{tmp_path / 'copy.db'}", jobs=2)
    assert report.ok and not report.warnings
    assert _everything(tmp_path / "copy.db") == _everything(source)


def test_killed_while_loaded_in_place_then_resumed(tmp_path: Path) -> None:
    """Into a new file, each table the native schema made is loaded in place by ADBC's own
    connection (marked started first): rows it committed before the kill are not journaled.
    The resumed restore empties such a table before it loads it: a row standing for them is
    gone, and the copy is the source."""
    big = "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n" + "".join(
        f"INSERT INTO big VALUES ({i}, 'v{i}');\n" for i in range(1, 401))
    source = _db(tmp_path / "src.db", RICH + big)
    archive = tmp_path / "k.crate"
    dbcrate.dump(source, archive, chunk_rows=50)
    target = tmp_path / "copy.db"
    resume = killed_restore(archive, f"sqlite:///{target}", tmp_path, 9, "-j", "1")
    con = sqlite3.connect(target)
    marks = set(con.execute("SELECT table_name, chunk FROM dbcrate_journal").fetchall())
    assert ("big", -2) in marks and ("big", -1) not in marks  # (started, not loaded)
    with con:
        con.execute("INSERT INTO big VALUES (100000, 'committed by the killed run')")
    con.close()
    again = resume()
    assert again.returncode == 0, again.stdout + again.stderr
    assert _everything(target) == _everything(tmp_path / "src.db")


def test_portable_restore_names_what_it_leaves(tmp_path: Path) -> None:
    source = _db(tmp_path / "rich.db", RICH)
    archive = tmp_path / "rich.crate"
    dbcrate.dump(source, archive)
    report = dbcrate.restore(archive, f"sqlite:///{tmp_path / 'p.db'}", ddl="portable")
    left = [w for w in report.warnings if w.startswith("not carried:")]
    assert {w.split(" (")[0] for w in left} == {
        "not carried: VIEW v", "not carried: TRIGGER g_ins", "not carried: TRIGGER v_del"}


def _object(kind: str, name: str, sql: str, table: str | None = None) -> NativeObject:
    return NativeObject(kind=kind, name=name, section="pre-data", sql=sql, table=table)


@pytest.mark.parametrize(("kind", "name", "sql", "why"), [
    ("TABLE", "t", "CREATE TABLE t (x); DROP TABLE canary;", "more than one statement"),
    ("TABLE", "t", "CREATE TABLE t (x); -- hidden\nDROP TABLE canary;", "more than one"),
    ("TABLE", "t", "CREATE TABLE t (x) /* ; */; ATTACH 'x.db' AS x;", "more than one"),
    ("TABLE", "t", "ATTACH DATABASE 'x.db' AS x;", "not a CREATE"),
    ("TABLE", "t", "PRAGMA writable_schema = 1;", "not a CREATE"),
    ("TABLE", "t", "CREATE VIEW t AS SELECT 1;", "does not create a table"),
    ("TABLE", "t", "CREATE TEMP TABLE t (x);", "does not create a table"),
    ("TABLE", "t", "CREATE TABLE other (x);", "creates 'other'"),
    ("TABLE", "t", "CREATE TABLE t (x", "not a complete statement"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT load_extension('/tmp/evil.so');", "outside"),
    ("VIEW", "v", "CREATE VIEW v AS SELECT writefile('/tmp/x', 'y');", "outside"),
    ("TRIGGER", "tr", "CREATE TRIGGER other AFTER INSERT ON t BEGIN SELECT 1; END;", "creates"),
    ("FUNCTION", "f", "CREATE TABLE f (x);", "not one dbcrate restores"),
    ("VIRTUAL TABLE", "v", "CREATE VIRTUAL TABLE v USING evil(x);", "built into SQLite"),
    ("VIRTUAL TABLE", "v", "CREATE VIRTUAL TABLE v USING fts5(x); DROP TABLE canary;",
     "more than one"),
    ("VIRTUAL TABLE", "v", "CREATE VIRTUAL TABLE w USING fts5(x);", "creates 'w'"),
    ("VIRTUAL TABLE", "v", "CREATE TABLE v (x);", "does not create a virtual table"),
    ("TABLE", "v", "CREATE VIRTUAL TABLE v USING fts5(x);", "does not create a table"),
])
def test_guard_refuses(kind: str, name: str, sql: str, why: str) -> None:
    with pytest.raises(UnsafeNativeSql, match=why):
        check_object(_object(kind, name, sql))


def test_guard_accepts_what_sqlite_wrote(tmp_path: Path) -> None:
    source = _db(tmp_path / "rich.db", RICH)
    import sqlalchemy as sa
    engine = sa.create_engine(source)
    with engine.connect() as conn:
        schema = capture(conn, ["kv", "s", "g", "log"], [])
    engine.dispose()
    for obj in NativeSchema.from_json(schema.to_json()).objects:
        check_object(obj)
    assert any(";" in o.sql[:-1] for o in schema.objects if o.kind == "TRIGGER")


NAMES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_any_table_name_passes_and_an_appended_statement_does_not(name: str,
                                                                  tmp_path: Path) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    con = sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE TABLE {quoted} (x)")
    except sqlite3.Error:
        return  # a name SQLite itself refuses (sqlite_ prefix ...)
    sql = con.execute("SELECT sql FROM sqlite_master").fetchone()[0]
    con.close()
    check_object(_object("TABLE", name, sql + ";"))
    with pytest.raises(UnsafeNativeSql):
        check_object(_object("TABLE", name, sql + "; DROP TABLE canary;"))


def test_a_tampered_archive_runs_nothing(tmp_path: Path) -> None:
    source = _db(tmp_path / "rich.db", RICH)
    folder = tmp_path / "dump"
    dbcrate.dump(source, folder, container="directory")
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    view = next(o for o in data["native"]["objects"] if o["kind"] == "VIEW")
    view["sql"] = "CREATE VIEW v AS SELECT 1; DROP TABLE canary;"
    raw = json.dumps(data).encode()
    manifest.write_bytes(raw)
    (folder / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest() + "\n")
    target = tmp_path / "target.db"
    _db(target, "CREATE TABLE canary (x);")
    with pytest.raises(ArchiveCorrupt, match="VIEW v was refused"):
        dbcrate.restore(folder, f"sqlite:///{target}")
    con = sqlite3.connect(target)
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == [("canary",)]
    con.close()
