#!/usr/bin/env python
"""The naive baseline: copy a database with plain SQLAlchemy, one INSERT per row.

    python bench/rowcopy.py SOURCE_URL TARGET_URL [--fraction 0.05] [--json]

Reflects the source tables, creates them in the target with ``metadata.create_all`` (types made
generic with ``as_generic()`` so that a PostgreSQL type can be created in MariaDB or SQLite),
then for each table (parents first) selects its rows and inserts them with one
``execute()`` per row, inside one transaction per table.

``--fraction F`` copies only the first ceil(F x rows) rows of each table (by primary key), so
that the benchmark can extrapolate the full time linearly; foreign-key checks are switched off
in a MariaDB target because a sample of a child table may reference parents outside the
sample of the parent table. The result (rows copied, rows in the source, seconds spent in the
copy loops) is printed as JSON on stdout with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("target")
    ap.add_argument("--fraction", type=float, default=1.0,
                    help="copy this fraction of each table's rows (default 1 = all)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = ap.parse_args()
    if not 0 < args.fraction <= 1:
        raise SystemExit("--fraction must be in (0, 1]")

    t_start = time.monotonic()
    src = sa.create_engine(args.source)
    dst = sa.create_engine(args.target)
    if dst.dialect.name in ("mysql", "mariadb") and args.fraction < 1:
        @event.listens_for(dst, "connect")
        def _no_fk_checks(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            with dbapi_conn.cursor() as cur:
                cur.execute("SET foreign_key_checks = 0")

    meta = sa.MetaData()

    @event.listens_for(meta, "column_reflect")
    def _generic(_inspector, _table, info):  # type: ignore[no-untyped-def]
        generic = info["type"].as_generic()
        if isinstance(generic, sa.Float):  # DOUBLE PRECISION -> Float(53): MySQL wants DOUBLE
            generic = sa.Double()
        info["type"] = generic
        # server defaults (e.g. nextval(...)) do not translate between engines
        info.pop("default", None)
        info.pop("server_default", None)

    meta.reflect(bind=src)
    meta.create_all(dst)
    t_setup = time.monotonic() - t_start

    tables: list[dict[str, Any]] = []
    copy_seconds = 0.0
    with src.connect() as sconn:
        for table in meta.sorted_tables:
            t0 = time.monotonic()
            total = sconn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            limit = total if args.fraction >= 1 else math.ceil(total * args.fraction)
            query = sa.select(table).order_by(*table.primary_key.columns).limit(limit)
            copied = 0
            with dst.begin() as dconn:
                result = sconn.execution_options(yield_per=1000).execute(query)
                insert = table.insert()
                for row in result:
                    dconn.execute(insert, row._asdict())
                    copied += 1
            dt = time.monotonic() - t0
            copy_seconds += dt
            tables.append({"table": table.name, "rows": copied, "source_rows": total,
                           "seconds": round(dt, 3)})
            print(f"{table.name}: {copied}/{total} rows in {dt:.2f}s", file=sys.stderr)
    src.dispose()
    dst.dispose()
    summary = {
        "fraction": args.fraction,
        "rows": sum(t["rows"] for t in tables),
        "source_rows": sum(t["source_rows"] for t in tables),
        "setup_seconds": round(t_setup, 3),
        "copy_seconds": round(copy_seconds, 3),
        "tables": tables,
    }
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
