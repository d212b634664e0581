"""An independent check of database content (it uses none of dbcrate's code).

Every table is read with a plain SELECT through SQLAlchemy, every value is brought to a
canonical text form that does not depend on the engine (numbers as normalised decimals, times
as ISO text in UTC, bytes as hex), rows are sorted, and each table is hashed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?$")


def canon(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if v == 0 and math.copysign(1, v) < 0:
            return "-0"
        return _dec(Decimal(repr(v)))
    if isinstance(v, Decimal):
        if v.is_nan():
            return "NaN"
        if v.is_infinite():
            return "Infinity" if v > 0 else "-Infinity"
        return _dec(v)
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.isoformat(" ")
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return "x" + bytes(v).hex()
    if isinstance(v, str):
        if _ISO.match(v):
            try:
                parsed = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                return canon(parsed) if (" " in v or "T" in v) else parsed.date().isoformat()
            except ValueError:
                return v
        return v
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _dec(d: Decimal) -> str:
    d = d.normalize()
    text = format(d, "f")
    return "0" if text in ("-0", "0") and not d.is_signed() else text


def table_digest(conn: sa.Connection, name: str, quote: Any,
                 schema: str | None = None) -> tuple[int, str]:
    where = f"{quote(schema)}.{quote(name)}" if schema else quote(name)
    if conn.dialect.name == "postgresql":
        # the server's own text forms: exact, and they include what Python cannot hold
        # (infinity and BC dates)
        cols = [c["name"] for c in sa.inspect(conn).get_columns(name, schema=schema)]
        select = ", ".join(f"{quote(c)}::text" for c in cols)
        rows = conn.exec_driver_sql(f"SELECT {select} FROM {where}").all()
    else:
        rows = conn.exec_driver_sql(f"SELECT * FROM {where}").all()
    canon_rows = sorted(json.dumps([canon(v) for v in row], ensure_ascii=False) for row in rows)
    h = hashlib.sha256("\n".join(canon_rows).encode()).hexdigest()
    return len(rows), h


def snapshot(url: str, tables: list[str] | None = None,
             schemas: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """{table: (row count, sha256 of canonical sorted rows)} for every (or the given) table;
    with ``schemas``, every table of those schemas, by its own name."""
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            elif conn.dialect.name in ("mysql", "mariadb"):
                conn.exec_driver_sql("SET time_zone = '+00:00'")
            names = tables or [
                n for n in sa.inspect(conn).get_table_names() if not n.startswith("sqlite_")
            ]
            quote = conn.dialect.identifier_preparer.quote_identifier
            if schemas:
                insp = sa.inspect(conn)
                return {n: table_digest(conn, n, quote, s) for s in schemas
                        for n in sorted(insp.get_table_names(schema=s))}
            return {n: table_digest(conn, n, quote) for n in sorted(names)}
    finally:
        eng.dispose()
