"""The ``dbcrate`` command driven as a real subprocess: exit codes, messages, files.

Every user error must end with its documented exit code (dbcrate.errors.EXIT_CODES), a message
that names the problem, and never a traceback or an "internal error".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

import dbcrate

from conftest import DATASETS, Databases, run_sql
from content import snapshot

CHINOOK = DATASETS / "chinook" / "Chinook_Sqlite.sqlite"
CHINOOK_TABLES = {
    "Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "InvoiceLine", "MediaType",
    "Playlist", "PlaylistTrack", "Track",
}
CHINOOK_ROWS = 15607
PASSWORD = "S3cr3tPW"
#: wide, colourless output so that messages are never wrapped or decorated
ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)


@dataclass
class Result:
    rc: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def text(self) -> str:
        """stdout and stderr with whitespace normalised (for substring checks)."""
        return " ".join((self.out + "\n" + self.stderr).split())


def dbcrate_cmd() -> str:
    return f"{shlex.quote(sys.executable)} -m dbcrate"


def run(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
        preexec_fn=None, timeout: float = 120) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "dbcrate", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True, cwd=cwd, env=ENV, preexec_fn=preexec_fn, timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def assert_ok(res: Result) -> None:
    assert res.rc == 0, f"exit {res.rc}\nstdout: {res.out}\nstderr: {res.stderr}"
    assert "Traceback" not in res.stderr


def assert_user_error(res: Result, code: int, *fragments: str) -> None:
    """Exit ``code``, no traceback, no 'internal error', and each fragment in the message."""
    detail = f"exit {res.rc}\nstdout: {res.out}\nstderr: {res.stderr}"
    assert "Traceback" not in res.stderr, detail
    assert "internal error" not in res.stderr, detail
    assert res.rc == code, detail
    assert "error" in res.stderr.lower(), detail
    flat = " ".join(res.stderr.split())
    for fragment in fragments:
        assert fragment.lower() in flat.lower(), f"{fragment!r} not in the message\n{detail}"


def sqlite_tables(path: Path) -> set[str]:
    if not path.exists():
        return set()
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def sqlite_counts(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in sqlite_tables(path)}
    finally:
        con.close()


@pytest.fixture(scope="module")
def chinook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the Chinook SQLite database."""
    if not CHINOOK.exists():
        pytest.skip(f"dataset missing: {CHINOOK}")
    dst = tmp_path_factory.mktemp("src") / "chinook.db"
    shutil.copy(CHINOOK, dst)
    return dst


@pytest.fixture(scope="module")
def archive(chinook: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good archive of Chinook, written by the library (read-only for the tests)."""
    path = tmp_path_factory.mktemp("arch") / "chinook.crate"
    dbcrate.dump(f"sqlite:///{chinook}", path)
    return path


# ------------------------------------------------------------------------------------ help
@pytest.mark.parametrize("command", [[], ["dump"], ["restore"], ["ls"], ["verify"]],
                         ids=["main", "dump", "restore", "ls", "verify"])
def test_help_shows_examples(command: list[str]) -> None:
    res = run(*command, "--help")
    assert_ok(res)
    assert "Examples" in res.out
    assert "dbcrate " + (command[0] if command else "dump") in res.out
    if not command:
        assert "Exit codes" in res.out
        for sub in ("dump", "restore", "ls", "verify"):
            assert sub in res.out


def test_version() -> None:
    res = run("--version")
    assert_ok(res)
    assert dbcrate.__version__ in res.out


@pytest.mark.parametrize("args", [["frobnicate"], ["dump"], ["dump", "--no-such-option", "a", "b"],
                                  ["dump", "sqlite:///x.db", "x.crate", "--compress-level", "99"]])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    res = run(*args, cwd=tmp_path)
    assert "Traceback" not in res.stderr
    assert res.rc == 2, res.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- the main workflow
def test_dump_ls_verify_restore_chinook(chinook: Path, tmp_path: Path) -> None:
    crate = tmp_path / "chinook.crate"
    res = run("dump", f"sqlite:///{chinook}", str(crate))
    assert_ok(res)
    assert "11 tables" in res.text and f"{CHINOOK_ROWS:,} rows" in res.text
    assert crate.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["chinook.crate"]  # no temp file left

    res = run("ls", str(crate))
    assert_ok(res)
    for name in CHINOOK_TABLES:
        assert re.search(rf"^\s*{name}\s+[\d,]+\s", res.out, re.M), (name, res.out)
    assert "11 tables" in res.text and f"{CHINOOK_ROWS:,} rows" in res.text
    assert "sqlite" in res.out

    res = run("verify", str(crate))
    assert_ok(res)
    assert res.out.startswith("ok:")
    assert "11 tables" in res.text

    target = tmp_path / "copy.db"
    res = run("restore", str(crate), f"sqlite:///{target}")
    assert_ok(res)
    assert "restored 11 tables" in res.text
    assert sqlite_tables(target) == CHINOOK_TABLES
    assert snapshot(f"sqlite:///{target}") == snapshot(f"sqlite:///{chinook}")


def test_dump_accepts_a_plain_sqlite_path(chinook: Path, tmp_path: Path) -> None:
    crate = tmp_path / "plain.crate"
    res = run("dump", str(chinook), str(crate))
    assert_ok(res)
    with dbcrate.open_archive(crate) as a:
        assert {t.name for t in a.tables} == CHINOOK_TABLES


def test_ls_json(archive: Path) -> None:
    res = run("ls", str(archive), "--json")
    assert_ok(res)
    data = json.loads(res.out)
    assert data["archive"] == str(archive)
    assert data["format_version"] == 3  # with the native schema
    assert data["dbcrate_version"] == dbcrate.__version__
    assert data["complete"] is True
    assert data["data_format"] == "parquet"
    assert data["source"]["engine"] == "sqlite"
    assert data["rows"] == CHINOOK_ROWS
    assert isinstance(data["bytes"], int) and data["bytes"] > 0
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", data["created_at"])
    assert {t["name"] for t in data["tables"]} == CHINOOK_TABLES
    for t in data["tables"]:
        assert set(t) >= {"name", "rows", "bytes", "chunks", "columns", "status"}
        assert t["status"] == "ok" and t["chunks"] >= 1 and t["columns"] >= 2
    assert sum(t["rows"] for t in data["tables"]) == CHINOOK_ROWS
    track = next(t for t in data["tables"] if t["name"] == "Track")
    assert track["rows"] == 3503 and track["columns"] == 9


def test_verify_json(archive: Path) -> None:
    res = run("verify", str(archive), "--json")
    assert_ok(res)
    data = json.loads(res.out)
    assert data == {"archive": str(archive), "ok": True, "tables": 11, "members": 11,
                    "rows": CHINOOK_ROWS, "bytes": data["bytes"], "storage_files": 0,
                    "encrypted": False}
    assert isinstance(data["bytes"], int) and data["bytes"] > 0


def test_restore_json_report(archive: Path, tmp_path: Path) -> None:
    res = run("restore", str(archive), f"sqlite:///{tmp_path / 'j.db'}", "--json")
    assert_ok(res)
    data = json.loads(res.out)
    assert data["ok"] is True and data["rows"] == CHINOOK_ROWS
    assert {t["name"] for t in data["tables"]} == CHINOOK_TABLES
    assert all(t["status"] == "restored" for t in data["tables"])


def test_pipe_dump_to_restore(chinook: Path, tmp_path: Path) -> None:
    target = tmp_path / "piped.db"
    cmd = (f"{dbcrate_cmd()} dump {shlex.quote(f'sqlite:///{chinook}')} - | "
           f"{dbcrate_cmd()} restore - {shlex.quote(f'sqlite:///{target}')}")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, env=ENV,
                          timeout=120)
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    # dump writes its summary to stderr when the archive goes to stdout
    assert "dumped 11 tables" in " ".join(stderr.split())
    assert "restored 11 tables" in " ".join(proc.stdout.decode().split())
    assert snapshot(f"sqlite:///{target}") == snapshot(f"sqlite:///{chinook}")
    assert list(tmp_path.iterdir()) == [target]


def test_dump_to_stdout_is_a_valid_archive(chinook: Path, tmp_path: Path) -> None:
    res = run("dump", f"sqlite:///{chinook}", "-")
    assert_ok(res)
    crate = tmp_path / "stdout.crate"
    crate.write_bytes(res.stdout)
    with dbcrate.open_archive(crate) as a:
        a.verify()
        assert a.manifest.rows == CHINOOK_ROWS
    # and it can be read back from standard input
    res = run("ls", "-", stdin=res.stdout)
    assert_ok(res)
    assert "Track" in res.out


# ------------------------------------------------------------------------- output files
def test_archive_mode_is_0600_even_with_umask_000(chinook: Path, tmp_path: Path) -> None:
    crate = tmp_path / "open.crate"
    res = run("dump", f"sqlite:///{chinook}", str(crate), preexec_fn=lambda: os.umask(0))
    assert_ok(res)
    assert stat.S_IMODE(crate.stat().st_mode) == 0o600

    # replacing an existing, world-readable archive also gives 0600
    old = tmp_path / "old.crate"
    old.write_bytes(b"old")
    old.chmod(0o644)
    res = run("dump", f"sqlite:///{chinook}", str(old), preexec_fn=lambda: os.umask(0))
    assert_ok(res)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert old.stat().st_size > 1000

    # into a directory too
    outdir = tmp_path / "dir"
    outdir.mkdir()
    res = run("dump", f"sqlite:///{chinook}", str(outdir), preexec_fn=lambda: os.umask(0))
    assert_ok(res)
    (made,) = list(outdir.iterdir())
    assert stat.S_IMODE(made.stat().st_mode) == 0o600


@pytest.mark.parametrize("form", ["url", "path"])
def test_dump_into_directory_names_the_file(form: str, chinook: Path, tmp_path: Path) -> None:
    shop = tmp_path / "shop.db"
    shutil.copy(chinook, shop)
    outdir = tmp_path / "backups"
    outdir.mkdir()
    source = f"sqlite:///{shop}" if form == "url" else str(shop)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    res = run("dump", source, str(outdir))
    after = dt.datetime.now(dt.UTC)
    assert_ok(res)
    files = list(outdir.iterdir())
    assert len(files) == 1, files
    m = re.fullmatch(r"shop_(\d{8}T\d{6}Z)_data\.crate", files[0].name)  # data, no storages
    assert m, files[0].name
    stamp = dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert before <= stamp <= after
    assert files[0].name in res.text
    with dbcrate.open_archive(files[0]) as a:
        assert len(a.tables) == 11


def test_output_in_missing_directory_exit_12(chinook: Path, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "deeper" / "x.crate"
    res = run("dump", f"sqlite:///{chinook}", str(out))
    assert_user_error(res, 12, "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_output_is_a_file_in_place_of_a_directory_exit_12(chinook: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("dump", f"sqlite:///{chinook}", str(blocker / "x.crate"))
    assert_user_error(res, 12)
    assert blocker.read_text() == "x"


def test_output_in_read_only_directory_exit_12(chinook: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = run("dump", f"sqlite:///{chinook}", str(ro / "x.crate"))
        assert_user_error(res, 12)
    finally:
        ro.chmod(0o700)


def test_dump_to_a_terminal_is_refused(chinook: Path) -> None:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "dbcrate", "dump", f"sqlite:///{chinook}", "-"],
                              stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                              env=ENV, timeout=120)
    finally:
        os.close(slave)
    written = b""
    try:
        while True:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            written += chunk
    except OSError:
        pass
    finally:
        os.close(master)
    res = Result(proc.returncode, written, proc.stderr.decode("utf-8", "replace"))
    assert_user_error(res, 2, "terminal")
    assert b"dbcrate-archive" not in written


# ----------------------------------------------------------------------- selection errors
def test_dump_table_pattern_matching_nothing_exit_7(chinook: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.crate"
    res = run("dump", f"sqlite:///{chinook}", str(out), "-t", "NoSuchTable*")
    assert_user_error(res, 7, "NoSuchTable*")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_restore_table_pattern_matching_nothing_exit_7(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    res = run("restore", str(archive), f"sqlite:///{target}", "-t", "nope")
    assert_user_error(res, 7, "nope")
    assert sqlite_tables(target) == set()


def test_dump_table_selection(chinook: Path, tmp_path: Path) -> None:
    out = tmp_path / "sel.crate"
    res = run("dump", f"sqlite:///{chinook}", str(out), "-t", "Invoice*", "-T", "InvoiceLine")
    assert_ok(res)
    with dbcrate.open_archive(out) as a:
        assert [t.name for t in a.tables] == ["Invoice"]


# ---------------------------------------------------------------------- connection errors
@pytest.mark.parametrize(("url", "fragments"), [
    ("nonsense://x", ["nonsense"]),
    ("postgresql+psycopg://postgres@127.0.0.1:1/x", ["cannot connect", "127.0.0.1:1"]),
    ("mysql+pymysql://root@127.0.0.1:1/x", ["cannot connect", "127.0.0.1:1"]),
    ("this is not a url", ["not a database URL"]),
], ids=["unknown-driver", "pg-unreachable", "mysql-unreachable", "garbage"])
def test_bad_source_url_exit_3(url: str, fragments: list[str], tmp_path: Path) -> None:
    out = tmp_path / "x.crate"
    res = run("dump", url, str(out))
    assert_user_error(res, 3, *fragments)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("url", "fragments"), [
    ("nonsense://x", ["nonsense"]),
    ("postgresql+psycopg://postgres@127.0.0.1:1/x", ["cannot connect", "127.0.0.1:1"]),
], ids=["unknown-driver", "pg-unreachable"])
def test_bad_target_url_exit_3(url: str, fragments: list[str], archive: Path) -> None:
    res = run("restore", str(archive), url)
    assert_user_error(res, 3, *fragments)


@pytest.mark.parametrize("command", ["dump", "dump-dry-run", "restore"])
def test_password_never_printed_on_connection_failure(command: str, archive: Path,
                                                      tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/x"
    if command == "dump":
        res = run("dump", url, str(tmp_path / "x.crate"))
    elif command == "dump-dry-run":
        res = run("dump", url, str(tmp_path / "x.crate"), "--dry-run", "--json")
    else:
        res = run("restore", str(archive), url, "--json")
    assert_user_error(res, 3, "127.0.0.1:1")
    assert PASSWORD not in res.out
    assert PASSWORD not in res.stderr


def test_password_never_printed_when_server_refuses_database(tmp_path: Path) -> None:
    from conftest import require
    require("postgresql")
    base = sa.engine.make_url("postgresql+psycopg://postgres@127.0.0.1:5432/x")
    url = base.set(password=PASSWORD, database="dbcrate_no_such_database_here")
    res = run("dump", url.render_as_string(hide_password=False), str(tmp_path / "x.crate"))
    assert_user_error(res, 3, "dbcrate_no_such_database_here")
    assert PASSWORD not in res.out + res.stderr


def test_password_never_stored_or_printed_on_success(dbs: Databases, tmp_path: Path) -> None:
    url = dbs.new("postgresql")
    run_sql(url, "CREATE TABLE t (id integer PRIMARY KEY, v text)",
            "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    # the local server trusts the user, so any password is accepted
    with_pw = sa.engine.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    crate = tmp_path / "pw.crate"
    outputs = {"dump": run("dump", with_pw, str(crate)),
               "dump --dry-run": run("dump", with_pw, str(tmp_path / "y.crate"), "--dry-run"),
               "dump --json": run("dump", with_pw, str(tmp_path / "z.crate"), "--json")}
    outputs["ls"] = run("ls", str(crate))
    outputs["ls --json"] = run("ls", str(crate), "--json")
    target = dbs.new("postgresql")
    target_pw = sa.engine.make_url(target).set(password=PASSWORD).render_as_string(
        hide_password=False)
    outputs["restore"] = run("restore", str(crate), target_pw)
    for res in outputs.values():
        assert_ok(res)
    leaks = [label for label, res in outputs.items()
             if PASSWORD in res.out or PASSWORD in res.stderr]
    if PASSWORD.encode() in crate.read_bytes():
        leaks.append("the archive file (manifest source.url)")
    assert leaks == [], f"the password appears in: {leaks}"
    assert json.loads(outputs["ls --json"].out)["source"]["url"].startswith(
        "postgresql+psycopg://postgres@")


@pytest.mark.parametrize("form", ["url", "path"])
def test_missing_sqlite_source_exit_3_creates_nothing(form: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    out = tmp_path / "x.crate"
    res = run("dump", f"sqlite:///{missing}" if form == "url" else str(missing), str(out),
              cwd=tmp_path)
    assert_user_error(res, 3, "missing.db")
    assert not missing.exists()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- archive errors (CLI)
@pytest.mark.parametrize("command", ["ls", "verify", "restore"])
def test_missing_archive_exit_4(command: str, tmp_path: Path) -> None:
    args = [command, str(tmp_path / "nope.crate")]
    if command == "restore":
        args.append(f"sqlite:///{tmp_path / 't.db'}")
    res = run(*args)
    assert_user_error(res, 4, "nope.crate")
    assert not (tmp_path / "t.db").exists()


# ------------------------------------------------------------------------ restore behaviour
def test_restore_conflict_exit_8_then_clean(archive: Path, chinook: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    url = f"sqlite:///{target}"
    assert_ok(run("restore", str(archive), url))
    # change the target so that we can see whether it was touched
    con = sqlite3.connect(target)
    con.execute("DELETE FROM PlaylistTrack")
    con.execute("UPDATE Artist SET Name = 'changed' WHERE ArtistId = 1")
    con.commit()
    con.close()
    changed = sqlite_counts(target)

    res = run("restore", str(archive), url)
    assert_user_error(res, 8, "--clean", "Artist")
    assert sqlite_counts(target) == changed  # untouched

    res = run("restore", str(archive), url, "--clean")
    assert_ok(res)
    assert snapshot(url) == snapshot(f"sqlite:///{chinook}")


def test_restore_conflict_exit_8_postgresql(archive: Path, dbs: Databases) -> None:
    url = dbs.new("postgresql")
    run_sql(url, 'CREATE TABLE "Genre" (x integer)', 'INSERT INTO "Genre" VALUES (42)')
    res = run("restore", str(archive), url)
    assert_user_error(res, 8, "Genre", "--clean")
    eng = sa.create_engine(url)
    with eng.connect() as c:
        assert sa.inspect(c).get_table_names() == ["Genre"]
        assert c.exec_driver_sql('SELECT x FROM "Genre"').all() == [(42,)]
    eng.dispose()
    assert_ok(run("restore", str(archive), url, "--clean"))
    assert set(snapshot(url)) == CHINOOK_TABLES


def test_restore_dry_run_changes_nothing(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "dry.db"
    res = run("restore", str(archive), f"sqlite:///{target}", "--dry-run")
    assert_ok(res)
    assert "dry run" in res.text and "nothing was changed" in res.text
    assert sqlite_tables(target) == set()


def test_restore_dry_run_clean_keeps_existing_data(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    url = f"sqlite:///{target}"
    assert_ok(run("restore", str(archive), url, "-t", "Genre"))
    con = sqlite3.connect(target)
    con.execute("DELETE FROM Genre WHERE GenreId > 3")
    con.commit()
    con.close()
    res = run("restore", str(archive), url, "--dry-run", "--clean")
    assert_ok(res)
    assert sqlite_tables(target) == {"Genre"}
    assert sqlite_counts(target) == {"Genre": 3}


def test_restore_dry_run_postgresql_stays_empty(archive: Path, dbs: Databases) -> None:
    url = dbs.new("postgresql")
    res = run("restore", str(archive), url, "--dry-run", "--json")
    assert_ok(res)
    data = json.loads(res.out)
    assert {t["name"] for t in data["tables"]} == CHINOOK_TABLES
    assert all(t["status"] == "planned" for t in data["tables"])
    eng = sa.create_engine(url)
    with eng.connect() as c:
        assert sa.inspect(c).get_table_names() == []
    eng.dispose()


def test_restore_from_stdin(archive: Path, chinook: Path, tmp_path: Path) -> None:
    target = tmp_path / "stdin.db"
    res = run("restore", "-", f"sqlite:///{target}", stdin=archive.read_bytes())
    assert_ok(res)
    assert snapshot(f"sqlite:///{target}") == snapshot(f"sqlite:///{chinook}")


def test_restore_garbage_from_stdin_exit_4(tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    res = run("restore", "-", f"sqlite:///{target}", stdin=b"this is not an archive\n" * 100)
    assert_user_error(res, 4, "standard input")
    assert sqlite_tables(target) == set()


def test_progress_bars_for_interleaved_phases(archive: Path, tmp_path: Path) -> None:
    """--progress with the restore's phases interleaved (indexes built while tables load): one
    bar per phase, and the same result as without bars."""
    target = tmp_path / "p.db"
    res = run("restore", str(archive), f"sqlite:///{target}", "--progress", "-j", "2")
    assert res.rc == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "restored 11 tables" in res.out
    assert len(sqlite_tables(target)) == 11


def test_a_long_restore_report_lists_the_tables_with_something_to_say(tmp_path: Path) -> None:
    """Over 50 tables restored without a note, the report lists only the others (a
    failure, a warning) and says how many it left out; --json lists every table."""
    source = tmp_path / "many.db"
    with sqlite3.connect(source) as conn:
        for i in range(60):
            conn.execute(f"CREATE TABLE t{i:02d} (id INTEGER PRIMARY KEY, v TEXT)")
            conn.execute(f"INSERT INTO t{i:02d} VALUES (1, 'x')")
    archive = tmp_path / "many.crate"
    assert_ok(run("dump", f"sqlite:///{source}", str(archive)))
    # into an existing table with one column fewer: its rows load, with a note on t07
    target = tmp_path / "into.db"
    with sqlite3.connect(target) as conn:
        for i in range(60):
            columns = "id INTEGER PRIMARY KEY" + (", v TEXT" if i != 7 else "")
            conn.execute(f"CREATE TABLE t{i:02d} ({columns})")
    res = run("restore", str(archive), f"sqlite:///{target}", "--data-only")
    assert_ok(res)
    listed = set(re.findall(r"^\s*(t\d\d)\s", res.out, re.MULTILINE))
    assert listed == {"t07"}, res.out
    assert "59 tables restored without notes not listed (--json lists every table)" in res.out
    res = run("restore", str(archive), f"sqlite:///{tmp_path / 'all.db'}", "--json")
    assert_ok(res)
    assert len(json.loads(res.out)["tables"]) == 60
