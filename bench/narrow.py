"""Rows per second on a narrow table: dump and restore one PostgreSQL table of many small rows,
alternating with ``pg_dump -Fc`` and ``pg_restore -j 2`` (issue 19, "A narrow table of 40
million rows").

    python bench/narrow.py --rows 40000000 --repeat 1 --json bench/results/narrow-40m.json

The table: ``a bigint PRIMARY KEY, b integer, c integer, t text`` (``t`` 'r' and a number,
4-10 characters), made once in ``dbcrate_bench_narrow`` (kept for later runs with the same
row count); each restore goes into a fresh database. Output: wall seconds and peak RSS per run
(``/usr/bin/time``), medians, rows per second and the ratios dbcrate / peer, as JSON. Both
sides run with their defaults (dbcrate's ``-j`` is the number of cores, at most 4).
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
from many_tables import DBCRATE, HOST, URL, benchlib, psql  # (the same server, the same client)

SOURCE = "dbcrate_bench_narrow"
TARGET = "dbcrate_bench_narrow_copy"


def fresh(db: str) -> None:
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")


def make_source(rows: int) -> None:
    """The source database, unless it holds the table with ``rows`` rows already."""
    exists = psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{SOURCE}'")
    if exists == "1" and psql(SOURCE, "SELECT count(*) FROM pg_class WHERE relname = 'narrow'") \
            == "1" and psql(SOURCE, "SELECT count(*) FROM narrow") == str(rows):
        return
    fresh(SOURCE)
    psql(SOURCE, "CREATE TABLE narrow (a bigint PRIMARY KEY, b integer, c integer, t text);"
                 f"INSERT INTO narrow SELECT g, g % 1000, (g * 7) % 100003, 'r' || (g % 1000003) "
                 f"FROM generate_series(1, {rows}) g; VACUUM ANALYZE narrow;")


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run."""
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], check=True,
                          capture_output=True, text=True)
    return time.monotonic() - start, int(done.stderr.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    benchlib.compile_dbcrate()
    made = time.monotonic()
    make_source(args.rows)
    made = time.monotonic() - made
    names = ("dbcrate dump", "pg_dump -Fc", "dbcrate restore", "pg_restore -j 2")
    runs: dict[str, list[tuple[float, int]]] = {k: [] for k in names}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        crate, dump = Path(tmp) / "narrow.crate", Path(tmp) / "narrow.dump"
        for _ in range(args.repeat):
            crate.unlink(missing_ok=True)
            runs["dbcrate dump"].append(timed([*DBCRATE, "dump", URL.format(db=SOURCE),
                                               str(crate), "--no-progress"]))
            dump.unlink(missing_ok=True)
            runs["pg_dump -Fc"].append(timed(["pg_dump", *HOST, "-Fc", "-f", str(dump), SOURCE]))
            sizes = {"dbcrate": crate.stat().st_size, "pg_dump -Fc": dump.stat().st_size}
            fresh(TARGET)
            runs["dbcrate restore"].append(timed([*DBCRATE, "restore", str(crate),
                                                  URL.format(db=TARGET), "--no-progress"]))
            assert psql(TARGET, "SELECT count(*) FROM narrow") == str(args.rows)
            fresh(TARGET)
            runs["pg_restore -j 2"].append(timed(["pg_restore", *HOST, "-j", "2", "-d",
                                                  TARGET, str(dump)]))
    psql("postgres", f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)")
    medians = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
    result = {
        "rows": args.rows, "repeat": args.repeat, "cores": os.cpu_count(),
        "load_average": os.getloadavg(), "source_made_seconds": round(made, 1),
        "archive_bytes": sizes,
        "runs": {k: [{"seconds": round(s, 2), "peak_rss_mb": round(m / 1024)} for s, m in v]
                 for k, v in runs.items()},
        "medians": medians,
        "rows_per_second": {k: round(args.rows / s) for k, s in medians.items()},
        "ratios": {"dump": medians["dbcrate dump"] / medians["pg_dump -Fc"],
                   "restore": medians["dbcrate restore"] / medians["pg_restore -j 2"]},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
