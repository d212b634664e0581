"""Peak memory for one large value: a PostgreSQL table of one row holding a 100,000,000-character
``text`` or a 100,000,000-byte ``bytea``, dumped and restored with the defaults (issue 19,
"a table holding one 100 MB value ... in <= 450 MB peak RSS").

    python bench/big_value.py --json bench/results/big-value.json
    python bench/big_value.py --format pgcopy --copy   # PostgreSQL's own rows; and `copy`

Peak RSS by ``/usr/bin/time -f %M`` (the dbcrate process; the server is not counted); the
restored value is compared with the source's by MD5 in the server.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from many_tables import DBCRATE, URL, benchlib, psql  # (the same server, the same client)

SOURCE = "dbcrate_bench_big_value"
TARGET = "dbcrate_bench_big_value_copy"
#: the value's size, and how each kind of column is filled (one row)
SIZE = 100_000_000
FILL = {
    "text": f"SELECT left(string_agg(md5(i::text), ''), {SIZE}) FROM generate_series(1, {SIZE // 32 + 1}) i",
    "bytea": f"SELECT decode(left(string_agg(md5(i::text), ''), {2 * SIZE}), 'hex') "
             f"FROM generate_series(1, {SIZE // 16 + 1}) i",
}


def fresh(db: str) -> None:
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")


def same_value() -> bool:
    """Whether the target's value is the source's (MD5 in the server)."""
    query = "SELECT md5(v::text) FROM big"
    return psql(SOURCE, query) == psql(TARGET, query)


def timed(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of one command, which must succeed."""
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *args], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    wall, rss = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--format", default="parquet", help="the dump's --format")
    parser.add_argument("--copy", action="store_true",
                        help="also `dbcrate copy` the table into a new database")
    args = parser.parse_args()
    benchlib.compile_dbcrate()
    results = []
    for kind, fill in FILL.items():
        fresh(SOURCE)
        psql(SOURCE, f"CREATE TABLE big (id int PRIMARY KEY, v {kind}); "
                     f"INSERT INTO big SELECT 1, ({fill})")
        with tempfile.TemporaryDirectory() as tmp:
            archive = str(Path(tmp) / "big.crate")
            dump = timed([*DBCRATE, "dump", URL.format(db=SOURCE), archive, "--no-progress",
                          "--format", args.format])
            fresh(TARGET)
            restore = timed([*DBCRATE, "restore", archive, URL.format(db=TARGET),
                             "--no-progress"])
        same = same_value()
        row = {"kind": kind, "format": args.format, "value_bytes": SIZE, "dump_s": dump[0],
               "dump_peak_rss_mb": dump[1], "restore_s": restore[0],
               "restore_peak_rss_mb": restore[1], "same_value": same}
        if args.copy:
            psql("postgres", f"DROP DATABASE IF EXISTS {TARGET} WITH (FORCE)")
            row["copy_s"], row["copy_peak_rss_mb"] = timed(
                [*DBCRATE, "copy", "-C", URL.format(db=SOURCE), URL.format(db=TARGET),
                 "--no-progress"])
            row["copy_same_value"] = same_value()
        print(json.dumps(row))
        results.append(row)
    for db in (SOURCE, TARGET):
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
