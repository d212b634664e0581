"""Per-engine edge-value fixtures: the nastiest values each engine can hold, created with the
engine's own SQL (values as text literals cast by the server, or bound parameters)."""

from __future__ import annotations

import sqlalchemy as sa

PG_SCHEMA = [
    """CREATE TABLE "Edge Values" (
        id bigserial PRIMARY KEY, t text, vc varchar(20), ch char(5), b bytea,
        i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
        n numeric, n2 numeric(38,10), d date, ts timestamp(6), tstz timestamptz, tm time,
        j json, jb jsonb, u uuid, bo boolean, iv interval, arr integer[], ip inet
    )""",
    """CREATE TABLE "select" ("from" integer PRIMARY KEY, "MixedCase" text, "a""b" text,
        "semi;colon--" text, "new
line" text)""",
    """CREATE TABLE "MixedCase" (id integer PRIMARY KEY)""",
    """CREATE TABLE "mixedcase" (id integer PRIMARY KEY)""",
    """CREATE TABLE nopk (a integer, b text)""",
    """CREATE TABLE tree (id integer PRIMARY KEY, parent integer REFERENCES tree(id), name text)""",
    """CREATE TABLE ident (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)""",
    """CREATE INDEX tree_name_idx ON tree (name)""",
    """ALTER TABLE nopk ADD CONSTRAINT nopk_b_key UNIQUE (b)""",
]

_PG_COLS = "t, vc, ch, b, i2, i4, i8, f4, f8, n, n2, d, ts, tstz, tm, j, jb, u, bo, iv, arr, ip"
_PG_CASTS = ("text varchar(20) char(5) bytea smallint integer bigint real double\\ precision "
             "numeric numeric(38,10) date timestamp timestamptz time json jsonb uuid boolean "
             "interval integer[] inet").replace("\\ ", "~").split()
PG_ROWS = [
    # all NULL
    [None] * 22,
    ["", "", "", "\\x", "0", "0", "0", "0", "0", "0", "0", "2000-02-29", "2000-01-01 00:00:00",
     "2000-01-01 00:00:00+00", "00:00:00", "{}", "{}", "00000000-0000-0000-0000-000000000000",
     "false", "0", "{}", "0.0.0.0"],
    ["NULL", "\\N", "ab   ", "\\x" + bytes(range(256)).hex(), "-32768", "-2147483648",
     "-9223372036854775808", "-Infinity", "-Infinity", "-Infinity", "-9999999999999999999999999999.9999999999",
     "4713-01-01 BC", "0044-03-15 12:30:00.000001 BC", "-infinity", "00:00:00.000001",
     '{"b": 1, "a": 2, "a": 3}', '{"b": 1, "a": [1, 2.5, null]}',
     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "true", "-1 years -2 mons +3 days -04:05:06.789",
     "{1,NULL,3}", "192.168.0.1/24"],
    ["😀 e\u0301 \u00e9 שלום \ufeff \r\n tab\t \\ ' \" ; --", "𝄞" * 20, "\u00e9\u00e9\u00e9\u00e9\u00e9",
     "\\x00ff", "32767", "2147483647", "9223372036854775807", "NaN", "NaN", "NaN",
     "9999999999999999999999999999.9999999999", "infinity", "9999-12-31 23:59:59.999999",
     "infinity", "23:59:59.999999", "[1, 2, 3]", '"text"', "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
     "true", "P1Y2M3DT4H5M6.789S", "{{1,2},{3,4}}", "::1"],
    ["line1\nline2\n\\.\n", " leading and trailing ", "x", "\\x5c78", "1", "1", "1",
     "Infinity", "Infinity", "Infinity", "0.0000000001", "1899-12-31", "1900-01-01 00:00:00",
     "1969-12-31 23:59:59.999999-05:30", "12:00:00", "null", "null",
     "ffffffff-ffff-ffff-ffff-ffffffffffff", "false", "00:00:00.000001", "{}", "10.0.0.0/8"],
    ["big", "x", "x", "\\x", "2", "2", "2", "-0", "-0", "1" + "0" * 999 + ".5",
     "12345678901234567890.1234567890", "0001-01-01", "0001-01-01 00:00:00",
     "0001-01-01 00:00:00+00", "01:02:03", "1.5e300", "1.5e300",
     "123e4567-e89b-12d3-a456-426614174000", "true", "1 day", "{-1}", "fe80::1/64"],
    ["tiny floats", "y", "y", "\\x00", "3", "3", "3", "1.4e-45", "5e-324", "-0.0",
     "0", "2024-02-29", "2024-02-29 12:00:00.5", "2024-02-29 12:00:00.5+14", "24:00:00",
     "0.1", "0.1", "123e4567-e89b-12d3-a456-426614174001", "false", "-00:00:01", "{0}",
     "127.0.0.1"],
    ["max floats", "z", "z", "\\x01", "4", "4", "4", "3.4028235e38", "1.7976931348623157e308",
     "0.30000000000000004", "1e-1000", "1858-11-17", "200000-12-31 23:59:59.999999",
     "200000-12-31 23:59:59.999999+00", "00:00:00", "{\"k\": \"\\u0000\"}", "{\"k\": \"x\"}",
     "123e4567-e89b-12d3-a456-426614174002", "true", "178000000 years", "{2147483647}",
     "255.255.255.255"],
]


def pg_insert_statements() -> list[tuple[str, list[object]]]:
    casts = [c.replace("~", " ") for c in _PG_CASTS]
    marks = ", ".join(f"%s::{c}" for c in casts)
    out: list[tuple[str, list[object]]] = []
    for row in PG_ROWS:
        out.append((f'INSERT INTO "Edge Values" ({_PG_COLS}) VALUES ({marks})', list(row)))
    out += [
        ('INSERT INTO "select" VALUES (%s, %s, %s, %s, %s)', [1, "Mixed", 'q"uote', "semi", "nl"]),
        ('INSERT INTO "MixedCase" VALUES (%s)', [1]),
        ('INSERT INTO "mixedcase" VALUES (%s)', [2]),
        ("INSERT INTO nopk VALUES (%s, %s)", [1, "dup"]),
        ("INSERT INTO nopk VALUES (%s, %s)", [1, None]),
        ("INSERT INTO nopk VALUES (%s, %s)", [None, None]),
        ("INSERT INTO tree VALUES (%s, %s, %s)", [1, None, "root"]),
        ("INSERT INTO tree VALUES (%s, %s, %s)", [3, 1, "child"]),
        ("INSERT INTO tree VALUES (%s, %s, %s)", [2, 3, "grandchild"]),
        ("INSERT INTO ident (v) VALUES (%s)", ["a"]),
        ("INSERT INTO ident (v) VALUES (%s)", ["b"]),
        ("DELETE FROM ident WHERE v = %s", ["b"]),
        ("SELECT setval(pg_get_serial_sequence('\"Edge Values\"', 'id'), 500)", []),
    ]
    return out


MYSQL_SCHEMA = [
    """CREATE TABLE `Edge Values` (
        id bigint PRIMARY KEY AUTO_INCREMENT, t longtext, vc varchar(20), ch char(5), b longblob,
        vb varbinary(10), i1 tinyint, u1 tinyint unsigned, i2 smallint, u2 smallint unsigned,
        i3 mediumint, i4 int, u4 int unsigned, i8 bigint, u8 bigint unsigned, f4 float,
        f8 double, n decimal(65,30), n2 decimal(10,2), d date, dt datetime(6), ts timestamp(6) NULL,
        tm time(6), j json, e enum('a','b','é'), s set('x','y'), bo tinyint(1), y year, bt bit(8)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci""",
    """CREATE TABLE `select` (`from` int PRIMARY KEY, `a``b` text, `semi;colon--` text)""",
    """CREATE TABLE nopk (a int, b varchar(10), UNIQUE KEY nopk_b (b))""",
    """CREATE TABLE tree (id int PRIMARY KEY, parent int, name varchar(50), KEY tree_name (name),
        CONSTRAINT tree_parent FOREIGN KEY (parent) REFERENCES tree (id))""",
]

MYSQL_ROWS: list[list[object]] = [
    [0] + [None] * 28,
    [1, "", "", "", b"", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, "0", "0", "1000-01-01",
     "1000-01-01 00:00:00", "1970-01-01 00:00:01", "00:00:00", "{}", "a", "", 0, 1901, b"\x00"],
    [2, "a\x00b 😀 e\u0301 שלום \r\n \\ ' \" `", "𝄞" * 20, "ab", bytes(range(256)), b"\x00\xff",
     -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808,
     18446744073709551615, -3.4028234e38, -1.7976931348623157e308,
     "-99999999999999999999999999999999999.999999999999999999999999999999", "-99999999.99",
     "0001-01-01", "0001-01-01 00:00:00.000001", "2038-01-19 03:14:07.999999",
     "23:59:59.999999", '{"b": 1, "a": [1, 2.5, null]}', "é", "x,y", 1, 2155, b"\xff"],
    [3, "NULL", "\\N", "x", b"\x5c\x78", b"z", 127, 1, 32767, 1, 8388607, 2147483647, 1,
     9223372036854775807, 1, 1.4e-45, 5e-324, "0.000000000000000000000000000001", "0.01",
     "9999-12-31", "9999-12-31 23:59:59.999999", None, "12:00:00.5", "null", "b", "y", 0, 2000,
     b"\x01"],
    [4, "tiny", "y", "y", b"\x00", b"", 1, 2, 3, 4, 5, 6, 7, 8, 9, 0.1, 0.30000000000000004,
     "12345678901234567890.123456789012345678901234567890", "12345678.90", "1899-12-31",
     "1900-01-01 00:00:00", "2000-01-01 00:00:00", "00:00:00.000001", "[1, 2, 3]", None, "",
     None, None, b"\x80"],
]


def mysql_insert_statements() -> list[tuple[str, list[object]]]:
    marks = ", ".join(["%s"] * 29)
    out: list[tuple[str, list[object]]] = [
        ("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES'", []),
        ("SET time_zone = '+00:00'", []),
    ]
    for row in MYSQL_ROWS:
        out.append((f"INSERT INTO `Edge Values` VALUES ({marks})", list(row)))
    out += [
        ("INSERT INTO `select` VALUES (%s, %s, %s)", [1, "q`uote", "semi"]),
        ("INSERT INTO nopk VALUES (%s, %s)", [1, "dup"]),
        ("INSERT INTO nopk VALUES (%s, %s)", [1, None]),
        ("INSERT INTO nopk VALUES (%s, %s)", [None, None]),
        ("INSERT INTO tree VALUES (%s, %s, %s)", [1, None, "root"]),
        ("INSERT INTO tree VALUES (%s, %s, %s)", [2, 1, "child"]),
        ("ALTER TABLE `Edge Values` AUTO_INCREMENT = 500", []),
    ]
    return out


SQLITE_SCHEMA = [
    """CREATE TABLE "Edge Values" (id INTEGER PRIMARY KEY AUTOINCREMENT, t TEXT, vc NVARCHAR(5),
        b BLOB, i INTEGER, f REAL, n NUMERIC(10,2), nu NUMERIC, d DATE, dt DATETIME, bo BOOLEAN,
        j JSON, untyped)""",
    """CREATE TABLE "select" ("from" INTEGER PRIMARY KEY, "a""b" TEXT, "semi;colon--" TEXT)""",
    """CREATE TABLE nopk (a INTEGER, b TEXT)""",
    """CREATE TABLE tree (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES tree(id), name TEXT)""",
    """CREATE INDEX tree_name ON tree (name)""",
    """CREATE UNIQUE INDEX nopk_b ON nopk (b)""",
]

SQLITE_ROWS: list[list[object]] = [
    [1] + [None] * 12,
    [2, "", "", b"", 0, 0.0, 0, 0, "2000-02-29", "2000-01-01 00:00:00", 0, "{}", 1],
    [3, "a\x00b 😀 e\u0301 שלום \r\n", "longer than five", bytes(range(256)),
     -9223372036854775808, float("-inf"), 0.99, "12345678901234567890.123", "0001-01-01",
     "0001-01-01 00:00:00.000001", 1, '{"b": 1, "a": 2}', 2],
    [4, "NULL", "\\N", b"\x00", 9223372036854775807, float("inf"), 1.1, 3,
     "1850-06-30", "9999-12-31 23:59:59.999999", 0, "[1, 2.5, null]", 3],
    [5, "tiny", "x", b"\xff", 5, 5e-324, 10, 2.5, "1899-12-31", "2024-02-29 12:00:00.5", 1,
     "null", 4],
    [6, "max", "y", b"z", 6, 1.7976931348623157e308, -0.01, -7, "9999-12-31",
     "1900-01-01 00:00:00", 0, "1.5e300", 5],
]


def sqlite_insert_statements() -> list[tuple[str, list[object]]]:
    out: list[tuple[str, list[object]]] = []
    for row in SQLITE_ROWS:
        out.append(('INSERT INTO "Edge Values" VALUES (' + ", ".join(["?"] * 13) + ")", list(row)))
    out += [
        ('INSERT INTO "select" VALUES (?, ?, ?)', [1, 'q"uote', "semi"]),
        ("INSERT INTO nopk VALUES (?, ?)", [1, "dup"]),
        ("INSERT INTO nopk VALUES (?, ?)", [1, None]),
        ("INSERT INTO nopk VALUES (?, ?)", [None, None]),
        ("INSERT INTO tree VALUES (?, ?, ?)", [1, None, "root"]),
        ("INSERT INTO tree VALUES (?, ?, ?)", [3, 2, "child before parent"]),
        ("INSERT INTO tree VALUES (?, ?, ?)", [2, 1, "parent"]),
        ("UPDATE sqlite_sequence SET seq = 500 WHERE name = 'Edge Values'", []),
    ]
    return out


def create_edge_database(kind: str, url: str) -> None:
    schema, inserts = {
        "postgresql": (PG_SCHEMA, pg_insert_statements),
        "mysql": (MYSQL_SCHEMA, mysql_insert_statements),
        "sqlite": (SQLITE_SCHEMA, sqlite_insert_statements),
    }[kind]
    eng = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        for stmt in schema:
            cur.execute(stmt)
        for stmt, params in inserts():
            cur.execute(stmt, params)
        if kind == "sqlite":
            raw.commit()
        cur.close()
    eng.dispose()
