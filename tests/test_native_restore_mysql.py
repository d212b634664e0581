"""Same-engine restore from the archive's native schema, MariaDB (issue 16).

The engine's own dump (``mariadb-dump --routines --triggers --events``: schema, rows, stored
programs, AUTO_INCREMENT counters) of the copy equals the source's, on a schema with what the
portable schema cannot carry: ``INT UNSIGNED`` keys referenced by ``INT UNSIGNED`` foreign keys,
ENUM and SET, a column's own character set, FULLTEXT, generated columns, ON UPDATE, CHECK,
partitioning, spatial columns and a SPATIAL index, a sequence used by a column's default, views over views, a trigger, a procedure, a function and an event.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.dialects.native_mysql import MysqlNative, check_object, strip_definer
from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.native import NativeObject
from test_restore_modes import killed_restore

from conftest import Databases, rows, run_sql

SCHEMA = r"""
CREATE TABLE country (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(50) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL,
  kind ENUM('a','b') DEFAULT 'a', flags SET('x','y'),
  updated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  CHECK (char_length(name) > 0)) ENGINE=InnoDB;
CREATE TABLE city (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, country_id INT UNSIGNED NOT NULL,
  name VARCHAR(50), doc TEXT, twice INT AS (country_id * 2) STORED,
  v INT AS (country_id + 1) VIRTUAL, FULLTEXT KEY ft (doc), KEY by_country (country_id),
  KEY by_name (name(10), id),
  KEY by_twice (twice) COMMENT 'built, after (the rows)',
  CONSTRAINT fk_country FOREIGN KEY (country_id) REFERENCES country (id) ON DELETE CASCADE)
  ENGINE=InnoDB;
CREATE TABLE counter (id INT NOT NULL AUTO_INCREMENT, code INT NOT NULL, g INT,
  UNIQUE KEY u_g (g), KEY by_id (id), KEY by_code (code), KEY by_g_code (g, code)) ENGINE=InnoDB;
CREATE TABLE ticket_of (id INT PRIMARY KEY, code INT, n INT, KEY by_n (n),
  CONSTRAINT fk_code FOREIGN KEY (code) REFERENCES counter (code)) ENGINE=InnoDB;
CREATE TABLE part (id INT NOT NULL, y INT NOT NULL, PRIMARY KEY (id, y))
  PARTITION BY RANGE (y) (PARTITION p0 VALUES LESS THAN (2000),
                          PARTITION p1 VALUES LESS THAN MAXVALUE);
CREATE SEQUENCE ticket START WITH 100 INCREMENT BY 5;
SELECT NEXTVAL(ticket);
CREATE TABLE log (id INT NOT NULL DEFAULT (NEXT VALUE FOR ticket), msg VARCHAR(100));
CREATE TABLE place (id INT PRIMARY KEY, at POINT NOT NULL, area POLYGON, SPATIAL KEY sp (at));
CREATE VIEW v1 AS SELECT id, name FROM country;
CREATE VIEW v0 AS SELECT id FROM v1;
DELIMITER //
CREATE TRIGGER city_ins BEFORE INSERT ON city FOR EACH ROW BEGIN
  INSERT INTO log (msg) VALUES (CONCAT('ins ', NEW.name)); SET NEW.name = UPPER(NEW.name); END//
CREATE PROCEDURE p1(IN n INT) BEGIN IF n > 0 THEN
  SELECT CASE WHEN n > 1 THEN 'many' ELSE 'one' END; ELSE SELECT 'none'; END IF; END//
CREATE FUNCTION f1(x INT) RETURNS INT DETERMINISTIC RETURN x * 2//
DELIMITER ;
CREATE EVENT ev1 ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM log;
INSERT INTO country (name, flags) VALUES ('Sweden', 'x,y'), ('Norway', NULL);
INSERT INTO city (country_id, name, doc) VALUES (1, 'stockholm', 'a b c'), (2, 'oslo', 'd');
INSERT INTO part VALUES (1, 1999), (2, 2020);
INSERT INTO counter (code, g) VALUES (7, 1), (8, 2), (7, NULL);
INSERT INTO ticket_of VALUES (1, 7, 10), (2, 8, NULL);
INSERT INTO place VALUES (1, ST_GeomFromText('POINT(1 2)'),
  ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')), (2, ST_GeomFromText('POINT(3.5 -4)', 4326), NULL);
"""


def _client(url: str, tool: str) -> list[str]:
    parsed = sa.engine.make_url(url)
    return [tool, "-h", parsed.host or "127.0.0.1", "-P", str(parsed.port or 3306),
            "-u", parsed.username or "root"]


def _load(url: str, script: str) -> None:
    subprocess.run([*_client(url, "mariadb"), sa.engine.make_url(url).database or ""],
                   input=script.encode(), check=True, capture_output=True)


def engine_dump(url: str) -> list[str]:
    """mariadb-dump of everything, the database's name taken out."""
    tool = shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mariadb-dump"
    name = sa.engine.make_url(url).database or ""
    out = subprocess.run([*_client(url, tool), "--routines", "--triggers", "--events",
                          "--skip-dump-date", "--hex-blob", name], check=True, capture_output=True,
                         text=True).stdout
    return [line.replace(name, "DB") for line in out.splitlines()
            if not line.startswith("-- Host:")]


@pytest.fixture
def source(dbs: Databases) -> str:
    url = dbs.new("mysql")
    _load(url, SCHEMA)
    return url


def test_round_trip_gives_back_the_same_database(source: str, dbs: Databases,
                                                 tmp_path: Path) -> None:
    archive = tmp_path / "m.crate"
    dbcrate.dump(source, archive, jobs=2)
    native = dbcrate.open_archive(archive).manifest.native
    assert native is not None
    assert native.kinds() == {"TABLE": 7, "SEQUENCE": 1, "SEQUENCE SET": 1, "VIEW": 2, "FUNCTION": 1, "PROCEDURE": 1,
                              "TRIGGER": 1, "EVENT": 1}
    # the plain secondary keys at the end of a table's index list are built after its rows,
    # with the foreign keys they serve; keys on columns another table's foreign key references,
    # on the AUTO_INCREMENT column, or that a foreign key on the base column of a stored
    # generated column needs (city's fk_country: InnoDB refuses it in ALTER TABLE) stay
    keys = [o for o in MysqlNative().for_restore(native.objects, native.objects)
            if o.kind == "KEYS"]
    assert {o.table: re.findall(r"ADD (?:KEY|CONSTRAINT) `(\w+)`", o.sql) for o in keys} == {
        "city": ["by_name", "by_twice"], "counter": ["by_g_code"],
        "ticket_of": ["by_n", "fk_code", "fk_code"]}  # (its key, then the foreign key)
    copy = dbs.new("mysql")
    report = dbcrate.restore(archive, copy, jobs=2)
    assert report.ok and not report.warnings, report.warnings
    assert engine_dump(copy) == engine_dump(source)  # (the keys in the same order too)
    # the trigger did not fire on restored rows
    assert rows(copy, "SELECT name FROM city ORDER BY id") == [("STOCKHOLM",), ("OSLO",)]
    # again, over the copy, with --clean
    report = dbcrate.restore(archive, copy, clean=True)
    assert report.ok and not report.warnings, report.warnings
    assert engine_dump(copy) == engine_dump(source)


def test_chinook_comes_back_the_same_with_its_keys_built_after_the_rows(
        chinook_sources, dbs: Databases, tmp_path: Path) -> None:
    """A schema dbcrate did not write (Chinook's MySQL script): seven tables' foreign-key
    indexes move after the rows, with their foreign keys (one of them, Employee's, on its own
    table), and mariadb-dump of the copy, rows included, is the source's."""
    source = chinook_sources("mysql")
    archive = tmp_path / "chinook.crate"
    dbcrate.dump(source, archive)
    native = dbcrate.open_archive(archive).manifest.native
    assert native is not None
    moved = {o.table for o in MysqlNative().for_restore(native.objects, native.objects)
             if o.kind == "KEYS"}
    assert moved == {"Album", "Customer", "Employee", "Invoice", "InvoiceLine", "PlaylistTrack",
                     "Track"}
    copy = dbs.new("mysql")
    report = dbcrate.restore(archive, copy)
    assert report.ok and not report.warnings, report.warnings
    assert engine_dump(copy) == engine_dump(source)


def test_kill_9_between_a_load_and_its_keys_then_resume(source: str, dbs: Databases,
                                                       tmp_path: Path) -> None:
    """On one session every load runs before the post-data: killed during the loads, the tables
    loaded so far lack their deferred keys and the foreign keys that moved with them; the
    resumed restore builds them (the same split, so the journal names the same steps)."""
    archive = tmp_path / "m.crate"
    dbcrate.dump(source, archive, chunk_rows=1)
    copy = dbs.new("mysql")
    resume = killed_restore(archive, copy, tmp_path, 9, "-j", "1")
    indexes = ("SELECT count(DISTINCT TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS "
               "WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME IN ('by_name', 'by_twice', "
               "'by_g_code', 'by_n')")
    assert rows(copy, indexes) == [(0,)]  # (killed during the loads: none is built yet)
    # the journal names the plan's steps: a resume whose steps differ (another dbcrate began
    # the restore) refuses to read its marks as its own, and says what to do
    (mark,) = rows(copy, "SELECT chunk FROM dbcrate_journal WHERE table_name = '' AND "
                         f"chunk < {-(1 << 30) + 1}")
    run_sql(copy, f"UPDATE dbcrate_journal SET chunk = chunk - 1 WHERE chunk = {mark[0]}")
    other = resume()
    assert other.returncode == 2 and "another version of dbcrate" in other.stderr, other.stderr
    assert "--clean" in other.stderr and "Traceback" not in other.stderr
    run_sql(copy, f"UPDATE dbcrate_journal SET chunk = {mark[0]} WHERE chunk = {mark[0] - 1}")
    again = resume()
    assert again.returncode == 0, again.stdout + again.stderr
    assert rows(copy, indexes) == [(4,)]
    assert engine_dump(copy) == engine_dump(source)


def test_another_engine_says_what_it_does_not_carry(source: str, dbs: Databases,
                                                    tmp_path: Path) -> None:
    archive = tmp_path / "m.crate"
    dbcrate.dump(source, archive)
    report = dbcrate.restore(archive, dbs.new("sqlite"))
    left = {w.split(" (")[0] for w in report.warnings if w.startswith("not carried:")}
    assert left == {"not carried: VIEW v1", "not carried: VIEW v0", "not carried: FUNCTION f1",
                    "not carried: PROCEDURE p1", "not carried: TRIGGER city_ins",
                    "not carried: EVENT ev1", "not carried: SEQUENCE ticket",
                    "not carried: SEQUENCE SET ticket"}
    # spatial values go as the server's bytes (SRID, then WKB), and that is said
    said = {w.split(":")[0] for w in report.warnings if w.startswith("column ")}
    assert said == {"column place.at", "column place.area"}, report.warnings
    assert any("SRID, then WKB" in w for w in report.warnings)


def test_no_owner_strips_the_definer() -> None:
    sql = ("CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() BEGIN SELECT 1; END;")
    assert strip_definer(sql) == "CREATE PROCEDURE `p`() BEGIN SELECT 1; END;"
    assert strip_definer("CREATE ALGORITHM=UNDEFINED DEFINER=`a b`@`%` SQL SECURITY DEFINER "
                         "VIEW `v` AS select 1") == \
        "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"


def _obj(kind: str, name: str, sql: str, session: dict[str, str] | None = None) -> NativeObject:
    return NativeObject(kind=kind, name=name, section="pre-data", sql=sql, session=session)


@pytest.mark.parametrize(("kind", "name", "sql", "why"), [
    ("TABLE", "t", "CREATE TABLE `t` (x int); DROP TABLE canary;", "more than one statement"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) /* c */; -- x\nDROP TABLE canary;", "more than one"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) /*!50000 , y int */;", "executable comment"),
    ("VIEW", "v", "CREATE VIEW `v` AS SELECT 1 INTO OUTFILE '/tmp/x';", "OUTFILE"),
    ("VIEW", "v", "CREATE VIEW `v` AS SELECT LOAD_FILE('/etc/passwd');", "LOAD_FILE"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN GRANT ALL ON *.* TO x; END;", "GRANT"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN CREATE USER x; END;", "CREATE"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN SET GLOBAL general_log = 1; END;", "SET"),
    ("TABLE", "t", "CREATE VIEW `t` AS SELECT 1;", "does not create a table"),
    ("TABLE", "t", "CREATE TABLE `other` (x int);", "creates 'other'"),
    ("TABLE", "t", "INSTALL SONAME 'ha_evil';", "INSTALL"),
    ("TABLE", "t", "DROP TABLE canary;", "not a CREATE"),
    ("TRIGGER", "tr", "CREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW BEGIN SET @a = 1; "
                      "END; DROP TABLE canary;", "more than one"),
    ("SEQUENCE", "s", "CREATE SEQUENCE `s` ENGINE=InnoDB; DROP TABLE canary;", "more than one"),
    ("SEQUENCE", "s", "CREATE SEQUENCE `other`;", "creates 'other'"),
    ("SEQUENCE", "s", "CREATE SEQUENCE `s` ENGINE=CONNECT;", "ENGINE"),
    ("SEQUENCE SET", "s", "SELECT SETVAL(`s`, 1, 0); DROP TABLE canary;", "SETVAL"),
    ("SEQUENCE SET", "s", "SELECT SETVAL(`t`, 1, 0);", "SETVAL"),
    ("SEQUENCE SET", "s", "SELECT SETVAL(`s`, (SELECT LOAD_FILE('/etc/passwd')), 0);", "SETVAL"),
    ("SEQUENCE SET", "s", "DO SLEEP(100);", "SETVAL"),
])
def test_guard_refuses(kind: str, name: str, sql: str, why: str) -> None:
    with pytest.raises(UnsafeNativeSql, match=why):
        check_object(_obj(kind, name, sql))


def test_guard_refuses_a_session_value_it_does_not_set() -> None:
    with pytest.raises(UnsafeNativeSql, match="session setting"):
        check_object(_obj("VIEW", "v", "CREATE VIEW `v` AS SELECT 1;",
                          {"sql_mode": "x'; DROP TABLE canary; --"}))


def test_everything_captured_passes_the_guard(source: str, tmp_path: Path) -> None:
    archive = tmp_path / "m.crate"
    dbcrate.dump(source, archive)
    native = dbcrate.open_archive(archive).manifest.native
    assert native is not None
    for obj in native.objects:
        check_object(obj)


@settings(max_examples=40, deadline=None)
@given(name=st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"),
                    min_size=1, max_size=12).map(str.strip).filter(bool))
def test_any_table_name_passes_and_an_appended_statement_does_not(name: str) -> None:
    quoted = "`" + name.replace("`", "``") + "`"
    sql = f"CREATE TABLE {quoted} (\n  `x` int(11) DEFAULT NULL\n) ENGINE=InnoDB;"
    check_object(_obj("TABLE", name, sql))
    with pytest.raises(UnsafeNativeSql):
        check_object(_obj("TABLE", name, sql + " DROP TABLE canary;"))


def test_a_tampered_archive_runs_nothing(source: str, dbs: Databases, tmp_path: Path) -> None:
    folder = tmp_path / "dump"
    dbcrate.dump(source, folder, container="directory")
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    view = next(o for o in data["native"]["objects"] if o["kind"] == "VIEW")
    view["sql"] = "CREATE VIEW `v1` AS SELECT 1; DROP TABLE canary;"
    raw = json.dumps(data).encode()
    manifest.write_bytes(raw)
    (folder / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest() + "\n")
    target = dbs.new("mysql")
    run_sql(target, "CREATE TABLE canary (x INT)")
    with pytest.raises(ArchiveCorrupt, match="VIEW v1 was refused"):
        dbcrate.restore(folder, target)
    assert rows(target, "SHOW TABLES") == [("canary",)]
