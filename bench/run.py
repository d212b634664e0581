#!/usr/bin/env python
"""Time dbcrate against the native tools of each engine, on the dataset of generate.py.

    python bench/run.py --scale S [--repeat N] [--only GROUPS] [--json bench/results/latest.json]

Every case is one shell command run as a subprocess (``/usr/bin/time -f '%e %M' bash -c CMD``)
whose wall time and peak RSS are measured; the repetitions are interleaved
(``for rep in range(N): for case in cases: run``) so that drifts of the machine hit every case
alike. Untimed work (fresh target databases, prepared input files, checks of the result) is
done before and after each run. See bench/README.md for what each case measures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
GROUPS = ["pg-dump", "pg-restore", "mysql-dump", "mysql-restore", "sqlite-dump",
          "sqlite-restore", "xeng-mysql", "xeng-sqlite", "pg-copy", "pg-sealed-dump",
          "pg-sealed-restore"]
#: the case each group's ratios are computed against
PEERS = {
    "pg-dump": "pg_dump -Fc",
    "pg-restore": "pg_restore -j 1",
    "mysql-dump": "mysqldump --single-transaction",
    "mysql-restore": "mariadb < mysqldump.sql",
    "sqlite-dump": "sqlite3 .dump",
    "sqlite-restore": "sqlite3 < .dump",
    "xeng-mysql": "rowcopy pg->mariadb",
    "xeng-sqlite": "rowcopy pg->sqlite",
    "pg-copy": "pg_dump -Fc && pg_restore -j 2",
    "pg-sealed-dump": "pg_dump -Fc | age -R",
    "pg-sealed-restore": "age -d | pg_restore -j 2",
}
#: which source database a group reads (its table bytes give MB/s)
SOURCE = {"pg-dump": "postgresql", "pg-restore": "postgresql", "mysql-dump": "mysql",
          "mysql-restore": "mysql", "sqlite-dump": "sqlite", "sqlite-restore": "sqlite",
          "xeng-mysql": "postgresql", "xeng-sqlite": "postgresql", "pg-copy": "postgresql",
          "pg-sealed-dump": "postgresql", "pg-sealed-restore": "postgresql"}
Q = shlex.quote


# ----------------------------------------------------------------------------- measuring
@dataclass
class Run:
    rc: int
    wall: float
    rss_kb: int | None
    tree_rss_kb: int | None
    stderr_tail: str
    stdout: str
    timed_out: bool = False
    error: str | None = None  # set by setup / check failures
    extrapolated_wall: float | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out and self.error is None


def _tree_rss(root: int) -> tuple[int, int]:
    """(sum of VmRSS, largest VmHWM) in KiB over ``root`` and all its descendants (/proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    total, hwm, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1])
                    elif line.startswith(b"VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass
        todo.extend(children.get(pid, []))
    return total, hwm


def timed(cmd: str, cwd: Path, log_prefix: Path, timeout: float) -> Run:
    """Run ``bash -c cmd`` under /usr/bin/time; wall clock, peak RSS, sampled tree RSS."""
    out_path, err_path = log_prefix.with_suffix(".out"), log_prefix.with_suffix(".err")
    time_path = log_prefix.with_suffix(".time")
    time_path.unlink(missing_ok=True)
    argv = ["bash", "-c", cmd]
    if TIME_BIN:
        argv = [TIME_BIN, "-f", "%e %M", "-o", str(time_path), *argv]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        peak = [0, 0]  # sum of the tree's RSS, largest single-process peak
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                total, hwm = _tree_rss(proc.pid)
                peak[0], peak[1] = max(peak[0], total), max(peak[1], hwm)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timed_out = False
        try:
            _, status, usage = os.wait4(proc.pid, 0) if timeout <= 0 else _wait4_timeout(
                proc.pid, timeout)
        except TimeoutError:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
    # Not usage.ru_maxrss: a child forked from this (large) Python process inherits its
    # high-water mark at exec, so wait4 would report at least our own RSS. /usr/bin/time's %M
    # (its child was forked from the small `time`) is exact; without it, the sampled VmHWM.
    del usage
    rss = peak[1] or None
    if TIME_BIN and time_path.exists():
        parts = time_path.read_text().strip().splitlines()
        # the last line is "%e %M" (a preceding line may say "Command exited with non-zero...")
        with contextlib.suppress(IndexError, ValueError):
            rss = int(parts[-1].split()[1])
    err = err_path.read_text(errors="replace")
    tail = "\n".join(err.strip().splitlines()[-8:])
    stdout = out_path.read_text(errors="replace")
    return Run(rc=proc.returncode, wall=wall, rss_kb=rss, tree_rss_kb=peak[0] or None,
               stderr_tail=tail, stdout=stdout[-20000:], timed_out=timed_out)


def _wait4_timeout(pid: int, timeout: float) -> tuple[int, int, Any]:
    deadline = time.monotonic() + timeout
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return wpid, status, usage
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.02)


# ----------------------------------------------------------------------------- databases
def pg_admin(sql: str) -> None:
    with bl.pg_connect("postgres") as c:
        c.execute(sql)


def pg_fresh(db: str = bl.RESTORE_DB, ddl: bool = False) -> None:
    pg_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {db} ENCODING 'UTF8' TEMPLATE template0")
    if ddl:
        with bl.pg_connect(db) as c:
            for t in bl.TABLES:
                c.execute(bl.PG_DDL[t])
    pg_admin("CHECKPOINT")


def pg_drop(db: str = bl.RESTORE_DB) -> None:
    pg_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def my_admin(sql: str) -> None:
    c = bl.my_connect(None)
    try:
        with c.cursor() as cur:
            cur.execute(sql)
    finally:
        c.close()


def my_fresh(db: str = bl.RESTORE_DB) -> None:
    my_admin(f"DROP DATABASE IF EXISTS {db}")
    my_admin(f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def my_drop(db: str = bl.RESTORE_DB) -> None:
    my_admin(f"DROP DATABASE IF EXISTS {db}")


def count_rows(engine: str, target: str | Path) -> dict[str, int | None]:
    """Rows per benchmark table in a target (None = table missing)."""
    out: dict[str, int | None] = {}
    if engine == "postgresql":
        with bl.pg_connect(str(target)) as c:
            for t in bl.TABLES:
                if c.execute("SELECT to_regclass(%s)", (f"public.{t}",)).fetchone()[0] is None:
                    out[t] = None
                else:
                    out[t] = c.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
    elif engine == "mysql":
        c = bl.my_connect(str(target))
        try:
            with c.cursor() as cur:
                cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES "
                            "WHERE TABLE_SCHEMA = %s", (str(target),))
                have = {r[0] for r in cur.fetchall()}
                for t in bl.TABLES:
                    if t in have:
                        cur.execute(f"SELECT count(*) FROM `{t}`")
                        out[t] = cur.fetchone()[0]
                    else:
                        out[t] = None
        finally:
            c.close()
    else:
        import sqlite3

        if not Path(target).exists():
            return {t: None for t in bl.TABLES}
        c = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            for t in bl.TABLES:
                out[t] = c.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] if t in have else None
        finally:
            c.close()
    return out


def path_bytes(p: Path) -> int | None:
    if not p.exists():
        return None
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- cases
@dataclass
class Ctx:
    work: Path
    prep: Path
    out: Path
    logs: Path
    scale: float
    fraction: float
    timeout: float
    rows: dict[str, int]
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    prepared: dict[str, str | None] = field(default_factory=dict)  # name -> error or None

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class Case:
    name: str
    group: str
    cmd: Callable[[Ctx], str]
    needs: list[str] = field(default_factory=list)  # prepared inputs
    setup: Callable[[Ctx], None] | None = None
    #: after a successful run: returns an error text or None (checks the result)
    check: Callable[[Ctx, Run], str | None] | None = None
    cleanup: Callable[[Ctx], None] | None = None
    #: (path, "output" | "input") whose size is reported
    artifact: Callable[[Ctx], tuple[Path, str]] | None = None
    sampled: bool = False  # rowcopy: extrapolate from --rowcopy-fraction


PG = bl.pg_args
SRC_PG, SRC_MY, SRC_SQ = bl.pg_url(), bl.my_url(), bl.sqlite_url()


def libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq takes it (no driver name)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _psql(db: str) -> str:
    return "psql -X -q -v ON_ERROR_STOP=1 " + " ".join(Q(a) for a in PG(db))


def _mariadb_client(prog: str) -> str:
    return f"{prog} --default-character-set=utf8mb4 " + " ".join(Q(a) for a in bl.my_args())


def expect_rows(engine: str, target: Callable[[Ctx], str | Path]) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        got = count_rows(engine, target(ctx))
        bad = {t: (got[t], ctx.rows[t]) for t in bl.TABLES if got[t] != ctx.rows[t]}
        if bad:
            return "wrong row counts after restore (got, expected): " + ", ".join(
                f"{t} {g}/{e}" for t, (g, e) in bad.items())
        return None
    return check


def expect_archive_rows(path: Callable[[Ctx], Path]) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        r = subprocess.run(["dbcrate", "ls", "--json", str(path(ctx))], capture_output=True,
                           text=True)
        if r.returncode != 0:
            return f"dbcrate ls failed: {r.stderr.strip()[-300:]}"
        rows = json.loads(r.stdout)["rows"]
        if rows != ctx.total_rows:
            return f"archive holds {rows} rows, the source {ctx.total_rows}"
        return None
    return check


def rowcopy_check(engine: str, target: Callable[[Ctx], str | Path]) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        try:
            summary = json.loads(run.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return "rowcopy printed no JSON summary"
        got = count_rows(engine, target(ctx))
        want = {t["table"]: t["rows"] for t in summary["tables"]}
        bad = {t: (got.get(t), n) for t, n in want.items() if got.get(t) != n}
        if bad:
            return f"rowcopy target row counts differ: {bad}"
        if summary["source_rows"] != ctx.total_rows:
            return f"rowcopy saw {summary['source_rows']} source rows, expected {ctx.total_rows}"
        copied, total = summary["rows"], summary["source_rows"]
        if copied < total:
            copy_s = summary["copy_seconds"]
            run.extrapolated_wall = run.wall + copy_s * (total / copied - 1)
            run.note = (f"copied {copied:,}/{total:,} rows ({copied / total:.1%}) in "
                        f"{run.wall:.1f}s; time extrapolated linearly")
        return None
    return check


def dump_case(name: str, group: str, source: str, file: str, args: str = "",
              env: str = "") -> Case:
    """``dbcrate dump [args] SOURCE out/FILE``: its archive checked, then removed."""
    return Case(name, group,
                lambda c: f"{env}dbcrate dump {args}{Q(source)} {Q(str(c.out / file))}",
                artifact=lambda c: (c.out / file, "output"),
                check=expect_archive_rows(lambda c: c.out / file),
                cleanup=lambda c: remove(c.out / file))


def make_cases() -> list[Case]:
    cases: list[Case] = []
    add = cases.append
    restore_pg = bl.pg_url(bl.RESTORE_DB)
    restore_my = bl.my_url(bl.RESTORE_DB)

    # ------------------------------------------------------------------ PostgreSQL dump
    add(dump_case("dbcrate dump", "pg-dump", SRC_PG, "pg.crate"))
    add(dump_case("dbcrate dump -j 2", "pg-dump", SRC_PG, "pg2.crate", "-j 2 "))
    # one job: the default before issue 19 (the default is now the cores, at most 4)
    add(dump_case("dbcrate dump -j 1", "pg-dump", SRC_PG, "pg1.crate", "-j 1 "))
    # PostgreSQL's own COPY rows kept as they are (as pg_dump keeps them): no Arrow encoding
    add(dump_case("dbcrate dump --format pgcopy", "pg-dump", SRC_PG, "pgc.crate", "--format pgcopy "))
    add(Case("pg_dump -Fc", "pg-dump",
             lambda c: f"pg_dump {' '.join(PG())} -Fc -f {Q(str(c.out / 'pg.dump'))}",
             artifact=lambda c: (c.out / "pg.dump", "output"),
             cleanup=lambda c: remove(c.out / "pg.dump")))
    add(Case("pg_dump -Fd -j 2", "pg-dump",
             lambda c: f"pg_dump {' '.join(PG())} -Fd -j 2 -f {Q(str(c.out / 'pg.dir'))}",
             setup=lambda c: remove(c.out / "pg.dir"),
             artifact=lambda c: (c.out / "pg.dir", "output"),
             cleanup=lambda c: remove(c.out / "pg.dir")))
    add(Case("pg_dump | zstd -3", "pg-dump",
             lambda c: f"set -o pipefail; pg_dump {' '.join(PG())} | zstd -3 -q -f -o "
                       f"{Q(str(c.out / 'pg.sql.zst'))}",
             artifact=lambda c: (c.out / "pg.sql.zst", "output"),
             cleanup=lambda c: remove(c.out / "pg.sql.zst")))
    add(Case("limit: COPY TO /dev/null", "pg-dump",
             lambda c: "set -e; " + "; ".join(
                 f"{_psql(bl.DB_NAME)} -c {Q(f'COPY public.{t} TO STDOUT')} > /dev/null"
                 for t in bl.TABLES)))

    # ------------------------------------------------------------------ PostgreSQL restore
    def pg_restore_case(name: str, archive: str, args: str = "") -> Case:
        """``dbcrate restore [args] prep/ARCHIVE`` into a fresh PostgreSQL database."""
        return Case(name, "pg-restore",
                    lambda c: f"dbcrate restore {args}{Q(str(c.prep / archive))} {Q(restore_pg)}",
                    needs=[archive], setup=lambda c: pg_fresh(),
                    check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
                    cleanup=lambda c: pg_drop(),
                    artifact=lambda c: (c.prep / archive, "input"))

    add(pg_restore_case("dbcrate restore", "pg.crate"))
    add(pg_restore_case("dbcrate restore -j 2", "pg.crate", "-j 2 "))
    add(pg_restore_case("dbcrate restore -j 1", "pg.crate", "-j 1 "))

    add(pg_restore_case("dbcrate restore (pgcopy archive)", "pgc.crate"))

    # the archive carries the native schema: the two cases above recreate from it (the
    # default on the same engine); this one from the portable schema, for the ratio
    add(pg_restore_case("dbcrate restore --ddl portable", "pg.crate", "--ddl portable "))

    def pg_restore_cmd(jobs: int) -> Callable[[Ctx], str]:
        return lambda c: (f"pg_restore {' '.join(PG(bl.RESTORE_DB))} -j {jobs} "
                          f"{Q(str(c.prep / 'pg.dump'))}")

    for j in (1, 2):
        add(Case(f"pg_restore -j {j}", "pg-restore", pg_restore_cmd(j),
                 needs=["pg.dump"], setup=lambda c: pg_fresh(),
                 check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
                 cleanup=lambda c: pg_drop(),
                 artifact=lambda c: (c.prep / "pg.dump", "input")))
    add(Case("limit: COPY FROM (no indexes)", "pg-restore",
             lambda c: "set -e; " + "; ".join(
                 f"{_psql(bl.RESTORE_DB)} -c {Q(f'COPY public.{t} FROM STDIN')} "
                 f"< {Q(str(c.prep / 'copy' / (t + '.copy')))}" for t in bl.TABLES),
             needs=["copy"], setup=lambda c: pg_fresh(ddl=True),
             check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: pg_drop(),
             artifact=lambda c: (c.prep / "copy", "input")))

    # ------------------------------------------------------------------ MariaDB
    add(dump_case("dbcrate dump", "mysql-dump", SRC_MY, "my.crate"))
    add(dump_case("dbcrate dump -j 2", "mysql-dump", SRC_MY, "my-j2.crate", "-j 2 "))
    add(dump_case("dbcrate dump -j 1", "mysql-dump", SRC_MY, "my-j1.crate", "-j 1 "))
    # the same dump with the rows read by PyMySQL (what dbcrate does without mysqlclient)
    add(dump_case("dbcrate dump (PyMySQL)", "mysql-dump", SRC_MY, "my-pymysql.crate",
                  env="DBCRATE_MYSQLCLIENT=0 "))
    add(Case("mysqldump --single-transaction", "mysql-dump",
             lambda c: f"{_mariadb_client('mysqldump')} --single-transaction {bl.DB_NAME} "
                       f"> {Q(str(c.out / 'my.sql'))}",
             artifact=lambda c: (c.out / "my.sql", "output"),
             cleanup=lambda c: remove(c.out / "my.sql")))
    add(Case("dbcrate restore", "mysql-restore",
             lambda c: f"dbcrate restore {Q(str(c.prep / 'my.crate'))} {Q(restore_my)}",
             needs=["my.crate"], setup=lambda c: my_fresh(),
             check=expect_rows("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop(),
             artifact=lambda c: (c.prep / "my.crate", "input")))
    add(Case("dbcrate restore -j 2", "mysql-restore",
             lambda c: f"dbcrate restore -j 2 {Q(str(c.prep / 'my.crate'))} {Q(restore_my)}",
             needs=["my.crate"], setup=lambda c: my_fresh(),
             check=expect_rows("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop(),
             artifact=lambda c: (c.prep / "my.crate", "input")))
    add(Case("dbcrate restore -j 1", "mysql-restore",
             lambda c: f"dbcrate restore -j 1 {Q(str(c.prep / 'my.crate'))} {Q(restore_my)}",
             needs=["my.crate"], setup=lambda c: my_fresh(),
             check=expect_rows("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop(),
             artifact=lambda c: (c.prep / "my.crate", "input")))
    add(Case("dbcrate restore --ddl portable", "mysql-restore",
             lambda c: f"dbcrate restore --ddl portable {Q(str(c.prep / 'my.crate'))} "
                       f"{Q(restore_my)}",
             needs=["my.crate"], setup=lambda c: my_fresh(),
             check=expect_rows("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop(),
             artifact=lambda c: (c.prep / "my.crate", "input")))
    add(Case("mariadb < mysqldump.sql", "mysql-restore",
             lambda c: f"{_mariadb_client('mariadb')} {bl.RESTORE_DB} < {Q(str(c.prep / 'my.sql'))}",
             needs=["my.sql"], setup=lambda c: my_fresh(),
             check=expect_rows("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop(),
             artifact=lambda c: (c.prep / "my.sql", "input")))

    # ------------------------------------------------------------------ SQLite
    sq = Q(str(bl.SQLITE_PATH))
    add(dump_case("dbcrate dump", "sqlite-dump", SRC_SQ, "sq.crate"))
    add(Case("sqlite3 .dump", "sqlite-dump",
             lambda c: f"sqlite3 {sq} .dump > {Q(str(c.out / 'sq.sql'))}",
             artifact=lambda c: (c.out / "sq.sql", "output"),
             cleanup=lambda c: remove(c.out / "sq.sql")))
    add(Case("sqlite3 .backup", "sqlite-dump",
             lambda c: f"sqlite3 {sq} {Q('.backup ' + Q(str(c.out / 'sq-backup.db')))}",
             setup=lambda c: remove(c.out / "sq-backup.db"),
             artifact=lambda c: (c.out / "sq-backup.db", "output"),
             cleanup=lambda c: remove(c.out / "sq-backup.db")))
    add(Case("dbcrate restore", "sqlite-restore",
             lambda c: f"dbcrate restore {Q(str(c.prep / 'sq.crate'))} "
                       f"{Q(bl.sqlite_url(c.out / 'restored.db'))}",
             needs=["sq.crate"], setup=lambda c: remove(c.out / "restored.db"),
             check=expect_rows("sqlite", lambda c: c.out / "restored.db"),
             cleanup=lambda c: remove(c.out / "restored.db"),
             artifact=lambda c: (c.prep / "sq.crate", "input")))
    add(Case("dbcrate restore --ddl portable", "sqlite-restore",
             lambda c: f"dbcrate restore --ddl portable {Q(str(c.prep / 'sq.crate'))} "
                       f"{Q(bl.sqlite_url(c.out / 'restored.db'))}",
             needs=["sq.crate"], setup=lambda c: remove(c.out / "restored.db"),
             check=expect_rows("sqlite", lambda c: c.out / "restored.db"),
             cleanup=lambda c: remove(c.out / "restored.db"),
             artifact=lambda c: (c.prep / "sq.crate", "input")))
    add(Case("sqlite3 < .dump", "sqlite-restore",
             lambda c: f"sqlite3 {Q(str(c.out / 'restored.db'))} < {Q(str(c.prep / 'sq.sql'))}",
             needs=["sq.sql"], setup=lambda c: remove(c.out / "restored.db"),
             check=expect_rows("sqlite", lambda c: c.out / "restored.db"),
             cleanup=lambda c: remove(c.out / "restored.db"),
             artifact=lambda c: (c.prep / "sq.sql", "input")))

    # ------------------------------------------------------------------ cross-engine
    def x_dbcrate(target_url: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
        return lambda c: (f"dbcrate dump {Q(SRC_PG)} {Q(str(c.out / 'x.crate'))} && "
                          f"dbcrate restore {Q(str(c.out / 'x.crate'))} {Q(target_url(c))}")

    def x_rowcopy(target_url: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
        script = Path(__file__).resolve().parent / "rowcopy.py"
        return lambda c: (f"{Q(sys.executable)} {Q(str(script))} {Q(SRC_PG)} {Q(target_url(c))} "
                          f"--fraction {c.fraction} --json")

    def x_check(engine: str, target: Callable[[Ctx], str | Path]) -> Callable[[Ctx, Run], str | None]:
        rows = expect_rows(engine, target)
        arch = expect_archive_rows(lambda c: c.out / "x.crate")
        return lambda c, r: arch(c, r) or rows(c, r)

    def x_my_reset(c: Ctx) -> None:
        my_fresh()
        remove(c.out / "x.crate")

    def x_my_clean(c: Ctx) -> None:
        my_drop()
        remove(c.out / "x.crate")

    def x_sq_clean(c: Ctx) -> None:
        remove(c.out / "x.db")
        remove(c.out / "x.crate")

    add(Case("dbcrate dump+restore pg->mariadb", "xeng-mysql",
             x_dbcrate(lambda c: restore_my),
             setup=x_my_reset,
             check=x_check("mysql", lambda c: bl.RESTORE_DB),
             cleanup=x_my_clean,
             artifact=lambda c: (c.out / "x.crate", "output")))
    add(Case("rowcopy pg->mariadb", "xeng-mysql",
             x_rowcopy(lambda c: restore_my + "?charset=utf8mb4"),
             setup=lambda c: my_fresh(),
             check=rowcopy_check("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop(), sampled=True))
    add(Case("dbcrate dump+restore pg->sqlite", "xeng-sqlite",
             x_dbcrate(lambda c: bl.sqlite_url(c.out / "x.db")),
             setup=x_sq_clean,
             check=x_check("sqlite", lambda c: c.out / "x.db"),
             cleanup=x_sq_clean,
             artifact=lambda c: (c.out / "x.crate", "output")))
    add(Case("rowcopy pg->sqlite", "xeng-sqlite",
             x_rowcopy(lambda c: bl.sqlite_url(c.out / "x.db")),
             setup=lambda c: remove(c.out / "x.db"),
             check=rowcopy_check("sqlite", lambda c: c.out / "x.db"),
             cleanup=lambda c: remove(c.out / "x.db"), sampled=True))

    # ------------------------------------------------------------------ database to database
    # dbcrate copy: the spool goes in the output directory (TMPDIR), removed after the copy
    def copy_cmd(target: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
        return lambda c: f"TMPDIR={Q(str(c.out))} dbcrate copy -C {Q(SRC_PG)} {Q(target(c))}"

    add(Case("dbcrate copy pg->mariadb", "xeng-mysql", copy_cmd(lambda c: restore_my),
             setup=lambda c: my_drop(), check=expect_rows("mysql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: my_drop()))
    add(Case("dbcrate copy pg->sqlite", "xeng-sqlite",
             copy_cmd(lambda c: bl.sqlite_url(c.out / "x.db")),
             setup=x_sq_clean, check=expect_rows("sqlite", lambda c: c.out / "x.db"),
             cleanup=x_sq_clean))
    add(Case("dbcrate copy", "pg-copy", copy_cmd(lambda c: restore_pg),
             setup=lambda c: pg_drop(),
             check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: pg_drop()))
    add(Case("dbcrate copy (no native schema)", "pg-copy",
             lambda c: copy_cmd(lambda c: restore_pg)(c) + " --no-native-schema",
             setup=lambda c: pg_drop(),
             check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: pg_drop()))
    add(Case("pg_dump -Fc && pg_restore -j 2", "pg-copy",
             lambda c: f"set -e; pg_dump {' '.join(PG())} -Fc -f {Q(str(c.out / 'c.dump'))}; "
                       f"pg_restore {' '.join(PG(bl.RESTORE_DB))} -j 2 "
                       f"{Q(str(c.out / 'c.dump'))}; rm -f {Q(str(c.out / 'c.dump'))}",
             setup=lambda c: pg_fresh(),
             check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: pg_drop()))
    _sealed_cases(add, restore_pg)
    if shutil.which("pgcopydb"):
        add(Case("pgcopydb clone", "pg-copy",
                 lambda c: f"pgcopydb clone --no-owner --no-acl --table-jobs 2 --index-jobs 2 --dir "
                           f"{Q(str(c.out / 'pgcopydb'))} --source {Q(libpq(SRC_PG))} "
                           f"--target {Q(libpq(restore_pg))}",
                 setup=lambda c: (remove(c.out / "pgcopydb"), pg_fresh()),
                 check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
                 cleanup=lambda c: (remove(c.out / "pgcopydb"), pg_drop())))
    return cases


def _sealed_cases(add: Callable[[Case], None], restore_pg: str) -> None:
    """Encrypted archives (issue 18): dbcrate's sealed dump and restore beside its plain ones
    and beside pg_dump/pg_restore through the age tool, for the same recipient."""
    pub = lambda c: Q(str(c.prep / "bench.pub"))  # noqa: E731
    key = lambda c: Q(str(c.prep / "bench.key"))  # noqa: E731
    for label, extra in (("dbcrate dump", ""), ("dbcrate dump -R (sealed)", " -R {pub}")):
        name = "s.crate" if extra else "p.crate"
        add(Case(label, "pg-sealed-dump",
                 lambda c, extra=extra, name=name: f"dbcrate dump {Q(SRC_PG)} "
                 f"{Q(str(c.out / name))}" + extra.format(pub=pub(c)),
                 needs=["bench.key"], artifact=lambda c, name=name: (c.out / name, "output"),
                 cleanup=lambda c, name=name: remove(c.out / name)))
    add(Case("pg_dump -Fc | age -R", "pg-sealed-dump",
             lambda c: f"set -o pipefail; pg_dump {' '.join(PG())} -Fc | age -R {pub(c)} "
                       f"-o {Q(str(c.out / 'pg.dump.age'))}",
             needs=["bench.key"], artifact=lambda c: (c.out / "pg.dump.age", "output"),
             cleanup=lambda c: remove(c.out / "pg.dump.age")))
    for label, name, extra in (("dbcrate restore", "pg.crate", ""),
                               ("dbcrate restore -i (sealed)", "pg.sealed.crate", " -i {key}")):
        add(Case(label, "pg-sealed-restore",
                 lambda c, name=name, extra=extra: f"dbcrate restore {Q(str(c.prep / name))} "
                 f"{Q(restore_pg)}" + extra.format(key=key(c)),
                 needs=[name], setup=lambda c: pg_fresh(),
                 check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
                 cleanup=lambda c: pg_drop(),
                 artifact=lambda c, name=name: (c.prep / name, "input")))
    add(Case("age -d | pg_restore -j 2", "pg-sealed-restore",
             # pg_restore -j needs a seekable file: decrypt into one, restore, remove it
             lambda c: f"set -e; age -d -i {key(c)} -o {Q(str(c.out / 'd.dump'))} "
                       f"{Q(str(c.prep / 'pg.dump.age'))}; pg_restore {' '.join(PG(bl.RESTORE_DB))} "
                       f"-j 2 {Q(str(c.out / 'd.dump'))}; rm -f {Q(str(c.out / 'd.dump'))}",
             needs=["pg.dump.age"], setup=lambda c: pg_fresh(),
             check=expect_rows("postgresql", lambda c: bl.RESTORE_DB),
             cleanup=lambda c: pg_drop(),
             artifact=lambda c: (c.prep / "pg.dump.age", "input")))


# ----------------------------------------------------------------------------- preparation
def _sh(cmd: str, cwd: Path) -> None:
    r = subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"`{cmd[:200]}` exited {r.returncode}: {tail}")


PREPARE: dict[str, Callable[[Ctx], None]] = {
    "pg.crate": lambda c: _sh(f"dbcrate dump {Q(SRC_PG)} {Q(str(c.prep / 'pg.crate'))}", c.work),
    "pgc.crate": lambda c: _sh(f"dbcrate dump --format pgcopy {Q(SRC_PG)} "
                               f"{Q(str(c.prep / 'pgc.crate'))}", c.work),
    "pg.dump": lambda c: _sh(f"pg_dump {' '.join(PG())} -Fc -f {Q(str(c.prep / 'pg.dump'))}",
                             c.work),
    "copy": lambda c: _sh(f"mkdir -p {Q(str(c.prep / 'copy'))} && " + " && ".join(
        f"{_psql(bl.DB_NAME)} -c {Q(f'COPY public.{t} TO STDOUT')} "
        f"> {Q(str(c.prep / 'copy' / (t + '.copy')))}" for t in bl.TABLES), c.work),
    "my.crate": lambda c: _sh(f"dbcrate dump {Q(SRC_MY)} {Q(str(c.prep / 'my.crate'))}", c.work),
    "my.sql": lambda c: _sh(f"{_mariadb_client('mysqldump')} --single-transaction {bl.DB_NAME} "
                            f"> {Q(str(c.prep / 'my.sql'))}", c.work),
    "sq.crate": lambda c: _sh(f"dbcrate dump {Q(SRC_SQ)} {Q(str(c.prep / 'sq.crate'))}", c.work),
    # one key for every case (made once: the sealed inputs below need it too)
    "bench.key": lambda c: _sh(f"[ -s {Q(str(c.prep / 'bench.pub'))} ] || dbcrate keygen -o "
                               f"{Q(str(c.prep / 'bench.key'))} > {Q(str(c.prep / 'bench.pub'))}",
                               c.work),
    "pg.sealed.crate": lambda c: (PREPARE["bench.key"](c), _sh(
        f"dbcrate dump {Q(SRC_PG)} {Q(str(c.prep / 'pg.sealed.crate'))} -R "
        f"{Q(str(c.prep / 'bench.pub'))}", c.work)),
    "pg.dump.age": lambda c: (PREPARE["bench.key"](c), _sh(
        f"set -o pipefail; pg_dump {' '.join(PG())} -Fc | age -R {Q(str(c.prep / 'bench.pub'))} "
        f"-o {Q(str(c.prep / 'pg.dump.age'))}", c.work)),
    "sq.sql": lambda c: _sh(f"sqlite3 {Q(str(bl.SQLITE_PATH))} .dump > {Q(str(c.prep / 'sq.sql'))}",
                            c.work),
}


# ----------------------------------------------------------------------------- environment
def _cmd_out(argv: list[str]) -> str | None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else None


def machine_info() -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory_bytes": mem, "cpu_model": cpu,
            "kernel": platform.release(), "python": platform.python_version()}


def versions() -> dict[str, Any]:
    v: dict[str, Any] = {}
    try:
        with bl.pg_connect("postgres") as c:
            v["postgresql_server"] = c.execute("SHOW server_version").fetchone()[0]
            v["postgresql_settings"] = dict(c.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'max_wal_size', 'synchronous_commit', 'fsync', "
                "'maintenance_work_mem', 'wal_level')").fetchall())
    except Exception as exc:
        v["postgresql_server"] = f"unavailable: {exc}"
    try:
        c = bl.my_connect(None)
        with c.cursor() as cur:
            cur.execute("SELECT VERSION()")
            v["mariadb_server"] = cur.fetchone()[0]
            cur.execute("SHOW VARIABLES WHERE Variable_name IN ('innodb_buffer_pool_size', "
                        "'innodb_flush_log_at_trx_commit', 'innodb_log_file_size', 'log_bin', "
                        "'max_allowed_packet')")
            v["mariadb_settings"] = dict(cur.fetchall())
        c.close()
    except Exception as exc:
        v["mariadb_server"] = f"unavailable: {exc}"
    import sqlite3

    v["sqlite_python_lib"] = sqlite3.sqlite_version
    for tool, argv in {"pg_dump": ["pg_dump", "--version"], "pg_restore": ["pg_restore", "--version"],
                       "psql": ["psql", "--version"], "mysqldump": ["mysqldump", "--version"],
                       "mariadb": ["mariadb", "--version"], "sqlite3": ["sqlite3", "--version"],
                       "zstd": ["zstd", "--version"], "dbcrate": ["dbcrate", "--version"],
                       "time": [TIME_BIN or "true", "--version"]}.items():
        v[tool] = _cmd_out(argv)
    for mod in ("sqlalchemy", "psycopg", "pymysql", "pyarrow", "numpy"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:
            v[mod] = None
    try:  # mysqlclient (optional): when installed, dbcrate reads MariaDB rows with it
        v["mysqlclient"] = ".".join(str(p) for p in __import__("MySQLdb").version_info[:3])
    except Exception:
        v["mysqlclient"] = None
    repo = Path(__file__).resolve().parent.parent
    v["dbcrate_git"] = _cmd_out(["git", "-C", str(repo), "describe", "--always", "--dirty"])
    return v


# ----------------------------------------------------------------------------- reporting
def fmt_num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if x >= 100_000:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def _peak_mb(values: list[int | None]) -> float | None:
    known = [v for v in values if v]
    return max(known) / 1024 if known else None


def summarize(ctx: Ctx, cases: list[Case], runs: dict[int, list[Run]],
              artifact_sizes: dict[int, int | None]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    med: dict[tuple[str, str], float | None] = {}
    for i, case in enumerate(cases):
        rs = runs.get(i, [])
        good = [r for r in rs if r.ok]
        walls = [r.extrapolated_wall or r.wall for r in good]
        status = "ok" if rs and len(good) == len(rs) else "FAILED" if rs else "not run"
        m = statistics.median(walls) if walls and status == "ok" else None
        med[(case.group, case.name)] = m
        src_bytes = ctx.sizes.get(SOURCE[case.group], {}).get("table_bytes")
        failure = next((r for r in rs if not r.ok), None)
        error = None
        if failure is not None:
            if failure.timed_out:
                error = f"timed out after {failure.wall:.0f}s"
            elif failure.error:
                error = failure.error
            else:
                error = f"exit {failure.rc}: {failure.stderr_tail}"
        rows.append({
            "case": case.name, "group": case.group, "status": status,
            "failures": len(rs) - len(good), "runs": len(rs),
            "wall_s": m, "walls_s": [round(w, 3) for w in walls],
            "measured_walls_s": [round(r.wall, 3) for r in rs],
            "rows": ctx.total_rows, "rows_per_s": ctx.total_rows / m if m else None,
            "source_table_bytes": src_bytes,
            "mb_per_s": src_bytes / 1e6 / m if m and src_bytes else None,
            "peak_rss_mb": _peak_mb([r.rss_kb for r in rs]),
            "peak_tree_rss_sum_mb": _peak_mb([r.tree_rss_kb for r in rs]),
            "artifact_bytes": artifact_sizes.get(i),
            "artifact_role": case.artifact(ctx)[1] if case.artifact else None,
            "peer": PEERS[case.group],
            "note": next((r.note for r in good if r.note), None),
            "error": error,
        })
    for r in rows:
        peer = med.get((r["group"], r["peer"]))
        r["ratio_to_peer"] = r["wall_s"] / peer if r["wall_s"] and peer else None
    return rows


def print_table(rows: list[dict[str, Any]], ctx: Ctx) -> None:
    head = ["case", "group", "wall s", "rows/s", "MB/s", "RSS MB", "archive MB", "x peer"]
    body = []
    for r in rows:
        if r["status"] != "ok":
            wall = "FAILED" if r["status"] == "FAILED" else "not run"
        else:
            wall = f"{r['wall_s']:.2f}" + ("*" if r["note"] else "")
        size = r["artifact_bytes"]
        size_s = "-" if size is None else f"{size / 1e6:,.1f}"
        if size is not None and r["artifact_role"] == "input":
            size_s += " (in)"
        ratio = "-" if r["ratio_to_peer"] is None else f"{r['ratio_to_peer']:.2f}"
        body.append([r["case"], r["group"], wall, fmt_num(r["rows_per_s"], 0), fmt_num(r["mb_per_s"]),
                     fmt_num(r["peak_rss_mb"]), size_s, ratio])
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    right = {2, 3, 4, 5, 6, 7}

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print(line(head))
    print("  ".join("-" * w for w in widths))
    prev = None
    for r, b in zip(rows, body):
        if prev is not None and r["group"] != prev:
            print()
        prev = r["group"]
        print(line(b))
    print()
    print("wall s = median over the repetitions; x peer = wall / wall of the group's peer "
          "(" + "; ".join(f"{g}: {p}" for g, p in PEERS.items()) + ")")
    print("MB/s = table bytes of the source engine / wall (" + ", ".join(
        f"{e} {s['table_bytes'] / 1e6:,.1f} MB" for e, s in ctx.sizes.items()) + f"); rows = "
          f"{ctx.total_rows:,} per case. RSS = peak RSS of the largest process of the client tree "
          "(/usr/bin/time %M; servers not included). archive MB: (in) = the input restored.")
    notes = [r for r in rows if r["note"]]
    for r in notes:
        print(f"* {r['case']} ({r['group']}): {r['note']}")
    failed = [r for r in rows if r["error"]]
    if failed:
        print()
        print("FAILURES:")
        for r in failed:
            print(f"- {r['case']} ({r['group']}), {r['failures']}/{r['runs']} runs failed:")
            for ln in str(r["error"]).splitlines():
                print(f"    {ln}")


# ----------------------------------------------------------------------------- main
def select_groups(text: str | None) -> list[str]:
    if not text:
        return list(GROUPS)
    chosen = []
    for tok in (t.strip() for t in text.split(",")):
        if not tok:
            continue
        hits = [g for g in GROUPS if g == tok or g.startswith(tok + "-")]
        if not hits:
            raise SystemExit(f"unknown group {tok!r}; groups: {', '.join(GROUPS)} "
                             "(a prefix such as 'pg', 'sqlite' or 'xeng' selects several)")
        chosen += [g for g in hits if g not in chosen]
    return [g for g in GROUPS if g in chosen]


def check_dataset(engines: set[str], rows: dict[str, int]) -> dict[str, dict[str, Any]]:
    sizes: dict[str, dict[str, Any]] = {}
    for e in sorted(engines):
        s: dict[str, Any]
        try:
            s = bl.pg_sizes() if e == "postgresql" else bl.my_sizes() if e == "mysql" else \
                bl.sqlite_sizes()
        except Exception as exc:
            raise SystemExit(f"cannot read the {e} benchmark database ({exc}); "
                             "run bench/generate.py first") from None
        got = {t: v["rows"] for t, v in s["tables"].items()}
        if got != rows:
            raise SystemExit(f"the {e} dataset does not match --scale (rows {got}, expected "
                             f"{rows}); run: python bench/generate.py --scale ...")
        sizes[e] = s
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", type=float, required=True,
                    help="the scale the dataset was generated with (checked)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per case (default 3)")
    ap.add_argument("--only", help="comma-separated groups or prefixes: " + ", ".join(GROUPS))
    ap.add_argument("--json", dest="json_path", default=str(bl.RESULTS_DIR / "latest.json"),
                    help="write the results here (default bench/results/latest.json)")
    ap.add_argument("--rowcopy-fraction", type=float, default=0.05,
                    help="fraction of each table the row-by-row copy copies (default 0.05); "
                         "its time is extrapolated linearly")
    ap.add_argument("--timeout", type=float, default=7200,
                    help="seconds after which a case is killed and reported (default 7200)")
    ap.add_argument("--keep-work", action="store_true", help="keep bench/work/<run> (debugging)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()
    bl.compile_dbcrate()

    groups = select_groups(args.only)
    cases = [c for c in make_cases() if c.group in groups]
    if args.list:
        for c in cases:
            print(f"{c.group:15s} {c.name}")
        return
    if args.repeat < 1 or not 0 < args.rowcopy_fraction <= 1:
        raise SystemExit("--repeat must be >= 1 and --rowcopy-fraction in (0, 1]")
    rows = bl.rows_for_scale(args.scale)
    engines = {SOURCE[g] for g in groups}
    sizes = check_dataset(engines, rows)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = bl.WORK_DIR / f"run-{stamp}-{os.getpid()}"
    ctx = Ctx(work=work, prep=work / "prep", out=work / "out", logs=work / "logs",
              scale=args.scale, fraction=args.rowcopy_fraction, timeout=args.timeout, rows=rows,
              sizes=sizes)
    for d in (ctx.prep, ctx.out, ctx.logs):
        d.mkdir(parents=True, exist_ok=True)

    started = dt.datetime.now(dt.UTC)
    info = {"machine": machine_info(), "versions": versions()}
    load_start = os.getloadavg()
    if load_start[0] > (os.cpu_count() or 1):
        print(f"warning: load average {load_start[0]:.1f} on {os.cpu_count()} CPUs: something "
              "else is running; the times will be noisy", flush=True)
    print(f"dbcrate benchmark: scale {args.scale}, {ctx.total_rows:,} rows, repeat "
          f"{args.repeat}, {len(cases)} cases in {', '.join(groups)}; work dir {work}", flush=True)

    runs: dict[int, list[Run]] = {}
    artifact_sizes: dict[int, int | None] = {}
    try:
        # inputs of the restore cases, made once, untimed
        needed = sorted({n for c in cases for n in c.needs}, key=list(PREPARE).index)
        for name in needed:
            t0 = time.monotonic()
            try:
                PREPARE[name](ctx)
                ctx.prepared[name] = None
                print(f"  prepared {name} ({path_bytes(ctx.prep / name) or 0:,} bytes) in "
                      f"{time.monotonic() - t0:.1f}s", flush=True)
            except Exception as exc:
                ctx.prepared[name] = str(exc)
                print(f"  preparing {name} FAILED: {exc}", flush=True)

        for rep in range(args.repeat):
            for i, case in enumerate(cases):
                label = f"[{rep + 1}/{args.repeat}] {case.group:14s} {case.name}"
                missing = [n for n in case.needs if ctx.prepared.get(n)]
                if missing:
                    run = Run(rc=-1, wall=0.0, rss_kb=None, tree_rss_kb=None, stderr_tail="",
                              stdout="", error="input not prepared: " + "; ".join(
                                  f"{n}: {ctx.prepared[n]}" for n in missing))
                    runs.setdefault(i, []).append(run)
                    print(f"{label}: FAILED (input not prepared)", flush=True)
                    continue
                run = run_case(ctx, case, i, rep)
                runs.setdefault(i, []).append(run)
                if case.artifact and run.ok:
                    path, _role = case.artifact(ctx)
                    artifact_sizes.setdefault(i, path_bytes(path))
                if case.cleanup:
                    try:
                        case.cleanup(ctx)
                    except Exception as exc:
                        print(f"    cleanup failed: {exc}", flush=True)
                state = "ok" if run.ok else ("TIMEOUT" if run.timed_out else "FAILED")
                extra = f" (extrapolated {run.extrapolated_wall:.1f}s)" if run.extrapolated_wall else ""
                rss = f"{run.rss_kb / 1024:.0f} MB" if run.rss_kb else "?"
                print(f"{label}: {state} {run.wall:.2f}s{extra}, peak RSS {rss}", flush=True)
                if not run.ok:
                    msg = run.error or run.stderr_tail
                    for ln in msg.splitlines()[-4:]:
                        print(f"      {ln}", flush=True)
    finally:
        for fn in (pg_drop, my_drop):
            with contextlib.suppress(Exception):
                fn()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                bl.WORK_DIR.rmdir()

    result_rows = summarize(ctx, cases, runs, artifact_sizes)
    print()
    print_table(result_rows, ctx)
    load_end = os.getloadavg()
    print(f"load average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f} on "
          f"{os.cpu_count()} CPUs")
    payload = {
        "date": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": args.scale, "repeat": args.repeat, "groups": groups,
        "rowcopy_fraction": args.rowcopy_fraction,
        "rows": rows, "total_rows": ctx.total_rows,
        "dataset": ctx.sizes, **info,
        "loadavg_start": load_start, "loadavg_end": load_end,
        "measurement": {"wall": "time.monotonic around the subprocess (median of the runs)",
                        "rss": "/usr/bin/time %M (max RSS of the largest process in the tree)"
                        if TIME_BIN else "largest VmHWM of the tree, sampled every 0.1 s from /proc",
                        "tree_rss_sum": "sampled every 0.1 s from /proc: sum over the tree"},
        "cases": result_rows,
    }
    out = Path(args.json_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nresults written to {out}")


def run_case(ctx: Ctx, case: Case, i: int, rep: int) -> Run:
    try:
        if case.setup:
            case.setup(ctx)
    except Exception as exc:
        return Run(rc=-1, wall=0.0, rss_kb=None, tree_rss_kb=None, stderr_tail="", stdout="",
                   error=f"setup failed: {exc}")
    cmd = case.cmd(ctx)
    # every case starts with the kernel's dirty pages written out: otherwise the first case
    # after the archives were prepared (1-2 GB just written) pays for their writeback
    os.sync()
    slug = "".join(ch if ch.isalnum() else "_" for ch in f"{case.group}_{case.name}")[:80]
    run = timed(cmd, ctx.work, ctx.logs / f"{i:02d}_{slug}_{rep}", ctx.timeout)
    if run.ok and case.check:
        try:
            run.error = case.check(ctx, run)
        except Exception as exc:
            run.error = f"check failed: {type(exc).__name__}: {exc}"
    return run


if __name__ == "__main__":
    main()
