"""Ctrl-C in the middle of a big table (issue 17): the command stops within a second, whatever
the table's size, on every engine and with -j1 and -j2.

A real table of 2M rows per engine (made once per module, on the server: generate_series,
MariaDB's sequence engine, a recursive CTE), a real ``python -m dbcrate`` process, a real
SIGINT once the server runs the big table's statement (COPY, SELECT, LOAD DATA; for SQLite:
once the archive's or the staging file's temp file exists). What is asserted: exit 130, the
CLI's message and no traceback, the delay from the signal to the exit (printed), nothing left
behind by a dump (no archive, no temp file in the output directory or in TMPDIR), and for a
restore the journal: ``--resume`` then restores every row exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import dbcrate

from conftest import Databases, engine_of, require, rows

ROWS = 2_000_000
#: the issue asks for "within a second"; the margin is for a loaded two-core CI machine
LIMIT = 1.5
ROOT = Path(__file__).resolve().parents[1]

BIG_SQL = {
    "postgresql": ["CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), "
                   "at timestamp)",
                   "INSERT INTO big SELECT g, 'name ' || g, g / 100.0, timestamp '2020-01-01' "
                   f"+ g * interval '1 second' FROM generate_series(1, {ROWS}) g"],
    "mysql": ["CREATE TABLE big (id bigint PRIMARY KEY, name varchar(50), amount decimal(12,2), "
              "at datetime)",
              "INSERT INTO big SELECT seq, concat('name ', seq), seq / 100.0, "
              f"'2020-01-01' + interval seq second FROM seq_1_to_{ROWS}"],
    "sqlite": ["CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC, at TEXT)",
               f"WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < {ROWS})"
               " INSERT INTO big SELECT x, 'name ' || x, x / 100.0, "
               "datetime('2020-01-01', '+' || x || ' seconds') FROM g"],
}
SMALL_SQL = ["CREATE TABLE small (id INTEGER PRIMARY KEY)", "INSERT INTO small VALUES (1), (2)"]


class Big:
    """The module's big databases and their archives, made on first use."""

    def __init__(self, dbs: Databases) -> None:
        self.dbs = dbs
        self.urls: dict[str, str] = {}
        self.archives: dict[str, Path] = {}

    def url(self, kind: str) -> str:
        require(kind)
        if kind not in self.urls:
            url = self.dbs.new(kind)
            eng = engine_of(url)
            with eng.connect() as conn:
                for stmt in [*BIG_SQL[kind], *SMALL_SQL]:
                    conn.exec_driver_sql(stmt)
            eng.dispose()
            self.urls[kind] = url
        return self.urls[kind]

    def archive(self, kind: str) -> Path:
        if kind not in self.archives:
            path = self.dbs.tmp_path / f"{kind}.crate"
            dbcrate.dump(self.url(kind), path, no_native_schema=True)
            self.archives[kind] = path
        return self.archives[kind]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    holder = Databases(tmp_path_factory.mktemp("big"))
    yield Big(holder)
    holder.drop_all()


def _statements(url: str, pattern: str) -> list[str]:
    """The statements like ``pattern`` that the server runs now in ``url``'s database."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        sql = ("SELECT query FROM pg_stat_activity WHERE datname = current_database() "
               "AND state = 'active' AND query LIKE %(p)s AND pid <> pg_backend_pid()")
    else:
        sql = ("SELECT info FROM information_schema.processlist WHERE db = DATABASE() "
               "AND info LIKE %(p)s AND id <> connection_id()")
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql(sql, {"p": pattern})]
    finally:
        eng.dispose()


def _interrupt(args: list[str], ready: Callable[[], bool], tmp: Path) -> tuple[int, float, str]:
    """Run ``python -m dbcrate ARGS``, send SIGINT once ``ready()`` (and a little more, so that
    the big table is well under way), and return (exit code, seconds to exit, stderr)."""
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "dbcrate", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, f"ended before the big table: {proc.communicate()}"
            assert time.monotonic() < deadline, "the big table never started"
            time.sleep(0.02)
        time.sleep(0.3)
        assert proc.poll() is None, f"ended before the signal: {proc.communicate()}"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        delay = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"{args[0]} -j {args[args.index('-j') + 1]}: exit {proc.returncode}, {delay:.2f} s "
          "from SIGINT to exit")
    return proc.returncode, delay, err


def _assert_stopped(code: int, delay: float, err: str) -> None:
    assert code == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err, err
    assert delay < LIMIT, f"{delay:.2f} s from SIGINT to exit"


def _running(kind: str, url: str, pattern: str, files: Path, prefix: str) -> Callable[[], bool]:
    """When the big table's statement runs: seen on the server, or (SQLite) once a file whose
    name starts with ``prefix`` exists in ``files``."""
    if kind == "sqlite":
        return lambda: any(p.name.startswith(prefix) for p in files.iterdir())
    return lambda: bool(_statements(url, pattern))


READ = {"postgresql": "COPY %big%", "mysql": "SELECT %big%"}
LOAD = {"postgresql": "COPY %big%FROM STDIN%", "mysql": "LOAD DATA%big%"}


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_ctrl_c_stops_a_dump_at_once_and_leaves_nothing(kind: str, jobs: int, big: Big,
                                                        tmp_path: Path) -> None:
    src = big.url(kind)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    ready = _running(kind, src, READ.get(kind, ""), out, ".big.crate.")
    code, delay, err = _interrupt(["dump", src, str(out / "big.crate"), "-j", str(jobs),
                                   "--no-native-schema"], ready, tmp)
    _assert_stopped(code, delay, err)
    assert list(out.iterdir()) == []  # no archive, no temp file
    assert list(tmp.iterdir()) == []  # no chunk spool, no staging file


def _sqlite_table_made(url: str, table: str) -> Callable[[], bool]:
    """When the SQLite file at ``url`` holds ``table`` (read by this process: SQLite's locks
    keep the read and the restore's writes apart)."""
    path = Path(sa.engine.make_url(url).database or "")

    def made() -> bool:
        if not path.exists():
            return False
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                    timeout=0.1)) as conn:
                return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE name = ?",
                                         (table,)).fetchone()[0])
        except sqlite3.Error:
            return False

    return made


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite", "sqlite-new-file"])
def test_ctrl_c_stops_a_restore_at_once_and_resume_completes_it(
        kind: str, jobs: int, big: Big, dbs: Databases, tmp_path: Path) -> None:
    """``sqlite``: into an existing file (each table's rows through a staging file, in the
    table's transaction); ``sqlite-new-file``: into a file the restore makes (the table is
    committed first, then its rows in a transaction of their own: marked started, replaced by
    ``--resume``)."""
    new_file = kind == "sqlite-new-file"
    kind = kind.removesuffix("-new-file")
    archive = big.archive(kind)
    dst = dbs.new(kind)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    if kind == "sqlite" and not new_file:
        sqlite3.connect(sa.engine.make_url(dst).database or "").close()  # an empty database
    ready = (_sqlite_table_made(dst, "big") if new_file
             else _running(kind, dst, LOAD.get(kind, ""), tmp_path, ".dbcrate-stage-"))
    code, delay, err = _interrupt(["restore", str(archive), dst, "-j", str(jobs)], ready, tmp)
    _assert_stopped(code, delay, err)
    assert "--resume" in " ".join(err.split())
    journal = rows(dst, "SELECT table_name, chunk FROM dbcrate_journal")
    assert ("big", -1) not in journal  # the big table was not committed: it is redone
    if new_file:  # made and committed, its rows not: started, and empty
        assert ("big", -2) in journal
        assert rows(dst, "SELECT count(*) FROM big") == [(0,)]
    if jobs == 1:
        return  # --resume is the same for both (keeps the module short)
    again = subprocess.run([sys.executable, "-m", "dbcrate", "restore", str(archive), dst,
                            "--resume"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert again.returncode == 0, again.stdout + again.stderr
    assert rows(dst, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM big") == [
        (ROWS, ROWS, 1, ROWS)]
    assert rows(dst, "SELECT id FROM small ORDER BY id") == [(1,), (2,)]
