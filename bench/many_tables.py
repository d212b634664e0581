"""The cost per table: dump and restore a PostgreSQL database of many small tables, alternating
with ``pg_dump -Fc`` and ``pg_restore -j 2`` (issue 19, "Cost per table").

    python bench/many_tables.py --tables 2000 --repeat 2 --json bench/results/many-tables.json

Each table: ``id integer PRIMARY KEY, name text, v integer``, an index on ``v`` and 20 rows.
The database ``dbcrate_bench_many`` is made once (kept for later runs with the same count);
each restore goes into a fresh database. Output: wall seconds per run, medians, and the ratios
dbcrate / peer, as JSON. Both sides run with their defaults (dbcrate's ``-j`` is the number of
cores, at most 4).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # (bench/ is not a package)

HOST = ["-h", "127.0.0.1", "-U", "postgres"]
URL = "postgresql://postgres@127.0.0.1/{db}"
SOURCE = "dbcrate_bench_many"
TARGET = "dbcrate_bench_many_copy"
DBCRATE = [sys.executable, "-m", "dbcrate"]


def psql(db: str, sql: str) -> str:
    done = subprocess.run(["psql", *HOST, "-d", db, "-qAtX", "-v", "ON_ERROR_STOP=1"],
                          input=sql, text=True, capture_output=True, check=True)
    return done.stdout.strip()


def fresh(db: str) -> None:
    psql("postgres", f"DROP DATABASE IF EXISTS {db}")
    psql("postgres", f"CREATE DATABASE {db}")


def make_source(tables: int) -> None:
    """The source database, unless it holds ``tables`` tables already."""
    exists = psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{SOURCE}'")
    if exists == "1" and psql(SOURCE, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                      "'public'") == str(tables):
        return
    fresh(SOURCE)
    script = "".join(
        f"CREATE TABLE t{i:05d} (id integer PRIMARY KEY, name text, v integer);"
        f"CREATE INDEX t{i:05d}_v ON t{i:05d} (v);"
        f"INSERT INTO t{i:05d} SELECT g, 'n' || g, g % 7 FROM generate_series(1, 20) g;\n"
        for i in range(tables))
    psql(SOURCE, script)
    psql(SOURCE, "ANALYZE")


def timed(argv: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    benchlib.compile_dbcrate()
    make_source(args.tables)
    runs: dict[str, list[float]] = {k: [] for k in
                                    ("dbcrate dump", "pg_dump -Fc", "dbcrate restore",
                                     "pg_restore -j 2")}
    with tempfile.TemporaryDirectory() as tmp:
        crate, dump = Path(tmp) / "many.crate", Path(tmp) / "many.dump"
        for _ in range(args.repeat):
            crate.unlink(missing_ok=True)
            runs["dbcrate dump"].append(timed([*DBCRATE, "dump", URL.format(db=SOURCE),
                                               str(crate), "--no-progress"]))
            dump.unlink(missing_ok=True)
            runs["pg_dump -Fc"].append(timed(["pg_dump", *HOST, "-Fc", "-f", str(dump),
                                              SOURCE]))
            fresh(TARGET)
            runs["dbcrate restore"].append(timed([*DBCRATE, "restore", str(crate),
                                                  URL.format(db=TARGET), "--no-progress"]))
            fresh(TARGET)
            runs["pg_restore -j 2"].append(timed(["pg_restore", *HOST, "-j", "2", "-d",
                                                  TARGET, str(dump)]))
    psql("postgres", f"DROP DATABASE IF EXISTS {TARGET}")
    medians = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "tables": args.tables, "repeat": args.repeat, "cores": os.cpu_count(),
        "load_average": os.getloadavg(), "runs": runs, "medians": medians,
        "ratios": {"dump": medians["dbcrate dump"] / medians["pg_dump -Fc"],
                   "restore": medians["dbcrate restore"] / medians["pg_restore -j 2"]},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
