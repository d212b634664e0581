"""MariaDB's native schema (issue 16): what ``native_mysql.capture`` takes from the server, a
restore by hand from it (pre-data, the rows, post-data) giving back the same schema as the
engine's own dump shows it, and the guard that checks each object before any of it runs.

The restore here is done by hand, without dbcrate's restore (tests/test_native_restore_mysql.py
covers that path end to end), so that a difference points at the capture itself.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.dialects.native_mysql import MysqlNative, capture, check_object, strip_definer
from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.native import NativeObject, NativeSchema

from conftest import Databases, engine_of, rows

#: one statement each (no DELIMITER: they go through the driver one by one)
SCHEMA = [
    """CREATE TABLE country (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
      name VARCHAR(50) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL,
      kind ENUM('a','b') DEFAULT 'a', flags SET('x','y'),
      updated TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
      CONSTRAINT name_set CHECK (char_length(name) > 0)) ENGINE=InnoDB""",
    """CREATE TABLE city (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
      country_id INT UNSIGNED NOT NULL, name VARCHAR(50), doc TEXT,
      twice INT AS (country_id * 2) STORED, v INT AS (country_id + 1) VIRTUAL,
      FULLTEXT KEY ft (doc), KEY by_name (name),
      CONSTRAINT fk_country FOREIGN KEY (country_id) REFERENCES country (id) ON DELETE CASCADE)
      ENGINE=InnoDB""",
    """CREATE TABLE place (id INT UNSIGNED NOT NULL PRIMARY KEY, city_id INT UNSIGNED,
      pos POINT NOT NULL, SPATIAL INDEX sp (pos),
      CONSTRAINT fk_city FOREIGN KEY (city_id) REFERENCES city (id)) ENGINE=InnoDB""",
    """CREATE TABLE part (id INT NOT NULL, y INT NOT NULL, PRIMARY KEY (id, y))
      PARTITION BY RANGE (y) (PARTITION p0 VALUES LESS THAN (2000),
                              PARTITION p1 VALUES LESS THAN MAXVALUE)""",
    "CREATE TABLE log (msg VARCHAR(100))",
    "CREATE TABLE dbcrate_journal (x INT)",
    "CREATE VIEW v1 AS SELECT id, name FROM country",
    "CREATE VIEW v0 AS SELECT id FROM v1",
    """CREATE TRIGGER city_ins BEFORE INSERT ON city FOR EACH ROW BEGIN
      INSERT INTO log VALUES (CONCAT('ins ', NEW.name)); SET NEW.name = UPPER(NEW.name); END""",
    """CREATE PROCEDURE p1(IN n INT) BEGIN
      DECLARE k INT DEFAULT 0;
      IF n > 0 THEN SELECT CASE WHEN n > 1 THEN 'many' ELSE 'one' END;
      ELSE SELECT 'none', 'it\\'s; \\"quoted\\"'; END IF;
      WHILE k < n DO SET k = k + 1; END WHILE;
    END""",
    "CREATE FUNCTION f1(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
    "CREATE EVENT ev1 ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM log",
    "INSERT INTO country (name, flags) VALUES ('Sweden', 'x,y'), ('Norway', NULL)",
    "INSERT INTO city (country_id, name, doc) VALUES (1, 'stockholm', 'a b c'), (2, 'oslo', 'd')",
    "INSERT INTO place VALUES (1, 1, POINT(1, 2))",
    "INSERT INTO part VALUES (1, 1999), (2, 2020)",
    "INSERT INTO country (name) VALUES ('gone')",
    "DELETE FROM country WHERE name = 'gone'",  # the counter is now ahead of the rows
]


@pytest.fixture
def source(dbs: Databases) -> str:
    url = dbs.new("mysql")
    eng = engine_of(url)
    with eng.connect() as conn:
        for statement in SCHEMA:
            conn.exec_driver_sql(statement)
    eng.dispose()
    return url


def _capture(url: str, excluded: tuple[str, ...] = ()) -> NativeSchema:
    eng = engine_of(url)
    try:
        with eng.connect() as conn:
            return capture(conn, [], excluded)
    finally:
        eng.dispose()


def _name(url: str) -> str:
    return sa.engine.make_url(url).database or ""


def test_capture_takes_every_object_in_restore_order(source: str) -> None:
    native = _capture(source)
    assert native.engine == "mysql" and native.tool is None
    assert "MariaDB" in native.server_version or native.server_version[:1].isdigit()
    assert native.settings == {"character_set": "utf8mb4",
                               "collation": native.settings["collation"]}
    assert [(o.kind, o.name, o.section) for o in native.objects] == [
        ("TABLE", "city", "pre-data"), ("TABLE", "country", "pre-data"),
        ("TABLE", "log", "pre-data"), ("TABLE", "part", "pre-data"),
        ("TABLE", "place", "pre-data"),
        ("FUNCTION", "f1", "pre-data"), ("PROCEDURE", "p1", "pre-data"),
        ("VIEW", "v1", "pre-data"), ("VIEW", "v0", "pre-data"),  # v0 reads v1
        ("TRIGGER", "city_ins", "post-data"), ("EVENT", "ev1", "post-data")]
    trigger = native.objects[-2]
    assert trigger.table == "city" and trigger.session and "sql_mode" in trigger.session
    city = native.objects[0].sql
    assert city.startswith("CREATE TABLE `city`") and city.endswith(";")
    assert "AUTO_INCREMENT=3" in city and "FOREIGN KEY" in city
    assert "AUTO_INCREMENT=4" in native.objects[1].sql  # the counter, not the rows
    assert all(o.sql.endswith(";") for o in native.objects)


def test_an_excluded_table_takes_its_triggers_along(source: str) -> None:
    native = _capture(source, excluded=("city",))
    assert "city" not in {o.name for o in native.objects}
    assert "TRIGGER" not in native.kinds()


def _columns(conn: sa.Connection, db: str, table: str) -> list[str]:
    """The columns a row copy writes (generated ones are computed by the server)."""
    return [str(c) for (c,) in conn.execute(sa.text(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :s AND "
        "TABLE_NAME = :t AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION"),
        {"s": db, "t": table})]


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _hand_restore(native: NativeSchema, source: str, target: str) -> None:
    """pg_restore's order: pre-data, the rows (foreign keys unchecked, no trigger yet),
    post-data; each object checked first and run under the session it was created in."""
    support = MysqlNative()
    for obj in native.objects:
        support.check(obj)
    old, new = _name(source), _name(target)
    eng = engine_of(target)
    with eng.connect() as conn:
        for sql in (*support.setup(), "SET foreign_key_checks = 0"):
            support.execute(conn, sql)
        for obj in native.of_section("pre-data"):
            for statement in support.statements(obj, no_owner=False, no_privileges=False):
                support.execute(conn, statement.sql)
        for table in (o.name for o in native.objects if o.kind == "TABLE"):
            cols = ", ".join(_q(c) for c in _columns(conn, old, table))
            support.execute(conn, f"INSERT INTO {_q(new)}.{_q(table)} ({cols}) "
                                  f"SELECT {cols} FROM {_q(old)}.{_q(table)}")
        for obj in native.of_section("post-data"):
            for statement in support.statements(obj, no_owner=False, no_privileges=False):
                support.execute(conn, statement.sql)
        for sql in (*support.reset(), "SET foreign_key_checks = 1"):
            support.execute(conn, sql)
    eng.dispose()


def engine_dump(url: str) -> list[str]:
    """The engine's own schema dump (tables, routines, triggers, events), the name taken out
    (and dbcrate's journal, which capture leaves out on purpose)."""
    tool = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    assert tool, "mariadb-dump or mysqldump is needed"
    parsed = sa.engine.make_url(url)
    name = _name(url)
    out = subprocess.run([tool, "-h", parsed.host or "127.0.0.1", "-P", str(parsed.port or 3306),
                          "-u", parsed.username or "root", "--no-data", "--routines",
                          "--triggers", "--events", "--skip-dump-date",
                          f"--ignore-table={name}.dbcrate_journal", name],
                         check=True, capture_output=True, text=True).stdout
    return [line.replace(name, "DB") for line in out.splitlines()]


def test_a_hand_restore_gives_back_the_same_schema(source: str, dbs: Databases) -> None:
    native = _capture(source)
    copy = dbs.new("mysql")
    _hand_restore(native, source, copy)
    assert engine_dump(copy) == engine_dump(source)
    query = "SELECT id, name, twice, v FROM city ORDER BY id"
    assert rows(copy, query) == rows(source, query)
    # the trigger was created after the rows: it did not fire on them
    assert rows(copy, "SELECT COUNT(*) FROM log") == rows(source, "SELECT COUNT(*) FROM log")
    assert rows(copy, "SELECT ST_AsText(pos) FROM place") == [("POINT(1 2)",)]
    # and the copy's counters go on where the source's stood
    assert rows(copy, "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA "
                      f"= '{_name(copy)}' AND TABLE_NAME = 'country'") == [(4,)]


def test_everything_captured_survives_json_and_passes_the_guard(source: str) -> None:
    native = _capture(source)
    again = NativeSchema.from_json(native.to_json())
    assert again == native
    for obj in again.objects:
        check_object(obj)
        check_object(NativeObject(obj.kind, obj.name, obj.section, strip_definer(obj.sql),
                                  table=obj.table, session=obj.session))


def test_strip_definer() -> None:
    sql = "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() BEGIN SELECT 1; END;"
    assert strip_definer(sql) == "CREATE PROCEDURE `p`() BEGIN SELECT 1; END;"
    assert strip_definer("CREATE ALGORITHM=UNDEFINED DEFINER=`a``b`@`%` SQL SECURITY DEFINER "
                         "VIEW `v` AS select 1") == \
        "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"


def _obj(kind: str, name: str, sql: str, table: str | None = None,
         session: dict[str, str] | None = None) -> NativeObject:
    return NativeObject(kind, name, "pre-data", sql, table=table, session=session)


HOSTILE = [
    ("TABLE", "t", "CREATE TABLE `t` (x int); DROP TABLE canary;", "more than one"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) /* ; */ -- c\n; DROP TABLE canary;", "more than"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) -- \n; DROP TABLE canary;", "more than"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) --\n; DROP TABLE canary;", "more than"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) --\xa0; DROP TABLE canary;\n", "more than"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) # c\n; DROP TABLE canary;", "more than"),
    # a backslash is no escape under NO_BACKSLASH_ESCAPES, "..." no string under ANSI_QUOTES
    ("TABLE", "t", "CREATE TABLE `t` (x int) COMMENT 'a\\'; DROP TABLE canary; -- ';",
     "more than"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) COMMENT \"a\\\"; DROP TABLE canary; -- \";",
     "more than"),
    # an unreserved word is no block: `begin` names a column, the ; after it ends the statement
    ("TABLE", "t", "CREATE TABLE `t` (begin int); DROP TABLE canary; CREATE TABLE u (end int);",
     "more than"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`(begin INT) SELECT 1; DROP TABLE canary; "
                       "SELECT end;", "more than"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN CASE 1 WHEN 1 THEN SELECT 1; END CASE; "
                       "END; DROP TABLE canary;", "more than"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN IF 1 THEN SELECT 1; END LOOP; END;",
     "closes IF"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN SELECT 1; END DROP TABLE canary;",
     "more than"),
    # `BEGINé` is a label to the server (non-ASCII letters are identifier characters)
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN\u00e9: BEGIN END; DROP TABLE canary; END;",
     "more than"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN\u00a0: BEGIN END; DROP TABLE canary; END;",
     "more than"),
    ("TRIGGER", "tr", "CREATE TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW BEGIN SET @a = 1; "
                      "END; DROP TABLE canary;", "more than"),
    ("EVENT", "e", "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM x; END; "
                   "DROP TABLE canary;", "more than"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) /*!50000 , y int */;", "executable comment"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) /*M!100000 ENGINE=x */;", "executable comment"),
    ("VIEW", "v", "CREATE VIEW `v` AS SELECT 1 INTO OUTFILE '/tmp/x';", "OUTFILE"),
    ("VIEW", "v", "CREATE VIEW `v` AS SELECT 1 INTO DUMPFILE '/tmp/x';", "DUMPFILE"),
    ("VIEW", "v", "CREATE VIEW `v` AS SELECT LOAD_FILE('/etc/passwd');", "LOAD_FILE"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN GRANT ALL ON *.* TO x; END;", "GRANT"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() BEGIN CREATE USER x; END;", "CREATE"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() LOAD DATA INFILE '/x' INTO TABLE t;", "LOAD"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() SET GLOBAL general_log = 1;", "GLOBAL"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() SET @@global.general_log = 1;", "GLOBAL"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() SELECT 1; \\! rm -rf /", "reaches outside"),
    ("PROCEDURE", "p", "CREATE PROCEDURE `p`() system ls;", "SYSTEM"),
    ("TABLE", "t", "INSTALL SONAME 'ha_evil';", "INSTALL"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) DATA DIRECTORY='/tmp';", "DIRECTORY"),
    ("TABLE", "t", "CREATE TABLE `t` (x int) ENGINE=FEDERATED CONNECTION='mysql://h/d/t';",
     "CONNECTION"),
    ("TABLE", "t", "CREATE TABLE `t` AS SELECT SLEEP(9);", "SELECT"),
    ("TABLE", "t", "DROP TABLE canary;", "not a CREATE"),
    ("TABLE", "t", "", "empty"),
    ("TABLE", "t", "CREATE VIEW `t` AS SELECT 1;", "does not create a table"),
    ("VIEW", "v", "CREATE TABLE `v` (x int);", "does not create a view"),
    ("PROCEDURE", "p", "CREATE FUNCTION `p`() RETURNS INT RETURN 1;", "does not create"),
    ("TABLE", "t", "CREATE TABLE `other` (x int);", "creates 'other'"),
    ("TABLE", "mysql", "CREATE TABLE `mysql`.`user2` (x int);", "another database"),
    ("INDEX", "i", "CREATE INDEX `i` ON `t` (x);", "kind"),
]


@pytest.mark.parametrize(("kind", "name", "sql", "why"), HOSTILE)
def test_the_guard_refuses(kind: str, name: str, sql: str, why: str) -> None:
    with pytest.raises(UnsafeNativeSql, match=why) as raised:
        check_object(_obj(kind, name, sql))
    assert isinstance(raised.value, ArchiveCorrupt)


@pytest.mark.parametrize(("obj", "why"), [
    (_obj("TRIGGER", "tr", "CREATE TRIGGER `tr` BEFORE INSERT ON `u` FOR EACH ROW SET @a = 1;",
          table="t"), "creates 'u', not 't'"),
    (_obj("FK CONSTRAINT", "fk", "ALTER TABLE `t` ADD CONSTRAINT `fk` FOREIGN KEY (`a`) "
          "REFERENCES `p` (`id`); DROP TABLE canary;", table="t"), "more than one"),
    (_obj("FK CONSTRAINT", "fk", "ALTER TABLE `t` DROP COLUMN `a`;", table="t"), "FOREIGN KEY"),
    (_obj("FK CONSTRAINT", "fk", "ALTER TABLE `t` ADD CONSTRAINT `fk` FOREIGN KEY (`a`) "
          "REFERENCES `p` (`id`), DROP COLUMN `b`;", table="t"), "more than the foreign key"),
    (_obj("EVENT", "e", "CREATE EVENT `e` ON SCHEDULE AT (SELECT do begin FROM t) DO SELECT 1; "
          "DROP TABLE canary; END;"), "more than one"),
    (_obj("VIEW", "v", "CREATE VIEW `v` AS SELECT 1;", session={"sql_mode": "ORACLE"}),
     "grammar"),
    (_obj("VIEW", "v", "CREATE VIEW `v` AS SELECT 1;", session={"sql_mode": "x'; --"}),
     "session setting"),
    (_obj("VIEW", "v", "CREATE VIEW `v` AS SELECT 1;", session={"character_set_client": "gbk"}),
     "hide a quote"),
    (_obj("VIEW", "v", "CREATE VIEW `v` AS SELECT 1;", session={"init_connect": "x"}),
     "session setting"),
])
def test_the_guard_refuses_a_claim_the_sql_does_not_keep(obj: NativeObject, why: str) -> None:
    with pytest.raises(UnsafeNativeSql, match=why):
        check_object(obj)


def test_a_stored_program_is_read_in_its_own_sql_mode() -> None:
    sql = "CREATE PROCEDURE `p`() BEGIN SELECT 'it\\'s; fine'; SELECT \"a\\\"b\"; END;"
    check_object(_obj("PROCEDURE", "p", sql, session={"sql_mode": "STRICT_TRANS_TABLES"}))
    hostile = "CREATE PROCEDURE `p`() SELECT 'a\\'; DROP TABLE canary; -- ';"
    check_object(_obj("PROCEDURE", "p", hostile, session={"sql_mode": ""}))  # one string
    for mode in ("NO_BACKSLASH_ESCAPES", "STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES"):
        with pytest.raises(UnsafeNativeSql, match="more than one"):
            check_object(_obj("PROCEDURE", "p", hostile, session={"sql_mode": mode}))
    with pytest.raises(UnsafeNativeSql, match="more than one"):  # the target's mode decides
        check_object(_obj("PROCEDURE", "p", hostile))
    quoted = "CREATE PROCEDURE `p`() SELECT \"a\\\"; DROP TABLE canary; -- \";"
    check_object(_obj("PROCEDURE", "p", quoted, session={"sql_mode": ""}))
    for mode in ("ANSI_QUOTES", "ANSI", "POSTGRESQL"):
        with pytest.raises(UnsafeNativeSql, match="more than one"):
            check_object(_obj("PROCEDURE", "p", quoted, session={"sql_mode": mode}))


@pytest.mark.parametrize("sql", [
    "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`() BEGIN SELECT 1; END;",
    "CREATE DEFINER='someone'@'%' PROCEDURE `p`() BEGIN SELECT 1; END;",
    "CREATE DEFINER=CURRENT_USER() PROCEDURE `p`() BEGIN SELECT 1; END;",
    "CREATE DEFINER=`a``b`@`h;x` PROCEDURE `p`() BEGIN SELECT 1; END;",
    "CREATE PROCEDURE `p`() BEGIN SELECT 1; END;",
    "CREATE OR REPLACE PROCEDURE IF NOT EXISTS `p`() BEGIN SELECT 1; END",
])
def test_definers_and_options_are_accepted(sql: str) -> None:
    check_object(_obj("PROCEDURE", "p", sql))


def test_stored_programs_with_every_block_kind_are_accepted() -> None:
    body = """CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN n INT, OUT r VARCHAR(10))
    COMMENT 'a; b' MODIFIES SQL DATA SQL SECURITY INVOKER
    outer_block: BEGIN
      DECLARE done INT DEFAULT 0;
      DECLARE c CURSOR FOR SELECT CASE WHEN n > 1 THEN 1 ELSE 2 END;
      DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
      DECLARE EXIT HANDLER FOR SQLSTATE VALUE '23000', SQLEXCEPTION BEGIN ROLLBACK; END;
      lbl: LOOP
        IF n > 0 THEN SELECT 'end;'; ELSEIF n < 0 THEN LEAVE lbl; ELSE BEGIN END; END IF;
        CASE n WHEN 1 THEN SELECT 1; ELSE SELECT 2; END CASE;
        REPEAT SET n = n - 1; UNTIL n <= 0 END REPEAT;
        WHILE n < 3 DO SET n = n + 1; END WHILE;
        FOR i IN 1 .. 3 DO SELECT i; END FOR;
        LEAVE lbl;
      END LOOP lbl;
    END outer_block;"""
    check_object(_obj("PROCEDURE", "p", body))
    check_object(_obj("FUNCTION", "f", "CREATE FUNCTION `f`(x INT) RETURNS varchar(10) CHARSET "
                      "utf8mb4 COLLATE utf8mb4_bin NOT DETERMINISTIC NO SQL BEGIN "
                      "RETURN CASE x WHEN 1 THEN 'a' END; END;"))
    check_object(_obj("EVENT", "e", "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS "
                      "'2020-01-01 00:00:00' ON COMPLETION NOT PRESERVE DISABLE DO BEGIN "
                      "DELETE FROM log; END;"))
    check_object(_obj("FK CONSTRAINT", "fk", "ALTER TABLE `t` ADD CONSTRAINT `fk` FOREIGN KEY "
                      "(`a`) REFERENCES `other_db`.`p` (`id`) ON DELETE CASCADE;", table="t"))


#: identifiers built from what quoting must survive
NAMES = st.text(st.sampled_from(list("ab`'\";-#/*!\\ é.")), min_size=1, max_size=16).filter(
    lambda s: not s.endswith(" ") and not s.endswith("."))


@pytest.fixture
def scratch(dbs: Databases) -> Iterator[sa.Engine]:
    eng = engine_of(dbs.new("mysql"))
    yield eng
    eng.dispose()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=NAMES, column=NAMES)
def test_any_captured_table_passes_and_an_appended_statement_does_not(
        scratch: sa.Engine, table: str, column: str) -> None:
    with scratch.connect() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {_q(table)} ({_q(column)} INT COMMENT 'c;\\' ')")
        try:
            native = capture(conn, [], [])
        finally:
            conn.exec_driver_sql(f"DROP TABLE {_q(table)}")
    (obj,) = native.objects
    assert (obj.kind, obj.name) == ("TABLE", table)
    check_object(obj)
    with pytest.raises(UnsafeNativeSql):
        check_object(NativeObject("TABLE", table, "pre-data", obj.sql + " DROP TABLE x;"))
    with pytest.raises(UnsafeNativeSql):
        check_object(NativeObject("TABLE", table, "pre-data", obj.sql[:-1] + "; DROP TABLE x"))
