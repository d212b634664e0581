"""Peak memory of dbcrate dump and restore as a table grows (1M vs 5M rows by default).

    python bench/memory.py [--rows 1000000 5000000] [--engine postgresql|mysql|sqlite]

Creates a table of N rows (bigint, text, numeric, double, timestamptz, a 97-byte blob) in a
scratch PostgreSQL or MariaDB database, then runs `dbcrate dump` and `dbcrate restore` as
subprocesses and reads their peak RSS (ru_maxrss of the child). Bounded memory means the
peak does not grow with N.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

PG = "postgresql+psycopg://postgres@127.0.0.1/{db}"
MY = "mysql+pymysql://root@127.0.0.1/{db}"


def admin(kind: str) -> sa.Engine:
    url = PG.format(db="postgres") if kind == "postgresql" else MY.format(db="")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def fresh(kind: str, name: str, tmp: Path) -> str:
    if kind == "sqlite":
        path = tmp / f"{name}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    with admin(kind).connect() as c:
        if kind == "postgresql":
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
            return PG.format(db=name)
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        c.exec_driver_sql(f"CREATE DATABASE `{name}`")
        return MY.format(db=name)


def fill(kind: str, url: str, rows: int) -> None:
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        if kind == "postgresql":
            c.exec_driver_sql(
                "CREATE TABLE big AS SELECT g::bigint AS id, md5(g::text) || ' ünïcode' AS t, "
                "(g %% 100000)::numeric(12,2) / 7 AS n, g * 1.5::float8 AS f, "
                "timestamptz '2020-01-01' + g * interval '1 second' AS ts, "
                "decode(repeat(md5(g::text), 6) || '00', 'hex') AS b "
                f"FROM generate_series(1, {rows}) g")
            c.exec_driver_sql("ALTER TABLE big ADD PRIMARY KEY (id)")
        elif kind == "mysql":
            # the same columns in MariaDB (seq_1_to_N: the Sequence engine); DATETIME(6) for
            # timestamptz, whose reading is the same path as TIMESTAMP's
            c.exec_driver_sql(
                "CREATE TABLE big (id bigint PRIMARY KEY, t text, n decimal(12,2), f double, "
                "ts datetime(6), b blob) CHARACTER SET utf8mb4")
            c.exec_driver_sql(
                "INSERT INTO big SELECT seq, CONCAT(md5(seq), ' ünïcode'), MOD(seq, 100000) / 7, "
                "seq * 1.5, TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq SECOND, "
                f"CONCAT(REPEAT(UNHEX(md5(seq)), 6), x'00') FROM seq_1_to_{int(rows)}")
        else:
            raise SystemExit("only postgresql and mysql are generated here; see bench/generate.py")
    eng.dispose()




def measure(cmd: list[str]) -> tuple[float, float]:
    code = ("import resource,subprocess,sys,time;t=time.monotonic();"
            "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
            "print(time.monotonic()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--engine", default="postgresql")
    args = ap.parse_args()
    dbcrate = [sys.executable, "-m", "dbcrate"]
    with tempfile.TemporaryDirectory(prefix="dbcrate-mem-") as tmpdir:
        tmp = Path(tmpdir)
        head = ("rows", "dump s", "dump MB", "restore s", "restore MB", "archive MB")
        print(" ".join(f"{h:>10}" for h in head))
        for n in args.rows:
            src = fresh(args.engine, "dbcrate_mem_src", tmp)
            fill(args.engine, src, n)
            archive = tmp / f"big{n}.crate"
            ds, dm = measure([*dbcrate, "dump", src, str(archive), "--no-progress"])
            dst = fresh(args.engine, "dbcrate_mem_dst", tmp)
            rs, rm = measure([*dbcrate, "restore", str(archive), dst, "--no-progress"])
            size = os.path.getsize(archive) / 2**20
            print(f"{n:>10} {ds:>10.1f} {dm:>10.0f} {rs:>10.1f} {rm:>10.0f} {size:>10.1f}", flush=True)
            archive.unlink()


if __name__ == "__main__":
    main()
