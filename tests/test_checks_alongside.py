"""Into a SQLite file the restore makes, the values are checked while the rows load (issue 19:
the copy PostgreSQL -> SQLite no longer waits for the whole read before its first write). The
promise stays the one of a check before writing: a refused value leaves no file where the user
had none, and an existing file (the user's) is still checked before anything is written."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import dbcrate
from dbcrate.errors import NotPortable
from dbcrate.options import RestoreOptions
from dbcrate.progress import Event
from dbcrate.restore.run import iter_restore, plan
from dbcrate.transfer import iter_copy

from conftest import Databases, failing_load_hook, rows, run_cli, run_sql

#: a value SQLite's NUMERIC cannot hold exactly (more than 15 significant digits)
TOO_PRECISE = "1234567890123456789.12"


def _source(dbs: Databases, *, refused: bool) -> str:
    """Table ``a`` (loaded first: 5,000 rows), then ``z``, whose second row SQLite cannot hold
    when ``refused``."""
    source = dbs.new("postgresql")
    value = TOO_PRECISE if refused else "2.25"
    run_sql(source, "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "INSERT INTO a SELECT i, 'a' || i FROM generate_series(1, 5000) i",
            "CREATE TABLE z (id int PRIMARY KEY, n numeric(30, 2))",
            f"INSERT INTO z VALUES (1, 1.5), (2, {value})")
    return source


def _loaded_tables(events: list[Event]) -> list[str]:
    return [e.table for e in events
            if e.phase == "data" and e.finished and e.table
            and not e.description.startswith("Failed")]


def _run(gen: Generator[Event, None, Any]) -> tuple[list[Event], Any]:
    """The events and the result of a restore or a copy."""
    events: list[Event] = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as done:
        return events, done.value


def _refused(gen: Generator[Event, None, Any]) -> tuple[list[Event], NotPortable]:
    """The events of a restore or a copy until its refusal."""
    events: list[Event] = []
    with pytest.raises(NotPortable) as refused:
        while True:
            events.append(next(gen))
    return events, refused.value


def _sqlite_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + "*"))


def test_a_refused_value_removes_the_file_the_copy_made(dbs: Databases, tmp_path: Path) -> None:
    source = _source(dbs, refused=True)
    path = tmp_path / "new.db"
    events, refused = _refused(iter_copy(source, f"sqlite:///{path}", spool_dir=str(tmp_path)))
    assert "z.n" in str(refused) and "this restore made was removed" in str(refused)
    # it did not wait for the checks: table a went in while z was checked, and is gone
    assert "a" in _loaded_tables(events)
    assert _sqlite_files(path) == []  # no database, no -journal beside it
    # the CLI: exit code 9, no file, the hint names the kept spool
    code, _, err = run_cli("copy", source, f"sqlite:///{path}", "--no-progress")
    assert code == 9 and "z.n" in err
    assert _sqlite_files(path) == []


@pytest.mark.parametrize("options", [RestoreOptions(), RestoreOptions(exit_on_error=True),
                                     RestoreOptions(single_transaction=True)],
                         ids=["per-table", "exit-on-error", "single-transaction"])
def test_a_refused_restore_into_a_new_file_leaves_none(dbs: Databases, tmp_path: Path,
                                                       options: RestoreOptions) -> None:
    source = _source(dbs, refused=True)
    archive = tmp_path / "a.crate"
    dbcrate.dump(source, archive)
    path = tmp_path / "new.db"
    events, refused = _refused(iter_restore(archive, f"sqlite:///{path}", options))
    assert "a" in _loaded_tables(events)  # loaded while z was checked, then removed
    assert "z.n" in str(refused) and "id=2" in str(refused)
    assert _sqlite_files(path) == []
    # leaving the table out, the same archive restores
    report = dbcrate.restore(archive, f"sqlite:///{path}", exclude=["z"])
    assert report.ok and report.plan is not None
    assert report.plan["settings"]["checks_with_loads"] is True
    assert rows(f"sqlite:///{path}", "SELECT count(*) FROM a") == [(5000,)]


def test_an_existing_file_is_checked_before_anything_is_written(dbs: Databases,
                                                              tmp_path: Path) -> None:
    source = _source(dbs, refused=True)
    archive = tmp_path / "a.crate"
    dbcrate.dump(source, archive)
    path = tmp_path / "mine.db"
    run_sql(f"sqlite:///{path}", "CREATE TABLE keep (id integer)", "INSERT INTO keep VALUES (1)")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    events, _ = _refused(iter_restore(archive, f"sqlite:///{path}", RestoreOptions()))
    assert _loaded_tables(events) == []
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    # the plan says which: checks first into the user's file, with the loads into a new one
    assert plan(archive, f"sqlite:///{path}").settings.checks_with_loads is False
    new = tmp_path / "new.db"
    assert plan(archive, f"sqlite:///{new}").settings.checks_with_loads is True
    assert not new.exists()  # (planning made no file)
    code, out, err = run_cli("plan", str(archive), f"sqlite:///{new}", "--json", "-T", "z")
    assert code == 0, err
    assert json.loads(out)["plan"]["settings"]["checks_with_loads"] is True


def test_a_copy_that_passes_is_the_same_rows(dbs: Databases, tmp_path: Path) -> None:
    source = _source(dbs, refused=False)
    target = f"sqlite:///{tmp_path / 'new.db'}"
    _, result = _run(iter_copy(source, target, spool_dir=str(tmp_path)))
    report = result.report
    assert report.ok and report.plan["settings"]["checks_with_loads"] is True
    assert rows(target, "SELECT count(*), min(v), max(id) FROM a") == [(5000, "a1", 5000)]
    assert rows(target, "SELECT id, CAST(n AS TEXT) FROM z ORDER BY id") == [(1, "1.5"),
                                                                             (2, "2.25")]
    assert list(tmp_path.glob("dbcrate-copy-*")) == []  # the spool is removed


# the load of z fails on its second batch (in the restore's worker thread): the rest of its
# rows are not read by the load, so the checks read them after the loads
FAIL_ON_Z = failing_load_hook("z", "stopped by the test's hook")


def test_rows_a_failed_load_did_not_read_are_checked_after(dbs: Databases,
                                                          tmp_path: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE z (id int PRIMARY KEY, pad text, n numeric(30, 2))",
            "INSERT INTO z SELECT i, repeat('x', 100), 1.5 FROM generate_series(1, 60000) i",
            f"UPDATE z SET n = {TOO_PRECISE} WHERE id = 60000")
    archive = tmp_path / "z.crate"
    dbcrate.dump(source, archive)
    hooks = tmp_path / "fail_z.py"
    hooks.write_text(FAIL_ON_Z)
    path = tmp_path / "new.db"
    with pytest.raises(NotPortable) as refused:
        dbcrate.restore(archive, f"sqlite:///{path}", hooks=str(hooks))
    assert "z.n" in str(refused.value) and "id=60000" in str(refused.value)
    assert _sqlite_files(path) == []
    # (the same hook on the same rows without the refused value: the load of z stops halfway)
    run_sql(source, "UPDATE z SET n = 1.5 WHERE id = 60000")
    fine = tmp_path / "fine.crate"
    dbcrate.dump(source, fine)
    report = dbcrate.restore(fine, f"sqlite:///{path}", hooks=str(hooks))
    [z] = report.tables
    assert z.status == "failed" and "stopped by the test's hook" in (z.error or "")


def test_a_corrupt_member_refuses_the_restore_and_removes_the_file(dbs: Databases,
                                                                  tmp_path: Path) -> None:
    source = _source(dbs, refused=False)
    folder = tmp_path / "dump"
    dbcrate.dump(source, folder, container="directory")
    member = next(iter(sorted((folder / "data").glob("t0002/*"))))  # z, loaded second
    data = bytearray(member.read_bytes())
    data[len(data) // 2] ^= 0xFF
    member.write_bytes(bytes(data))
    path = tmp_path / "new.db"
    code, _, err = run_cli("restore", str(folder), f"sqlite:///{path}", "--no-progress")
    assert code == 6, err
    assert "checksum" in err.lower() or "sha-256" in err.lower()
    assert _sqlite_files(path) == []


# after table a (whose second row SQLite cannot hold) was refused, the restore is interrupted
# while z loads; a hook that would read the restored rows writes a mark
INTERRUPT_ON_Z = '''
import sqlite3
import threading
from pathlib import Path
MARK = Path(__file__).with_name("hook-ran")
SEEN = Path(__file__).with_name("a-seen")
def transform(table, batch):
    if table == "z" and threading.current_thread().name.startswith("dbcrate-task"):
        # what another reader of the file sees of a, refused before z loads
        with sqlite3.connect(Path(__file__).with_name("new.db")) as db:
            SEEN.write_text(str(db.execute("SELECT count(*) FROM sqlite_master "
                                           "WHERE name = 'a'").fetchone()[0]))
        raise KeyboardInterrupt
    return batch
def update_schema_after_restore(connection, manifest):
    MARK.write_text("ran")
'''


def test_a_refused_table_is_never_kept_even_when_the_restore_is_stopped(
        dbs: Databases, tmp_path: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE a (id int PRIMARY KEY, n numeric(30, 2))",
            f"INSERT INTO a VALUES (1, 1.5), (2, {TOO_PRECISE})",
            "CREATE TABLE z (id int PRIMARY KEY, v text)", "INSERT INTO z VALUES (1, 'z')")
    archive = tmp_path / "a.crate"
    dbcrate.dump(source, archive)
    hooks = tmp_path / "hooks.py"
    hooks.write_text(INTERRUPT_ON_Z)
    path = tmp_path / "new.db"
    with pytest.raises(KeyboardInterrupt):
        dbcrate.restore(archive, f"sqlite:///{path}", hooks=str(hooks), jobs=1)
    assert (tmp_path / "a-seen").read_text() == "0"  # a was never committed (not even created)
    assert _sqlite_files(path) == []  # a's refusal removed the file the restore made
    # refused without an interrupt: the hook that runs after a restore does not run
    hooks.write_text(INTERRUPT_ON_Z.replace("raise KeyboardInterrupt", "pass"))
    with pytest.raises(NotPortable) as refused:
        dbcrate.restore(archive, f"sqlite:///{path}", hooks=str(hooks))
    assert "a.n" in str(refused.value)
    assert not (tmp_path / "hook-ran").exists()
    assert _sqlite_files(path) == []


@pytest.mark.parametrize("refused", [True, False], ids=["after-a-refusal", "no-refusal"])
def test_an_interrupted_copy_says_what_the_target_holds(dbs: Databases, tmp_path: Path,
                                                        refused: bool) -> None:
    source = dbs.new("postgresql")
    value = TOO_PRECISE if refused else "2.5"
    run_sql(source, "CREATE TABLE a (id int PRIMARY KEY, n numeric(30, 2))",
            f"INSERT INTO a VALUES (1, 1.5), (2, {value})",
            "CREATE TABLE z (id int PRIMARY KEY, v text)", "INSERT INTO z VALUES (1, 'z')")
    path = tmp_path / "new.db"
    gen = iter_copy(source, f"sqlite:///{path}", spool_dir=str(tmp_path))
    for event in gen:  # Ctrl-C once table a's load has ended
        if event.phase == "data" and event.finished and event.table == "a":
            break
    with pytest.raises(KeyboardInterrupt) as stopped:
        gen.throw(KeyboardInterrupt())
    notes = " ".join(getattr(stopped.value, "__notes__", []))
    if refused:  # a's refusal removed the file the copy made
        assert "nothing was kept" in notes and _sqlite_files(path) == []
    else:  # (z may have been read, and loaded, before a)
        said = re.search(r"the target holds the (\d+) tables? copied before the read was "
                         r"interrupted \(([^)]*)\)", notes)
        assert said is not None, notes
        listed = said.group(2).split(", ")
        assert "a" in listed and int(said.group(1)) == len(listed)
        for name in listed:  # each table named holds its rows
            assert rows(f"sqlite:///{path}", f"SELECT count(*) FROM {name}") != [(0,)]
        assert rows(f"sqlite:///{path}", "SELECT count(*) FROM a") == [(2,)]


def test_a_link_where_the_file_would_be_is_the_users(dbs: Databases, tmp_path: Path) -> None:
    """A dangling symlink at the target's path is not a file the restore made: the checks come
    first, and a refusal leaves the link where it was."""
    source = _source(dbs, refused=True)
    archive = tmp_path / "a.crate"
    dbcrate.dump(source, archive)
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "elsewhere" / "real.db")
    events, _ = _refused(iter_restore(archive, f"sqlite:///{link}", RestoreOptions()))
    assert _loaded_tables(events) == []  # checked before anything was written
    assert link.is_symlink()
