"""MariaDB column character sets and collations round trip, bytes and schema alike.

The archive holds text as UTF-8 whatever the source column's character set; the load must tell
the server so (``LOAD DATA ... CHARACTER SET utf8mb4``) for it to convert the text into each
column's own character set. ``CHARACTER SET binary`` wrote the UTF-8 bytes into latin1 columns
unconverted ('café' 636166E9 came back as 'cafÃ©' 636166C3A9, exit 0). Every case here is a
dump and a restore, compared by the HEX() of every value and by the CHARACTER_SET_NAME and
COLLATION_NAME of every column (and the table's default collation) in information_schema,
for each load path (a recreated table; an existing table loaded directly; an existing table
loaded through a temporary stage and ``INSERT ... SELECT``) and each driver (PyMySQL for dump
and restore; mysqlclient's reader for the dump and ``mysql+mysqldb://`` for the restore).
A character the target column cannot hold fails the table and leaves the target as it was;
it never becomes '?'.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.dialects import mysql_fast

from conftest import Databases, engine_of, run_sql

HAVE_MYSQLCLIENT = importlib.util.find_spec("MySQLdb") is not None
ALL_BYTES = "".join(f"{i:02X}" for i in range(256))

#: case -> (table options, columns "name DDL", rows as hex per column, None for NULL). Values
#: are inserted with UNHEX, so each column holds exactly these bytes in its own character set.
CASES: dict[str, tuple[str, list[str], list[tuple[str | None, ...]]]] = {
    "latin1": (
        "DEFAULT CHARSET=latin1 COLLATE=latin1_german1_ci",
        # a: implicit (the table's default, left out by SHOW CREATE TABLE); b: the charset's
        # default collation, not the table's; c: CHAR with a case-sensitive collation
        ["a VARCHAR(300)", "b TEXT COLLATE latin1_swedish_ci",
         "c CHAR(8) CHARACTER SET latin1 COLLATE latin1_general_cs"],
        [("636166E9", "E9", "4D7FC4E4"),           # café; é; M\x7fÄä
         (ALL_BYTES, ALL_BYTES, "80818D8F909D9FFF"),  # every byte, cp1252 and its five gaps
         ("", "61092020", None),                    # empty; a, tab, trailing spaces
         (None, "5C4E0A0D00", "20")],               # \N, newline, CR, NUL; one space
    ),
    "utf8mb3": (
        "DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_unicode_ci",
        ["a VARCHAR(40)", "b TEXT CHARACTER SET utf8mb3 COLLATE utf8mb3_bin",
         "c CHAR(3) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"],
        [("C3B1E282ACE6BCA2", "EFBFBD", "C39F"),     # ñ€漢; U+FFFD; ß
         ("EFBFBF00", "5C095C", None),              # U+FFFF, NUL; backslash, tab
         (None, "", "E282AC")],
    ),
    "utf8mb4": (
        "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
        ["a VARCHAR(40)", "b VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
         "c MEDIUMTEXT COLLATE utf8mb4_unicode_520_ci"],
        [("78F09F9880", "F09F988061F09F9880", "F48FBFBF"),  # x😀; 😀a😀; U+10FFFF
         ("636166C3A9", "C39F", "7373"),                    # café; ß; ss
         (None, "0A5C4E", "")],
    ),
    "binary": (
        "DEFAULT CHARSET=ascii COLLATE=ascii_bin",
        ["a VARBINARY(300)", "b BINARY(4)", "c BLOB", "d CHAR(4) CHARACTER SET binary"],
        [(ALL_BYTES, "00FF0A09", ALL_BYTES[::-1], "C3"),  # every byte; C3 alone is not UTF-8
         ("F09F98", "5C4E", "E2095C82", "FFFE"),          # cut UTF-8 sequences, escapes
         (None, None, "", "")],
    ),
    "others": (
        "DEFAULT CHARSET=cp1251 COLLATE=cp1251_general_ci",
        # ENUM and SET labels are never taken from an archive: recreated as strings, still
        # in their own character set and collation
        ["a VARCHAR(10)", "b VARCHAR(10) CHARACTER SET ascii COLLATE ascii_bin",
         "c TEXT CHARACTER SET ucs2 COLLATE ucs2_general_ci",
         "d VARCHAR(10) CHARACTER SET utf16 COLLATE utf16_unicode_ci",
         "e ENUM('x','é') CHARACTER SET latin1 COLLATE latin1_bin",
         "f SET('a','\u0431') CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"],
        [("CFF0E8E2E5F2", "7E7F", "00E920AC", "D83DDE00", "E9", "612CD0B1"),  # Привет; €; 😀
         (None, "", "", "0041", "78", "")],
    ),
}

PATHS = ("recreate", "into-existing", "into-existing-update")
DRIVERS = ("pymysql", "mysqlclient")


def _driver_url(url: str, driver: str) -> str:
    """``url`` with the driver of this case (the URLs of the fixtures name PyMySQL)."""
    name = "mysql+mysqldb" if driver == "mysqlclient" else "mysql+pymysql"
    return sa.engine.make_url(url).set(drivername=name).render_as_string(hide_password=False)


def _use_driver(driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if driver == "mysqlclient" and not HAVE_MYSQLCLIENT and os.environ.get("CI") != "true":
        pytest.skip("mysqlclient not installed")
    # the dump reads its rows through mysqlclient's reader, or through PyMySQL
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "1" if driver == "mysqlclient" else "0")


def _create(url: str, case: str, *, rows: bool) -> None:
    options, columns, values = CASES[case]
    statements = [f"CREATE TABLE t (id INT PRIMARY KEY, {', '.join(columns)}) {options}"]
    if rows:
        names = ", ".join(c.split()[0] for c in columns)
        for i, row in enumerate(values, 1):
            literals = ", ".join("NULL" if v is None else f"UNHEX('{v}')" for v in row)
            statements.append(f"INSERT INTO t (id, {names}) VALUES ({i}, {literals})")
    run_sql(url, *statements)


def _state(url: str) -> tuple[object, list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Table t as information_schema describes it, and the HEX of every value."""
    eng = engine_of(url)
    try:
        with eng.connect() as c:
            collation = c.exec_driver_sql(
                "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                "DATABASE() AND TABLE_NAME = 't'").scalar()
            columns = [tuple(r) for r in c.exec_driver_sql(
                "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME FROM "
                "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' "
                "ORDER BY ORDINAL_POSITION")]
            names = [str(col[0]) for col in columns[1:]]
            values = [tuple(r) for r in c.exec_driver_sql(
                f"SELECT id, {', '.join(f'HEX(`{n}`)' for n in names)} FROM t ORDER BY id")]
    finally:
        eng.dispose()
    return collation, columns, values


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(CASES))
def test_charsets_and_collations_round_trip(case: str, path: str, driver: str, dbs: Databases,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _use_driver(driver, monkeypatch)
    src = dbs.new("mysql")
    _create(src, case, rows=True)
    expected = _state(src)
    assert len(expected[2]) == len(CASES[case][2])
    result = dbcrate.dump(_driver_url(src, driver), tmp_path / "c.crate")
    assert result.manifest.tables[0].rows == len(CASES[case][2])
    dst = dbs.new("mysql")
    if path == "recreate":
        report = dbcrate.restore(tmp_path / "c.crate", _driver_url(dst, driver))
    else:
        _create(dst, case, rows=False)
        policy = "error"
        if path == "into-existing-update":
            # a row of the target with an archive key: the update path rewrites it from the
            # temporary stage
            policy = "update"
            run_sql(dst, "INSERT INTO t (id) VALUES (1)")
        report = dbcrate.restore(tmp_path / "c.crate", _driver_url(dst, driver),
                                 mode="into-existing", on_conflict=policy)
    assert report.ok, report.to_dict()
    assert _state(dst) == expected


def test_archive_carries_each_charset_and_collation(dbs: Databases, tmp_path: Path) -> None:
    """The manifest says every text column's character set and collation, also those SHOW
    CREATE TABLE leaves implicit, and the table's defaults; the text itself is the right
    Unicode (so another engine restores 'café')."""
    src = dbs.new("mysql")
    _create(src, "latin1", rows=True)
    dbcrate.dump(src, tmp_path / "c.crate")
    with dbcrate.open_archive(tmp_path / "c.crate") as archive:
        entry = archive.tables[0]
        types = {c.name: c.engine_type for c in entry.schema.columns}
        values = [row for batch in archive.iter_batches("t") for row in batch.to_pylist()]
    assert types == {
        "id": "INTEGER(11)",
        "a": "VARCHAR(300) CHARACTER SET latin1 COLLATE latin1_german1_ci",
        "b": "TEXT CHARACTER SET latin1 COLLATE latin1_swedish_ci",
        "c": "CHAR(8) CHARACTER SET latin1 COLLATE latin1_general_cs",
    }
    assert entry.schema.options["charset"] == "latin1"
    assert entry.schema.options["collate"] == "latin1_german1_ci"
    assert values[0]["a"] == "café"
    # MariaDB's latin1 is cp1252, with its five unassigned bytes as the C1 controls
    assert values[1]["c"] == "\u20ac\x81\x8d\x8f\x90\x9d\u0178\xff"


def _sqlite_archive(tmp_path: Path, text: str) -> Path:
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, "café"), (2, text)])
    con.commit()
    con.close()
    dbcrate.dump(f"sqlite:///{db}", tmp_path / "s.crate")
    return tmp_path / "s.crate"


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("policy", ["error", "update", "skip"])
@pytest.mark.parametrize("column,text", [
    ("VARCHAR(10) CHARACTER SET latin1", "x😀"),
    ("VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_german1_ci", "漢"),
    ("VARCHAR(10) CHARACTER SET ascii", "é"),
])
def test_a_character_the_column_cannot_hold_fails_the_table(
        column: str, text: str, policy: str, driver: str, dbs: Databases, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Into an existing column whose character set lacks a character of the archive: the
    table fails with the server's reason, and the target keeps exactly what it held (no '?',
    not even the rows that fit)."""
    _use_driver(driver, monkeypatch)
    archive = _sqlite_archive(tmp_path, text)
    dst = dbs.new("mysql")
    run_sql(dst, f"CREATE TABLE t (id INT PRIMARY KEY, a {column})",
            "INSERT INTO t VALUES (9, 'keep')")
    before = _state(dst)
    report = dbcrate.restore(archive, _driver_url(dst, driver), mode="into-existing",
                             on_conflict=policy)
    assert not report.ok
    error = report.tables[0].error or ""
    assert report.tables[0].status == "failed"
    assert "Incorrect string value" in error and "cannot hold a character" in error, error
    assert _state(dst) == before
    with pytest.raises(dbcrate.DbcrateError):
        report.raise_for_failures()


def test_a_character_the_column_cannot_hold_fails_a_mariadb_archive(
        dbs: Databases, tmp_path: Path) -> None:
    """The same from MariaDB: a utf8mb4 source into an existing latin1 column."""
    src = dbs.new("mysql")
    run_sql(src, "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10) CHARACTER SET utf8mb4)",
            "INSERT INTO t VALUES (1, 'café'), (2, 'x😀')")
    dbcrate.dump(src, tmp_path / "m.crate")
    dst = dbs.new("mysql")
    run_sql(dst, "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10) CHARACTER SET latin1)")
    report = dbcrate.restore(tmp_path / "m.crate", dst, mode="into-existing")
    assert not report.ok
    assert "Incorrect string value" in (report.tables[0].error or "")
    assert _state(dst)[2] == []


def test_mysqldb_dump_without_its_reader_is_a_clear_error(dbs: Databases, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A mysql+mysqldb:// source with mysqlclient's reader switched off: a DbcrateError naming
    the way out, not a driver's TypeError (PyMySQL's cursor on a MySQLdb connection)."""
    if not HAVE_MYSQLCLIENT and os.environ.get("CI") != "true":
        pytest.skip("mysqlclient not installed")
    monkeypatch.setenv(mysql_fast.DISABLE_ENV, "0")
    src = dbs.new("mysql")
    run_sql(src, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    with pytest.raises(dbcrate.DbcrateError, match="mysqlclient's reader") as caught:
        dbcrate.dump(_driver_url(src, "mysqlclient"), tmp_path / "x.crate")
    assert mysql_fast.DISABLE_ENV in (caught.value.hint or "")
