"""A DBA's habits from pg_dump/pg_restore (issue 17): ``restore -C`` creates the target database,
the short options mean what they mean there, ``--traceback`` goes anywhere, hints name the right
fix (and the library's speak Python), and a count of one is singular.

Real PostgreSQL, MariaDB and SQLite; the command runs in this process (``dbcrate.cli.main``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.cli import cli
from dbcrate.errors import ConnectionFailed, NotPortable, TargetConflict, UsageError
from dbcrate.options import RestoreOptions

from conftest import MY_ADMIN, PG_ADMIN, Databases, require, rows, run_cli, run_sql, tables

PASSWORD = "S3cr3tPW"


def _run(*argv: str) -> tuple[int, str, str]:
    """``dbcrate`` in this process: exit code, stdout, stderr (whitespace normalised)."""
    code, out, err = run_cli(*argv)
    return code, " ".join(out.split()), " ".join(err.split())


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive of one table of two rows."""
    db = tmp_path / "src.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO item VALUES (?, ?)", [(1, "a"), (2, "b")])
        conn.commit()
    path = tmp_path / "a.crate"
    dbcrate.dump(f"sqlite:///{db}", path)
    return path


def _missing_database(kind: str, dbs: Databases, password: str | None = None) -> str:
    """The URL of a database that does not exist yet (dropped at the end of the test)."""
    name = f"dbcrate_t_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        return f"sqlite:///{dbs.tmp_path / (name + '.db')}"
    require(kind)
    dbs.created.append((kind, name))  # the fixture drops it
    base = sa.engine.make_url(PG_ADMIN if kind == "postgresql" else MY_ADMIN)
    return base.set(database=name, password=password).render_as_string(hide_password=False)


# ------------------------------------------------------------------------------ restore -C
@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_create_makes_the_database_and_restores(kind: str, archive: Path, dbs: Databases) -> None:
    url = _missing_database(kind, dbs)
    if kind != "sqlite":  # without -C: exit 3, and the hint names --create
        code, _, err = _run("restore", str(archive), url)
        assert code == 3, err
        assert "does not exist" in err and "hint: restore with --create" in err
    code, out, err = _run("restore", "-C", str(archive), url, "--no-progress")
    assert code == 0, err
    assert "restored 1 table (2 rows)" in out
    assert rows(url, "SELECT id, name FROM item ORDER BY id") == [(1, "a"), (2, "b")]
    # again: the database exists and holds a table -> refused (usage error), unless --clean
    code, _, err = _run("restore", "--create", str(archive), url)
    assert code == 2, err
    assert "exists already and holds 1 table (item)" in err
    assert "hint: add --clean" in err and "clean=True" not in err
    code, out, err = _run("restore", "-C", "-c", str(archive), url, "--no-progress")
    assert code == 0, err
    assert rows(url, "SELECT count(*) FROM item") == [(2,)]


def test_create_into_an_empty_existing_database_restores(archive: Path, dbs: Databases) -> None:
    url = dbs.new("postgresql")
    code, _, err = _run("restore", "-C", str(archive), url, "--no-progress")
    assert code == 0, err
    assert tables(url) == {"item"}


def test_create_quotes_the_name_and_never_shows_the_password(archive: Path,
                                                             dbs: Databases) -> None:
    """A name that needs quoting is created as it is (the dialect quotes it); the password is
    in no message."""
    url = _missing_database("postgresql", dbs, password=PASSWORD)
    odd = sa.engine.make_url(url)
    name = odd.database + "-Odd name"  # upper case, a hyphen, a space: only quoted
    dbs.created.append(("postgresql", name))
    url = odd.set(database=name).render_as_string(hide_password=False)
    code, _, err = _run("restore", "-C", str(archive), url, "--no-progress")
    assert code == 0, err
    assert rows(PG_ADMIN, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == [(1,)]
    code, _, err = _run("restore", "-C", str(archive), url)
    assert code == 2 and "exists already" in err
    code, _, err = _run("restore", str(archive), url.replace("Odd", "Gone"))
    assert code == 3 and "hint: restore with --create" in err
    assert PASSWORD not in err


def test_create_on_a_dry_run_creates_nothing(archive: Path, dbs: Databases) -> None:
    url = _missing_database("mysql", dbs)
    code, _, err = _run("restore", "-C", "--dry-run", str(archive), url)
    assert code == 2 and "a dry run changes nothing" in err
    name = sa.engine.make_url(url).database
    assert rows(MY_ADMIN, f"SELECT count(*) FROM information_schema.SCHEMATA "
                f"WHERE SCHEMA_NAME = '{name}'") == [(0,)]


# --------------------------------------------------------------------------- short options
def _params(command: str, *args: str) -> dict[str, Any]:
    found = cli.commands[command]
    assert isinstance(found, click.Command)
    return found.make_context(command, ["ARCHIVE", "URL", *args]).params


@pytest.mark.parametrize(("command", "short", "long"), [
    ("restore", ["-c", "-1", "-a", "-e", "-O", "-x", "-C"],
     ["--clean", "--single-transaction", "--data-only", "--exit-on-error", "--no-owner",
      "--no-privileges", "--create"]),
    ("restore", ["-s"], ["--schema-only"]),
    ("restore", ["-1c"], ["--single-transaction", "--clean"]),
    ("plan", ["-c", "-O", "-x"], ["--clean", "--no-owner", "--no-privileges"]),
    ("dump", ["-a", "-s"], ["--data-only", "--schema-only"]),
])
def test_short_options_are_the_long_ones(command: str, short: list[str], long: list[str]) -> None:
    by_short, by_long = _params(command, *short), _params(command, *long)
    assert by_short == by_long
    assert by_short != _params(command)  # they did set something


def test_new_flags_reach_their_fields() -> None:
    assert _params("restore", "--accept-edits")["accept_edits"] is True
    assert _params("restore", "-C")["create"] is True
    assert _params("dump", "--ignore-storage-exclude")["ignore_storage_exclude"] is True
    assert _params("dump", "--print-script")["print_script"] is True


def test_dump_data_only_carries_no_native_schema(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_sql(f"sqlite:///{db}", "CREATE TABLE t (id INTEGER PRIMARY KEY)",
            "CREATE VIEW v AS SELECT id FROM t", "INSERT INTO t VALUES (1)")
    for flag in ("-a", "--data-only"):
        out = tmp_path / f"{flag.strip('-')}.crate"
        code, _, err = _run("dump", str(db), str(out), flag, "--no-progress")
        assert code == 0, err
        with dbcrate.open_archive(out) as a:
            assert a.manifest.native is None and a.manifest.rows == 1


def test_exit_on_error_stops_at_the_first_failed_table(tmp_path: Path) -> None:
    """-e: the tables after a failed one are not attempted; without it they are restored."""
    db = tmp_path / "s.db"
    run_sql(f"sqlite:///{db}", "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
            "CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)",
            "INSERT INTO a VALUES (1, 'x')", "INSERT INTO b VALUES (1, 'y')")
    crate = tmp_path / "s.crate"
    dbcrate.dump(f"sqlite:///{db}", crate)
    for flag, b_status in (("-e", "skipped"), (None, "failed")):
        target = tmp_path / f"t_{flag}.db"
        # both tables exist with a row of the same key: into-existing appends and fails
        run_sql(f"sqlite:///{target}", "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
                "CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)",
                "INSERT INTO a VALUES (1, 'old')", "INSERT INTO b VALUES (1, 'old')")
        report = dbcrate.restore(crate, f"sqlite:///{target}", RestoreOptions(
            data_only=True, exit_on_error=flag is not None))
        status = {t.name: t.status for t in report.tables}
        assert status == {"a": "failed", "b": b_status}, (flag, status)


# ------------------------------------------------------------------------------ --traceback
def test_traceback_after_the_subcommand(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.crate")
    for argv in (["--traceback", "ls", missing], ["ls", missing, "--traceback"],
                 ["ls", "--traceback", missing]):
        code, _, err = _run(*argv)
        assert code == 4 and "Traceback" in err, argv
    code, _, err = _run("ls", missing)
    assert code == 4 and "Traceback" not in err
    for argv in (["--help"], ["dump", "--help"], ["restore", "--help"], ["plan", "--help"],
                 ["ls", "--help"], ["verify", "--help"], ["convert", "--help"]):
        assert "--traceback" in _run(*argv)[1], argv


def test_help_lists_the_new_options() -> None:
    restore_help = _run("restore", "--help")[1]
    for text in ("-C, --create", "-c, --clean", "-1, --single-transaction", "-a, --data-only",
                 "-s, --schema-only", "-e, --exit-on-error", "--accept-edits",
                 "Stop at the first table that fails"):
        assert text in restore_help, text
    dump_help = _run("dump", "--help")[1]
    for text in ("-a, --data-only", "-s, --schema-only", "--ignore-storage-exclude",
                 "--print-script"):
        assert text in dump_help, text


# ------------------------------------------------------------------------------------ hints
def test_missing_table_into_existing_says_create_it(archive: Path, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'empty.db'}"
    run_sql(target, "CREATE TABLE other (id INTEGER)")
    with pytest.raises(NotPortable) as info:
        dbcrate.restore(archive, target, RestoreOptions(mode="into-existing"))
    assert "fix these values" not in (info.value.hint or "")
    assert "create the missing tables first" in (info.value.hint or "")
    assert "mode='recreate'" in (info.value.hint or "")
    code, _, err = _run("restore", str(archive), target, "--mode", "into-existing")
    assert code == 9, err
    assert "the target has no such table" in err
    assert "--mode recreate" in err and "--exclude-table PATTERN" in err
    assert "fix these values" not in err


def test_sqlite_file_that_cannot_be_opened_speaks_of_files(archive: Path, tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    code, _, err = _run("restore", str(archive), f"sqlite:///{tmp_path / 'adir'}")
    assert code == 3, err
    assert "cannot open the database file" in err
    for word in ("server", "credentials"):
        assert word not in err


def test_dump_of_a_missing_database_does_not_suggest_create(dbs: Databases) -> None:
    url = _missing_database("postgresql", dbs)
    code, _, err = _run("dump", url, "x.crate")
    assert code == 3 and "does not exist" in err
    assert "create" not in err.split("hint:")[1]


def test_library_errors_speak_python(archive: Path, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 't.db'}"
    dbcrate.restore(archive, target)
    with pytest.raises(TargetConflict) as conflict:
        dbcrate.restore(archive, target)
    assert "clean=True" in (conflict.value.hint or "")
    assert "--" not in (conflict.value.hint or "")
    with pytest.raises(UsageError) as usage:
        dbcrate.restore(archive, target, RestoreOptions(on_conflict="check", clean=True,
                                                        mode="into-existing"))
    assert "on_conflict='check'" in usage.value.message and "--" not in usage.value.message
    with pytest.raises(ConnectionFailed) as missing:
        dbcrate.restore(archive, "postgresql://postgres@127.0.0.1/dbcrate_no_such_db_x")
    assert "create=True" in (missing.value.hint or "")
    # the CLI says the same with flags
    code, _, err = _run("restore", str(archive), target)
    assert code == 8 and "hint: add --clean" in err and "clean=True" not in err
    code, _, err = _run("restore", str(archive), target, "--mode", "into-existing", "--clean",
                        "--on-conflict", "check")
    assert code == 2 and "--on-conflict check compares" in err and "--clean would" in err


# ---------------------------------------------------------------------------- "1 table"
def test_a_count_of_one_is_singular(archive: Path, tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    checks = {
        ("dump", str(db), str(tmp_path / "b.crate"), "--no-progress"): "dumped 1 table, 2 rows",
        ("dump", str(db), str(tmp_path / "c.crate"), "--dry-run"): "would dump 1 table",
        ("ls", str(archive)): "1 table, 2 rows",
        ("verify", str(archive), "--no-progress"): "1 table, 1 data member, 2 rows",
        ("convert", str(archive), str(tmp_path / "d.sqlite"), "--as", "sqlite",
         "--no-progress"): "converted 1 table, 2 rows",
        ("restore", str(archive), f"sqlite:///{tmp_path / 'r.db'}", "--no-progress"):
            "restored 1 table (2 rows)",
        ("plan", str(archive), f"sqlite:///{tmp_path / 'p.db'}"): "dry run: 1 table would be",
    }
    for argv, expected in checks.items():
        code, out, err = _run(*argv)
        assert code == 0, (argv, err)
        text = out + " " + err
        assert expected in text, (argv, text)
        assert "1 tables" not in text and "1 rows" not in text, (argv, text)


def test_print_script_dumps_nothing(archive: Path, tmp_path: Path) -> None:
    pytest.importorskip("dbcrate.dump.script")  # written in another part of issue 17
    db = tmp_path / "src.db"
    out_path = tmp_path / "never.crate"
    code, out, err = _run("dump", str(db), str(out_path), "--print-script")
    assert code == 0, err
    assert out.strip() and not out_path.exists()
