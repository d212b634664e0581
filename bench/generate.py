#!/usr/bin/env python
"""Build the benchmark dataset: the same deterministic rows in PostgreSQL, MariaDB and SQLite.

    python bench/generate.py --scale 1 [--engines postgresql,mysql,sqlite]

Rows are generated once per batch with numpy (a seeded generator per table and batch, so the
data does not depend on which engines are loaded) and written to every selected engine:

* PostgreSQL: database ``dbcrate_bench`` is dropped and recreated; each table is created and
  loaded with ``COPY ... FROM STDIN (FORMAT csv, FREEZE)`` in one transaction; primary keys,
  secondary indexes and foreign keys are added afterwards, identities are set, then
  ``VACUUM ANALYZE``.
* MariaDB: database ``dbcrate_bench`` (utf8mb4) is dropped and recreated; each batch is loaded
  with ``LOAD DATA LOCAL INFILE`` (any warning is an error); secondary indexes and foreign keys
  are added afterwards.
* SQLite: ``bench/data/bench.db`` is rebuilt with ``executemany`` in one transaction.

Scale 1 is about 1 GB of PostgreSQL data (heap + TOAST + indexes); row counts are linear in
the scale (see ``BASE_ROWS`` in benchlib.py). A summary is written to bench/data/meta.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

# ----------------------------------------------------------------------------- vocabulary
FIRST = ["José", "Zoë", "Åsa", "Ömer", "François", "Łukasz", "Nuño", "Chloé", "Søren", "Anaïs",
         "Jürgen", "Mikael", "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sofía", "Björn",
         "Ilse", "Dmitri", "Aylin", "Yuki", "Priya", "Ngozi", "Kwame", "Mei", "Thảo", "Zoltán",
         "Renée", "Håkon", "Inés", "Zuzana", "Agnès", "Ciarán"]
LAST = ["García", "Müller", "Øvergaard", "Dubois", "Kowalski", "Nakamura", "Smith", "O'Brien",
        "Jönsson", "Đorđević", "Łęcki", "Rossi", "Nguyễn", "Papadopoulos", "Schäfer",
        "Hernández", "Novák", "Fernández", "Lefèvre", "Brown", "Çelik", "Ferreira",
        "van der Berg", "Kim", "Østergård", "Dvořák", "Žukauskas", "Aydın"]  # noqa: RUF001
EMOJI = ["🙂", "🚀", "🌸", "🎉", "☕", "🐍", "❤️", "👍🏽"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "exämple.de"]
STATUSES = ["pending", "paid", "shipped", "delivered", "delivered", "delivered", "cancelled",
            "refunded"]
ADJ = ["Deluxe", "Compact", "Ergonomic", "Smart", "Rustic", "Sleek", "Heavy-duty", "Portable",
       "Wireless", "Organic", "Handmade", "Vintage"]
NOUN = ["Kaffeemühle", "Lamp", "Chair", "Café Table", "Backpack", "Kettle", "Crème Brûlée Set",
        "Headphones", "Bicycle Pump", "Notebook", "Façade Paint", "Smørrebrød Board"]
TAGS = ["red", "blue", "green", "sale", "new", "eco", "bestseller", "limited", "gift", "b2b",
        "clearance", "premium", "ünïcode", "日本"]
WORDS = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed",
         "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna",
         "aliqua", "enim", "ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco",
         "laboris", "nisi", "aliquip", "ex", "ea", "commodo", "consequat", "duis", "aute",
         "irure", "in", "reprehenderit", "voluptate", "velit", "esse", "cillum", "fugiat",
         "nulla", "pariatur", "excepteur", "sint", "occaecat", "cupidatat", "non", "proident",
         "sunt", "culpa", "qui", "officia", "deserunt", "mollit", "anim", "id", "est", "laborum",
         "café", "naïve", "façade", "über", "smørrebrød", "jalapeño", "crème", "brûlée", "déjà",
         "vu", "Ångström", "résumé", "piñata", "coöperate", "Straße", "Ærø", "İstanbul", "Kraków",
         "Łódź", "Malmö", "Zürich", "invoice", "shipment", "warehouse", "customer", "delivery",
         "payment", "refund", "order", "product", "quantity", "discount", "coupon", "tracking",
         "carrier", "parcel", "address", "street", "city", "country"]
WORDS += ['"quoted"', "it's", "C:\\temp\\file", "tab\there", "50%", "a,b", "x;y", "🙂", "🚚",
          "€42", "\n", "\n", "\n\n", "—", "«guillemets»"]

T0 = int(dt.datetime(2015, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
T1 = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
D0 = (dt.date(2020, 1, 1) - dt.date(1970, 1, 1)).days
D1 = (dt.date(2025, 1, 1) - dt.date(1970, 1, 1)).days

#: rows per generated batch (fixed, so the rows do not depend on the scale's batch layout)
BATCH = {"customers": 50_000, "products": 20_000, "orders": 100_000, "order_items": 200_000,
         "documents": 4_000, "events": 100_000}


def _ascii(s: str) -> str:
    out = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "".join(ch for ch in out.lower() if ch.isalnum()) or "x"


FIRST_A = [_ascii(x) for x in FIRST]
LAST_A = [_ascii(x) for x in LAST]
WORDS_ARR = np.array(WORDS, dtype=object)


# ----------------------------------------------------------------------------- generators
# A batch is a dict column -> values, with "kinds" telling how to encode each column:
# int (np.int64), str (list), ts (np.int64 µs UTC), date (np.int32 days), cents (np.int64),
# float (np.float64 + optional mask of NULLs in key "<col>.null"), bool (np.bool_),
# json (list of str), bytes (list of bytes)
KINDS = {
    "customers": [("id", "int"), ("name", "str"), ("email", "str"), ("created", "ts"),
                  ("active", "bool")],
    "products": [("id", "int"), ("name", "str"), ("price", "cents"), ("weight", "float"),
                 ("tags", "json")],
    "orders": [("id", "int"), ("customer_id", "int"), ("ordered_at", "ts"), ("status", "str"),
               ("total", "cents")],
    "order_items": [("id", "int"), ("order_id", "int"), ("product_id", "int"), ("qty", "int"),
                    ("unit_price", "cents")],
    "documents": [("id", "int"), ("customer_id", "int"), ("title", "str"), ("body", "str"),
                  ("blob", "bytes")],
    "events": [("id", "int"), ("customer_id", "int"), ("happened_on", "date"),
               ("payload", "json"), ("score", "float")],
}


def _rng(table: str, batch_no: int) -> np.random.Generator:
    return np.random.default_rng([bl.SEED, bl.TABLES.index(table), batch_no])


def gen_batches(table: str, rows: dict[str, int]) -> Iterator[dict[str, Any]]:
    n_total = rows[table]
    size = BATCH[table]
    for batch_no, start in enumerate(range(0, n_total, size)):
        n = min(size, n_total - start)
        ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
        rng = _rng(table, batch_no)
        yield globals()["_gen_" + table](rng, ids, rows)


def _gen_customers(rng: np.random.Generator, ids: np.ndarray, rows: dict[str, int]) -> dict[str, Any]:
    n = len(ids)
    f = rng.integers(0, len(FIRST), n)
    la = rng.integers(0, len(LAST), n)
    emo = rng.random(n) < 0.04
    e = rng.integers(0, len(EMOJI), n)
    dom = rng.integers(0, len(DOMAINS), n)
    names = [f"{FIRST[a]} {LAST[b]}" + (f" {EMOJI[c]}" if m else "")
             for a, b, c, m in zip(f.tolist(), la.tolist(), e.tolist(), emo.tolist())]
    emails = [f"{FIRST_A[a]}.{LAST_A[b]}{i}@{DOMAINS[d]}"
              for a, b, i, d in zip(f.tolist(), la.tolist(), ids.tolist(), dom.tolist())]
    return {"id": ids, "name": names, "email": emails,
            "created": rng.integers(T0, T1, n, dtype=np.int64), "active": rng.random(n) < 0.85}


def _gen_products(rng: np.random.Generator, ids: np.ndarray, rows: dict[str, int]) -> dict[str, Any]:
    n = len(ids)
    a = rng.integers(0, len(ADJ), n).tolist()
    b = rng.integers(0, len(NOUN), n).tolist()
    names = [f"{ADJ[x]} {NOUN[y]} {chr(65 + i % 26)}-{i % 1000:03d}"
             for x, y, i in zip(a, b, ids.tolist())]
    price = rng.integers(50, 200_000, n, dtype=np.int64)
    weight = np.round(rng.gamma(2.0, 1.5, n), 3)
    ntags = rng.integers(0, 5, n).tolist()
    tagidx = rng.integers(0, len(TAGS), (n, 4)).tolist()
    stock = rng.integers(0, 500, n).tolist()
    tags = [json.dumps({"tags": [TAGS[t] for t in ti[:k]], "stock": s}, ensure_ascii=False)
            for k, ti, s in zip(ntags, tagidx, stock)]
    return {"id": ids, "name": names, "price": price, "weight": weight,
            "weight.null": rng.random(n) < 0.10, "tags": tags}


def _gen_orders(rng: np.random.Generator, ids: np.ndarray, rows: dict[str, int]) -> dict[str, Any]:
    n = len(ids)
    n_orders = rows["orders"]
    base = T0 + (ids - 1) * ((T1 - T0 - 86_400_000_000) // max(1, n_orders))
    at = base + rng.integers(0, 86_400_000_000, n, dtype=np.int64)
    st = rng.integers(0, len(STATUSES), n).tolist()
    return {"id": ids, "customer_id": rng.integers(1, rows["customers"] + 1, n, dtype=np.int64),
            "ordered_at": at, "status": [STATUSES[s] for s in st],
            "total": rng.integers(100, 2_000_000, n, dtype=np.int64)}


def _gen_order_items(rng: np.random.Generator, ids: np.ndarray, rows: dict[str, int]) -> dict[str, Any]:
    n = len(ids)
    n_orders, n_items = rows["orders"], rows["order_items"]
    order_id = 1 + (ids - 1) * n_orders // n_items
    return {"id": ids, "order_id": order_id.astype(np.int64),
            "product_id": rng.integers(1, rows["products"] + 1, n, dtype=np.int64),
            "qty": rng.integers(1, 11, n, dtype=np.int64),
            "unit_price": rng.integers(50, 200_000, n, dtype=np.int64)}


def _gen_documents(rng: np.random.Generator, ids: np.ndarray, rows: dict[str, int]) -> dict[str, Any]:
    n = len(ids)
    nwords = rng.integers(120, 190, n).tolist()
    idx = rng.integers(0, len(WORDS), (n, 190))
    words = WORDS_ARR[idx]
    bodies = [" ".join(w[:k]) for w, k in zip(words.tolist(), nwords)]
    tw = rng.integers(3, 9, n).tolist()
    titles = [" ".join(w[:k]).replace("\n", "").strip().capitalize() or "Untitled"
              for w, k in zip(words[:, 100:110].tolist(), tw)]
    raw = rng.bytes(4096 * n)
    blobs = [raw[i * 4096:(i + 1) * 4096] for i in range(n)]
    return {"id": ids, "customer_id": rng.integers(1, rows["customers"] + 1, n, dtype=np.int64),
            "title": titles, "body": bodies, "blob": blobs}


EVENT_TYPES = ["click", "view", "purchase", "login", "logout", "search", "add_to_cart"]


def _gen_events(rng: np.random.Generator, ids: np.ndarray, rows: dict[str, int]) -> dict[str, Any]:
    n = len(ids)
    ty = rng.integers(0, len(EVENT_TYPES), n).tolist()
    page = rng.integers(1, 5000, n).tolist()
    ms = rng.integers(1, 30_000, n).tolist()
    ok = (rng.random(n) < 0.97).tolist()
    t1 = rng.integers(0, len(TAGS), n).tolist()
    ref = rng.integers(0, 3, n).tolist()
    refs = ['null', '"newsletter"', '"søk \\"q\\""']
    payload = [
        f'{{"type": "{EVENT_TYPES[a]}", "page": "/p/{b}", "ms": {c}, '
        f'"ok": {"true" if d else "false"}, "tags": ["{TAGS[e]}"], "ref": {refs[r]}}}'
        for a, b, c, d, e, r in zip(ty, page, ms, ok, t1, ref)
    ]
    return {"id": ids, "customer_id": rng.integers(1, rows["customers"] + 1, n, dtype=np.int64),
            "happened_on": rng.integers(D0, D1, n).astype(np.int32), "payload": payload,
            "score": rng.normal(50.0, 15.0, n)}


# ----------------------------------------------------------------------------- encoders
def _decimal(cents: np.ndarray) -> pa.Array:
    """int64 cents -> decimal128(12, 2) without Python objects (the unscaled value is cents)."""
    lo = cents.astype("<i8")
    hi = np.where(lo < 0, -1, 0).astype("<i8")
    buf = np.column_stack([lo, hi]).ravel().tobytes()
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(buf)])


def to_arrow(table: str, batch: dict[str, Any], engine: str) -> pa.Table:
    """The batch as an Arrow table whose CSV text the engine's bulk loader reads."""
    arrays, names = [], []
    for col, kind in KINDS[table]:
        v = batch[col]
        if kind == "int":
            a = pa.array(v, pa.int64())
        elif kind in ("str", "json"):
            a = pa.array(v, pa.string())
        elif kind == "ts":
            a = pa.array(v, pa.int64()).cast(pa.timestamp("us"))
        elif kind == "date":
            a = pa.array(v, pa.int32()).cast(pa.date32())
        elif kind == "cents":
            a = _decimal(v)
        elif kind == "float":
            a = pa.array(v, pa.float64(), mask=batch.get(col + ".null"))
        elif kind == "bool":
            a = pa.array(v, pa.bool_())
            if engine == "mysql":
                a = a.cast(pa.int8())
        elif kind == "bytes":
            prefix = "\\x" if engine == "postgresql" else ""
            a = pa.array([prefix + b.hex() for b in v], pa.string())
        else:
            raise AssertionError(kind)
        arrays.append(a)
        names.append(col)
    return pa.Table.from_arrays(arrays, names=names)


def to_csv(t: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(t, sink, pacsv.WriteOptions(include_header=False, batch_size=4096))
    return sink.getvalue()


def to_sqlite_rows(table: str, batch: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    cols = []
    for col, kind in KINDS[table]:
        v = batch[col]
        if kind == "int":
            cols.append(v.tolist())
        elif kind in ("str", "json", "bytes"):
            cols.append(v)
        elif kind == "ts":
            cols.append(pa.array(v, pa.int64()).cast(pa.timestamp("us")).cast(pa.string())
                        .to_pylist())
        elif kind == "date":
            cols.append(pa.array(v, pa.int32()).cast(pa.date32()).cast(pa.string()).to_pylist())
        elif kind == "cents":
            cols.append((v / 100.0).tolist())
        elif kind == "float":
            vals = v.tolist()
            mask = batch.get(col + ".null")
            if mask is not None:
                vals = [None if m else x for x, m in zip(vals, mask.tolist())]
            cols.append(vals)
        elif kind == "bool":
            cols.append(v.astype(np.int64).tolist())
        else:
            raise AssertionError(kind)
    return zip(*cols)


# ----------------------------------------------------------------------------- sinks
class PgSink:
    name = "postgresql"

    def __init__(self) -> None:
        with bl.pg_connect("postgres") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {bl.DB_NAME} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {bl.DB_NAME} ENCODING 'UTF8' TEMPLATE template0")
        self.conn = bl.pg_connect(bl.DB_NAME, autocommit=False)
        self.conn.execute("SET TIME ZONE 'UTC'")
        self.conn.execute("SET synchronous_commit = off")
        self.conn.commit()
        self.copy_cm: Any = None
        self.copy: Any = None
        self.cur: Any = None
        self.seconds = 0.0

    def begin(self, table: str) -> None:
        t0 = time.monotonic()
        self.conn.execute(bl.PG_DDL[table])
        cols = ", ".join(c for c, _ in KINDS[table])
        self.cur = self.conn.cursor()
        self.copy_cm = self.cur.copy(
            f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, FREEZE)")
        self.copy = self.copy_cm.__enter__()
        self.seconds += time.monotonic() - t0

    def write(self, table: str, batch: dict[str, Any]) -> None:
        t0 = time.monotonic()
        self.copy.write(to_csv(to_arrow(table, batch, "postgresql")))
        self.seconds += time.monotonic() - t0

    def end(self, table: str) -> None:
        t0 = time.monotonic()
        self.copy_cm.__exit__(None, None, None)
        self.cur.close()
        self.conn.commit()
        self.seconds += time.monotonic() - t0

    def finish(self) -> None:
        t0 = time.monotonic()
        self.conn.autocommit = True
        c = self.conn
        c.execute("SET maintenance_work_mem = '256MB'")
        for t in bl.TABLES:
            c.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (id)")
        for name, t, col in bl.INDEXES:
            c.execute(f"CREATE INDEX {name} ON {t} ({col})")
        for t, col, ref in bl.FOREIGN_KEYS:
            c.execute(f"ALTER TABLE {t} ADD CONSTRAINT {t}_{col}_fkey FOREIGN KEY ({col}) "
                      f"REFERENCES {ref} (id)")
        for t in bl.TABLES:
            c.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                      f"(SELECT coalesce(max(id), 0) + 1 FROM {t}), false)")
        c.execute("VACUUM ANALYZE")
        c.execute("CHECKPOINT")
        self.conn.close()
        self.seconds += time.monotonic() - t0

    def sizes(self) -> dict[str, Any]:
        return bl.pg_sizes()


class MySink:
    name = "mysql"

    def __init__(self, tmpdir: Path) -> None:
        admin = bl.my_connect(None)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {bl.DB_NAME}")
            cur.execute(f"CREATE DATABASE {bl.DB_NAME} CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_unicode_ci")
        admin.close()
        self.conn = bl.my_connect(bl.DB_NAME, local_infile=True)
        self.tmp = tmpdir / "mysql-batch.csv"
        self.seconds = 0.0
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO'")
            cur.execute("SET time_zone = '+00:00'")
            cur.execute("SET foreign_key_checks = 0, unique_checks = 0")

    def begin(self, table: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(bl.MY_DDL[table])

    def write(self, table: str, batch: dict[str, Any]) -> None:
        t0 = time.monotonic()
        self.tmp.write_bytes(to_csv(to_arrow(table, batch, "mysql")))
        cols, sets = [], []
        for col, kind in KINDS[table]:
            if kind == "bytes":
                cols.append(f"@{col}")
                sets.append(f"`{col}` = UNHEX(@{col})")
            elif kind == "float" and (col + ".null") in batch:
                cols.append(f"@{col}")
                sets.append(f"`{col}` = NULLIF(@{col}, '')")
            else:
                cols.append(f"`{col}`")
        sql = (f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 "
               "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
               f"LINES TERMINATED BY '\\n' ({', '.join(cols)})"
               + (" SET " + ", ".join(sets) if sets else ""))
        with self.conn.cursor() as cur:
            cur.execute(sql, (str(self.tmp),))
            cur.execute("SHOW WARNINGS LIMIT 5")
            warnings = cur.fetchall()
            if warnings:
                raise RuntimeError(f"MariaDB LOAD DATA into {table} warned: {warnings}")
        self.seconds += time.monotonic() - t0

    def end(self, table: str) -> None:
        pass

    def finish(self) -> None:
        t0 = time.monotonic()
        with self.conn.cursor() as cur:
            by_table: dict[str, list[str]] = {}
            for name, t, col in bl.INDEXES:
                by_table.setdefault(t, []).append(f"ADD INDEX {name} (`{col}`)")
            for t, col, ref in bl.FOREIGN_KEYS:
                by_table.setdefault(t, []).append(
                    f"ADD CONSTRAINT {t}_{col}_fkey FOREIGN KEY (`{col}`) REFERENCES `{ref}` (id)")
            for t, parts in by_table.items():
                cur.execute(f"ALTER TABLE `{t}` " + ", ".join(parts))
            cur.execute("SET foreign_key_checks = 1, unique_checks = 1")
            cur.execute("ANALYZE TABLE " + ", ".join(f"`{t}`" for t in bl.TABLES))
            cur.fetchall()
        self.conn.close()
        self.tmp.unlink(missing_ok=True)
        self.seconds += time.monotonic() - t0

    def sizes(self) -> dict[str, Any]:
        return bl.my_sizes()


class SqliteSink:
    name = "sqlite"

    def __init__(self) -> None:
        bl.DATA_DIR.mkdir(parents=True, exist_ok=True)
        self.tmp = bl.SQLITE_PATH.with_suffix(".db.tmp")
        self.tmp.unlink(missing_ok=True)
        self.conn = sqlite3.connect(self.tmp, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("PRAGMA cache_size = -262144")
        self.conn.execute("BEGIN")
        self.seconds = 0.0

    def begin(self, table: str) -> None:
        self.conn.execute(bl.SQLITE_DDL[table])

    def write(self, table: str, batch: dict[str, Any]) -> None:
        t0 = time.monotonic()
        cols = ", ".join(c for c, _ in KINDS[table])
        marks = ", ".join("?" for _ in KINDS[table])
        self.conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                              to_sqlite_rows(table, batch))
        self.seconds += time.monotonic() - t0

    def end(self, table: str) -> None:
        pass

    def finish(self) -> None:
        t0 = time.monotonic()
        for name, t, col in bl.INDEXES:
            self.conn.execute(f"CREATE INDEX {name} ON {t} ({col})")
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.close()
        os.replace(self.tmp, bl.SQLITE_PATH)
        self.seconds += time.monotonic() - t0

    def sizes(self) -> dict[str, Any]:
        return bl.sqlite_sizes()


ENGINE_ALIASES = {"postgresql": "postgresql", "pg": "postgresql", "postgres": "postgresql",
                  "mysql": "mysql", "mariadb": "mysql", "my": "mysql", "sqlite": "sqlite"}


def parse_engines(text: str) -> list[str]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part not in ENGINE_ALIASES:
            raise SystemExit(f"unknown engine {part!r} (use postgresql, mysql, sqlite)")
        if ENGINE_ALIASES[part] not in out:
            out.append(ENGINE_ALIASES[part])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", type=float, required=True, help="1 = about 1 GB in PostgreSQL")
    ap.add_argument("--engines", default="postgresql,mysql,sqlite",
                    help="comma-separated: postgresql,mysql,sqlite (default: all)")
    args = ap.parse_args()
    if args.scale <= 0:
        raise SystemExit("--scale must be positive")
    engines = parse_engines(args.engines)
    rows = bl.rows_for_scale(args.scale)
    print(f"scale {args.scale}: " + ", ".join(f"{t} {n:,}" for t, n in rows.items())
          + f" ({sum(rows.values()):,} rows) -> {', '.join(engines)}", flush=True)

    bl.DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    gen_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="gen-", dir=bl.DATA_DIR) as tmp:
        sinks: list[Any] = []
        for e in engines:
            sinks.append(PgSink() if e == "postgresql" else MySink(Path(tmp)) if e == "mysql"
                         else SqliteSink())
        for table in bl.TABLES:
            t_table = time.monotonic()
            for s in sinks:
                s.begin(table)
            it = gen_batches(table, rows)
            while True:
                t0 = time.monotonic()
                batch = next(it, None)
                gen_seconds += time.monotonic() - t0
                if batch is None:
                    break
                for s in sinks:
                    s.write(table, batch)
            for s in sinks:
                s.end(table)
            print(f"  {table:12s} {rows[table]:>10,} rows  {time.monotonic() - t_table:7.1f}s",
                  flush=True)
        for s in sinks:
            t0 = time.monotonic()
            s.finish()
            print(f"  {s.name}: indexes/constraints/analyze {time.monotonic() - t0:.1f}s",
                  flush=True)

    meta: dict[str, Any] = {}
    if bl.META_PATH.exists():
        try:
            meta = json.loads(bl.META_PATH.read_text())
        except ValueError:
            meta = {}
    meta.setdefault("engines", {})
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(f"generated in {time.monotonic() - started:.1f}s (row generation {gen_seconds:.1f}s)")
    for s in sinks:
        sz = s.sizes()
        meta["engines"][s.name] = {"scale": args.scale, "seed": bl.SEED, "rows": rows,
                                   "generated_at": now, "load_seconds": round(s.seconds, 2),
                                   "sizes": sz}
        bad = {t: v["rows"] for t, v in sz["tables"].items() if v["rows"] != rows[t]}
        if bad:
            raise SystemExit(f"{s.name}: row counts differ from the plan: {bad}")
        extra = (f", pg_database_size {sz['database_bytes'] / 1e6:,.1f} MB"
                 if "database_bytes" in sz else "")
        print(f"  {s.name:10s} table data {sz['table_bytes'] / 1e6:9,.1f} MB, with indexes "
              f"{sz['total_bytes'] / 1e6:9,.1f} MB{extra}")
    bl.META_PATH.write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
