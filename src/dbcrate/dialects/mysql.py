"""MariaDB / MySQL through PyMySQL; rows are read by mysqlclient when it is installed.

Dump reads inside ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` with the session time zone at
UTC (so TIMESTAMP columns read as UTC instants): the rows through mysqlclient's connection and
its snapshot (C, mysql_fast.py) when that driver is there, else through PyMySQL's unbuffered
server-side cursor. Restore loads with ``LOAD DATA LOCAL INFILE`` in strict mode with
``NO_AUTO_VALUE_ON_ZERO`` (so an id 0 stays 0) and creates tables as utf8mb4 with a binary,
no-pad collation when the source was another engine (so that 'a', 'A' and 'a ' stay distinct
keys, as they were there).

**Character sets.** Text is UTF-8 in the archive whatever the column's character set: the dump
session reads it as utf8mb4, and every load tells the server its bytes are utf8mb4 (``LOAD
DATA ... CHARACTER SET utf8mb4``), so that the server converts them into each column's own
character set (binary columns take the bytes as they are). A value the column's character set
cannot hold (an emoji into latin1) is a warning of the load, which fails the table rather
than leave a '?'. From MariaDB to MariaDB every text column is recreated with the character set
and collation of the source: reflection spells both out in the column's engine type (also
where SHOW CREATE TABLE leaves them implicit), and the table keeps its default ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pymysql.err
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.sql import sqltypes

from dbcrate.dialects.base import CONNECT_TIMEOUT, Dialect, generic_logical_type
from dbcrate.dialects.mysql_fast import DISABLE_ENV, FastReader
from dbcrate.dialects.mysql_keys import MAX_KEY_BYTES, key_bytes, narrowed
from dbcrate.dialects.mysql_loaddata import LOAD_PIECE_BYTES, load_data_block
from dbcrate.dialects.native_mysql import MysqlNative
from dbcrate.dialects.pieces import batch_pieces
from dbcrate.dialects.pyvalues import fetch_batches
from dbcrate.errors import DatabaseError
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table

# longest VARCHAR/VARBINARY dbcrate creates inline; longer or unbounded values go to LONGTEXT/
# LONGBLOB, except in keys, which need a bounded type (768 utf8mb4 chars = 3072 bytes)
INLINE_MAX = 1024
KEY_TEXT_CHARS = 768
KEY_BINARY_BYTES = 3072
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_]+$")
#: the reflected types of MariaDB's text columns (those that have a character set)
#: spatial types, which SQLAlchemy does not know: dumped as bytes in the server's form
_SPATIAL = re.compile(r"^(?:GEOMETRY|POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|"
                      r"MULTIPOLYGON|GEOMETRYCOLLECTION)$")
_TEXT_TYPE = re.compile(r"^(?:CHAR|VARCHAR|TINYTEXT|TEXT|MEDIUMTEXT|LONGTEXT|ENUM|SET)\b")
#: a character set and collation at the end of a type's spelling, as SQLAlchemy renders them
_CHARSET_TAIL = re.compile(
    r"(?: CHARACTER SET (?P<charset>[A-Za-z0-9_]+))?(?: COLLATE (?P<collation>[A-Za-z0-9_]+))?$"
)
_SNAPSHOT_STATEMENTS = (
    "SET time_zone = '+00:00'",
    "SET NAMES utf8mb4",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
)

#: the outer bounds of the first and last key range: no bound (outside every integer key)
_NO_LOWER = -(2**64)
_NO_UPPER = 2**64


def _driver_connection(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


#: in-memory temporary table limit of a restore session (bytes)
RESTORE_TEMP_TABLE_BYTES = 256 * 1024 * 1024


_IDENT = r"(?:`(?:[^`]|``)+`|\w+)"
#: SQLAlchemy's rendering of a plain index and of a unique constraint (nothing after the
#: column list: USING, COMMENT and the like make the element run on its own)
_CREATE_INDEX = re.compile(
    rf"CREATE (?P<kind>(?:UNIQUE|FULLTEXT|SPATIAL) )?INDEX (?P<name>{_IDENT}) "
    rf"ON (?P<table>{_IDENT}) \((?P<cols>[^;]*)\)"
)
_ADD_UNIQUE = re.compile(
    rf"ALTER TABLE (?P<table>{_IDENT}) ADD CONSTRAINT (?P<name>{_IDENT}) "
    rf"UNIQUE \((?P<cols>[^;]*)\)"
)


class MySQL(Dialect):
    name: ClassVar[str] = "mysql"
    # mysqlclient's errors are raised as PyMySQL's (dialects/mysql_fast.py)
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (pymysql.err.Error,)
    max_identifier_chars: ClassVar[int | None] = 64
    case_insensitive_columns: ClassVar[bool] = True
    transactional_ddl: ClassVar[bool] = False
    foreign_key_types_match: ClassVar[bool] = True
    journal_text_type: ClassVar[str] = "VARCHAR(255)"  # a key part: TEXT needs a prefix length
    upsert_style: ClassVar[Literal["on_conflict", "on_duplicate_key"]] = "on_duplicate_key"
    # BINARY: a case-insensitive collation would take 'abc' and 'ABC' for the same value
    same_value_sql: ClassVar[str] = "BINARY {a} <=> BINARY {b}"
    fk_checks_off_sql: ClassVar[str | None] = "SET foreign_key_checks = 0"
    begin_sql: ClassVar[str] = "START TRANSACTION"
    drop_foreign_key_keyword: ClassVar[str] = "FOREIGN KEY"
    holds_decimal_specials: ClassVar[bool] = False
    holds_nan: ClassVar[bool] = False
    holds_infinity: ClassVar[bool] = False
    holds_negative_zero: ClassVar[bool] = False
    holds_infinite_dates: ClassVar[bool] = False
    year_range: ClassVar[tuple[int, int] | None] = (1, 9999)
    decimal_limits: ClassVar[tuple[int, int] | None] = (65, 30)
    parallel_dump: ClassVar[bool] = True
    connect_timeout: ClassVar[int | None] = CONNECT_TIMEOUT
    client_charset: ClassVar[str | None] = "utf8mb4"
    loads_local_files: ClassVar[bool] = True  # restore loads with LOAD DATA LOCAL
    native: ClassVar[MysqlNative] = MysqlNative()  # SHOW CREATE ... (native_mysql.py)
    case_insensitive_tables: bool = False  # set per server by inspect_target()
    max_key_bytes: ClassVar[int | None] = MAX_KEY_BYTES  # InnoDB (mysql_keys.py)
    key_bytes = staticmethod(key_bytes)  # type: ignore[assignment]
    narrowed = staticmethod(narrowed)  # type: ignore[assignment]

    def prefix_index_kwargs(self, prefixes: dict[str, int]) -> dict[str, Any]:
        return {"mysql_length": prefixes}

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        #: the mysqlclient reader of each dump connection (keyed weakly: a connection that is
        #: dropped on an error path takes its reader with it)
        self._readers: weakref.WeakKeyDictionary[Any, FastReader] = weakref.WeakKeyDictionary()

    def inspect_target(self, conn: Connection) -> None:
        lctn = conn.exec_driver_sql("SELECT @@lower_case_table_names").scalar()
        self.case_insensitive_tables = bool(lctn and int(lctn) != 0)

    # ------------------------------------------------------------------ dump
    def begin_snapshot(self, conn: Connection) -> None:
        for stmt in _SNAPSHOT_STATEMENTS:
            conn.exec_driver_sql(stmt)
        # the rows are read by mysqlclient when it is installed: its connection opens its
        # snapshot now, and every row is read there (see mysql_fast)
        self.close_readers(conn)
        reader = FastReader.open(self.engine.url, _SNAPSHOT_STATEMENTS)
        if reader is not None:
            self._readers[_driver_connection(conn)] = reader

    def close_readers(self, conn: Connection) -> None:
        reader = self._readers.pop(_driver_connection(conn), None)
        if reader is not None:
            reader.close()

    def share_snapshot(self, leader: Connection, workers: list[Connection]) -> None:
        # MariaDB cannot hand a snapshot to another session: hold writes for the instant it
        # takes every worker to open its own consistent snapshot (what mydumper does); this
        # needs the RELOAD privilege. The mysqlclient readers open theirs inside the same
        # instant (begin_snapshot), so all rows of all connections are of one snapshot.
        self.close_readers(leader)
        leader.exec_driver_sql("ROLLBACK")
        try:
            leader.exec_driver_sql("FLUSH TABLES WITH READ LOCK")
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(
                f"a parallel dump needs a moment of FLUSH TABLES WITH READ LOCK: {exc.orig}",
                hint="grant the RELOAD privilege, or dump with -j 1",
            ) from None
        try:
            for conn in [leader, *workers]:
                self.begin_snapshot(conn)
        finally:
            leader.exec_driver_sql("UNLOCK TABLES")

    def key_ranges(self, conn: Connection, table: Table, parts: int) -> list[tuple[int, int]] | None:
        ranges = super().key_ranges(conn, table, parts)
        if not ranges:
            return ranges
        # min and max were read in the leader's first snapshot, and share_snapshot then opens
        # a new one on every connection, where rows may have been added below the min or
        # above the max: the outer ranges are left open, so that every row is read once
        ranges[0] = (_NO_LOWER, ranges[0][1])
        ranges[-1] = (ranges[-1][0], _NO_UPPER)
        return ranges

    def range_condition(self, table: Table, key_range: tuple[int, int] | None) -> str:
        if key_range is None:
            return ""
        pk = self.quote(table.primary_key[0])
        lo, hi = key_range
        bounds = ([] if lo == _NO_LOWER else [f"{pk} >= {int(lo)}"]) + (
            [] if hi == _NO_UPPER else [f"{pk} < {int(hi)}"])
        return " WHERE " + " AND ".join(bounds) if bounds else ""

    def three_byte_utf8_columns(self, conn: Connection, table: str) -> set[str]:
        rows = conn.execute(
            sa.text(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                "DATABASE() AND TABLE_NAME = :t AND CHARACTER_SET_NAME IN ('utf8', 'utf8mb3')"
            ),
            {"t": table},
        )
        return {r[0] for r in rows}

    def server_version(self, conn: Connection) -> str:
        return str(conn.exec_driver_sql("SELECT VERSION()").scalar())

    def logical_type(self, sa_type: Any, info: dict[str, Any]) -> LogicalType:
        unsigned = bool(getattr(sa_type, "unsigned", False))
        if isinstance(sa_type, mysql.TINYINT):
            return LogicalType("int16" if unsigned else "int8")
        if isinstance(sa_type, mysql.SMALLINT):
            return LogicalType("int32" if unsigned else "int16")
        if isinstance(sa_type, mysql.MEDIUMINT):
            return LogicalType("int32")
        if isinstance(sa_type, mysql.BIGINT):
            return LogicalType("uint64" if unsigned else "int64")
        if isinstance(sa_type, mysql.YEAR):
            return LogicalType("int16")
        if isinstance(sa_type, mysql.BIT):
            return LogicalType("int64")
        if isinstance(sa_type, sqltypes.Integer):
            return LogicalType("int64" if unsigned else "int32")
        if isinstance(sa_type, mysql.FLOAT) or (
            isinstance(sa_type, sqltypes.Float) and not isinstance(sa_type, mysql.DOUBLE | mysql.REAL)
        ):
            return LogicalType("float32")
        if isinstance(sa_type, mysql.TIMESTAMP):
            return LogicalType("timestamptz")
        if isinstance(sa_type, mysql.SET):
            return LogicalType("string")
        if _SPATIAL.match(info.get("declared_type") or ""):
            return LogicalType("binary")  # the server's own form: SRID, then WKB
        return generic_logical_type(sa_type)

    @classmethod
    def carried_as(cls, column: Column) -> str | None:
        if _SPATIAL.match(column.engine_type):
            return "binary, holding the server's own form of each value (SRID, then WKB)"
        return super().carried_as(column)

    def declared_types(self, conn: Connection, name: str) -> dict[str, str]:
        rows = conn.execute(sa.text(
            "SELECT COLUMN_NAME, UPPER(COLUMN_TYPE) FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": name}).all()
        return {str(col): str(spelled) for col, spelled in rows}

    def is_autoincrement(self, info: dict[str, Any], pk: list[str]) -> bool:
        return info.get("autoincrement") is True

    def estimate_rows(self, conn: Connection, name: str) -> int | None:
        value = conn.execute(
            sa.text("SELECT TABLE_ROWS FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"),
            {"t": name},
        ).scalar()
        return int(value) if value is not None else None

    def estimate_bytes(self, conn: Connection, name: str) -> int | None:
        value = conn.execute(sa.text("SELECT DATA_LENGTH FROM information_schema.TABLES "
                                     "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"),
                             {"t": name}).scalar()
        return int(value) if value is not None else None

    def next_value(self, conn: Connection, table: Table) -> int | None:
        if table.autoincrement_column is None:
            return None
        value = conn.execute(
            sa.text(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": table.name},
        ).scalar()
        return int(value) if value is not None else None

    def _reflect(self, conn: Connection, name: str) -> Table:
        """The table as :meth:`Dialect.reflect` reads it, with the true column names, each text
        column's character set and collation spelled out in its engine type, and the table's
        engine and default character set and collation in ``options``."""
        table = super()._reflect(conn, name)
        # SQLAlchemy parses SHOW CREATE TABLE and keeps a doubled backtick doubled; the
        # information schema has the true names (in the same order)
        described = conn.execute(
            sa.text(
                "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME FROM "
                "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t "
                "ORDER BY ORDINAL_POSITION"
            ),
            {"t": name},
        ).all()
        if len(described) == len(table.columns):
            fix = {c.name: str(r[0]) for c, r in zip(table.columns, described) if c.name != r[0]}
            if fix:
                table = _rename_columns(table, fix)
            table.columns = [
                _with_charset(c, r[1], r[2]) for c, r in zip(table.columns, described)
            ]
        opts = sa.inspect(conn).get_table_options(name)
        for src, dst in (
            ("mysql_engine", "engine"),
            ("mysql_default charset", "charset"),
            ("mysql_collate", "collate"),
        ):
            value = opts.get(src)
            if isinstance(value, str) and _PLAIN_WORD.match(value):
                table.options[dst] = value
        return table

    def read_table(
        self,
        conn: Connection,
        table: Table,
        batch_rows: int,
        key_range: tuple[int, int] | None = None,
        *,
        table_bytes: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        import pymysql.connections
        import pymysql.cursors

        raw = _driver_connection(conn)
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
        sql = f"SELECT {cols} FROM {self.table_sql(table.name)}{self.range_condition(table, key_range)}"
        reader = self._readers.get(raw)
        if reader is not None:
            # never PyMySQL once a reader holds this connection's snapshot: it would read
            # another snapshot (an error of the reader fails the table instead)
            yield from reader.read(sql, table, schema, batch_rows)
            return
        if not isinstance(raw, pymysql.connections.Connection):
            # a mysql+mysqldb:// URL without mysqlclient's reader: the rows are converted as
            # PyMySQL converts them, which another driver's connection cannot do
            raise DatabaseError(
                "a mysql+mysqldb:// dump reads its rows with mysqlclient's reader, which is "
                "switched off or could not connect",
                hint=f"dump from a mysql+pymysql:// URL, or unset {DISABLE_ENV}=0",
            )
        cur = raw.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute(sql)
            yield from fetch_batches(cur, table, schema, batch_rows)
        except BaseException:
            # the connection is gone (or the dump is failing): do not let PyMySQL try to read
            # the rest of the result, which raises again and prints tracebacks when collected
            result = getattr(cur, "_result", None)
            if result is not None:
                result.unbuffered_active = False
            cur._result = None
            raise
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def interrupter(self, conn: Connection) -> Callable[[], None] | None:
        # KILL QUERY from a short connection of its own: the statement (a LOAD DATA, or the
        # SELECT of PyMySQL or of this connection's mysqlclient reader) ends with error 1317
        raw = _driver_connection(conn)
        reader = self._readers.get(raw)
        sessions = [int(raw.thread_id()), *([reader.session_id()] if reader is not None else [])]

        def cancel() -> None:
            with self.engine.connect() as killer:
                for session in sessions:
                    with contextlib.suppress(sa.exc.DBAPIError):  # that session ended already
                        killer.exec_driver_sql(f"KILL QUERY {session}")

        return cancel

    # ------------------------------------------------------------------ restore
    def combined_index_ddl(self, elements: list[Any]) -> str | None:
        # InnoDB builds every index of one ALTER TABLE from one scan of the table, and two
        # ALTERs of one table cannot run at once anyway (their metadata locks conflict): the
        # benchmark's four secondary indexes took 12-13 s one by one, 10-12 s as two ALTERs
        if len(elements) < 2:
            return None
        table: str | None = None
        clauses = []
        for element in elements:
            text = " ".join(str(element.compile(dialect=self.sa_dialect)).split())
            if index := _CREATE_INDEX.fullmatch(text):
                match = index
                clause = f"ADD {index['kind'] or ''}INDEX {index['name']} ({index['cols']})"
            elif unique := _ADD_UNIQUE.fullmatch(text):
                match = unique
                clause = f"ADD CONSTRAINT {unique['name']} UNIQUE ({unique['cols']})"
            else:
                return None  # a form not recognised here: one statement each
            if table is not None and match["table"] != table:
                return None
            table = match["table"]
            clauses.append(clause)
        return f"ALTER TABLE {table} {', '.join(clauses)}"

    def prepare_restore_session(self, conn: Connection) -> None:
        for stmt in (
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4",
            "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,"
            "NO_ENGINE_SUBSTITUTION'",
        ):
            conn.exec_driver_sql(stmt)
        # the orphan check after the load (NOT EXISTS per foreign key) materializes the
        # parent's keys in a temporary table: past 16 MB (the default) it goes to disk and the
        # check of a 3M-row table takes 10 s instead of 4. Raised for this session only
        # (never lowered); the memory is used only as far as a query needs it.
        heap, tmp = conn.exec_driver_sql("SELECT @@max_heap_table_size, @@tmp_table_size").one()
        if min(int(heap), int(tmp)) < RESTORE_TEMP_TABLE_BYTES:
            conn.exec_driver_sql(f"SET SESSION max_heap_table_size = {RESTORE_TEMP_TABLE_BYTES}, "
                                 f"tmp_table_size = {RESTORE_TEMP_TABLE_BYTES}")

    def sa_type(self, column: Column, *, same_engine: bool, keyed: bool) -> Any:
        """The source's type from the same engine; where its spelling cannot be reused (ENUM
        and SET labels are never taken from an archive) the logical type, still with the
        source column's character set and collation, so that its text is stored alike."""
        chosen = super().sa_type(column, same_engine=same_engine, keyed=keyed)
        if same_engine and isinstance(chosen, mysql.CHAR | mysql.VARCHAR | mysql.LONGTEXT):
            tail = _CHARSET_TAIL.search(column.engine_type)
            if tail and tail["charset"] and tail["collation"]:
                chosen.charset = tail["charset"]
                chosen.collation = tail["collation"]
        return chosen

    def table_kwargs(self, table: Table, *, same_engine: bool) -> dict[str, Any]:
        is_mariadb = bool(getattr(self.sa_dialect, "is_mariadb", False))
        kwargs: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
        kwargs["mysql_collate"] = "utf8mb4_nopad_bin" if is_mariadb else "utf8mb4_0900_bin"
        if same_engine:
            for key, dst in (("engine", "mysql_engine"), ("charset", "mysql_charset"),
                             ("collate", "mysql_collate")):
                value = table.options.get(key)
                if value and _PLAIN_WORD.match(value):
                    kwargs[dst] = value
        return kwargs

    def type_for_logical(self, lt: LogicalType, *, keyed: bool) -> Any:
        kind = lt.kind
        if kind == "boolean":
            return mysql.BOOLEAN()
        if kind == "int8":
            return mysql.TINYINT()
        if kind == "int16":
            return mysql.SMALLINT()
        if kind == "int32":
            return mysql.INTEGER()
        if kind == "int64":
            return mysql.BIGINT()
        if kind == "uint64":
            return mysql.BIGINT(unsigned=True)
        if kind == "float32":
            return mysql.FLOAT()
        if kind == "float64":
            return mysql.DOUBLE()
        if kind == "decimal":
            p, s = lt.precision, lt.scale
            if p is None or p > 65 or (s or 0) > 30:
                return mysql.DECIMAL(65, 30)
            return mysql.DECIMAL(p, s or 0)
        if kind in ("string", "other"):
            n = lt.length
            if lt.fixed and n and n <= 255:
                return mysql.CHAR(n)
            if n is not None and n <= INLINE_MAX:
                return mysql.VARCHAR(n)
            if keyed:
                return mysql.VARCHAR(KEY_TEXT_CHARS)
            return mysql.LONGTEXT()
        if kind == "binary":
            n = lt.length
            if n is not None and n <= INLINE_MAX:
                return mysql.VARBINARY(n)
            if keyed:
                return mysql.VARBINARY(KEY_BINARY_BYTES)
            return mysql.LONGBLOB()
        if kind == "date":
            return mysql.DATE()
        if kind == "time":
            return mysql.TIME(fsp=6)
        if kind in ("datetime", "timestamptz"):
            return mysql.DATETIME(fsp=6)
        if kind == "json":
            return mysql.VARCHAR(KEY_TEXT_CHARS) if keyed else mysql.JSON()
        if kind == "uuid":
            return mysql.CHAR(36)
        return mysql.LONGTEXT()

    def load(
        self,
        conn: Connection,
        table: Table,
        batches: Iterator[pa.RecordBatch],
        temporary: bool = False,
        fresh: bool = False,
    ) -> int:
        """``LOAD DATA LOCAL INFILE`` per batch, from an escaped tab-separated block that Arrow
        kernels build (no Python object per value). LOCAL makes the server turn data errors
        into warnings, so any warning, or a row count that differs, fails the table.

        The block's text is UTF-8 and the statement says so (``CHARACTER SET utf8mb4``): the
        server converts it into each column's character set, and takes the bytes of binary
        and BIT columns as they are. (``CHARACTER SET binary`` stored the UTF-8 bytes
        unconverted: 'café' became 'cafÃ©' in a latin1 column.) A character the column's
        character set cannot hold is a warning (error 1366), so it fails the table too."""
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME, NUMERIC_PRECISION FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND DATA_TYPE = 'bit'",
                (self.own_name(table.name),),
            )
            # a BIT(n) field is loaded from its big-endian bytes (text "5" would load the
            # character's bits; a SET clause would make MariaDB ignore NO_AUTO_VALUE_ON_ZERO)
            bit_bytes = {name: (int(bits) + 7) // 8 for name, bits in cur.fetchall()}
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.table_sql(table.name)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({cols})"
        )
        rows = 0
        with tempfile.TemporaryDirectory(prefix="dbcrate-load-") as tmp, raw.cursor() as cur:
            path = os.path.join(tmp, "batch.tsv")
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                with open(path, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
                    for piece in batch_pieces(batch, LOAD_PIECE_BYTES):  # bounded memory
                        fh.write(load_data_block(piece, table, bit_bytes))
                loaded = cur.execute(sql, (path,))
                warnings = cur.execute("SHOW WARNINGS LIMIT 3") and cur.fetchall()
                if warnings or loaded != batch.num_rows:
                    raise _load_failed(table, loaded, batch.num_rows, warnings or [])
                rows += batch.num_rows
        return rows

    def set_next_value(self, conn: Connection, table: Table, column: Column, value: int) -> None:
        conn.exec_driver_sql(f"ALTER TABLE {self.table_sql(table.name)} AUTO_INCREMENT = {int(value)}")


#: MariaDB's warning for a character that the column's character set cannot hold ('?' stored)
_INCORRECT_STRING = 1366


def _load_failed(table: Table, loaded: int, expected: int, warnings: Any) -> DatabaseError:
    """The error of a LOAD DATA that warned or loaded another number of rows than sent."""
    detail = "; ".join(str(w[2]) for w in warnings)
    hint = None
    if any(int(w[1]) == _INCORRECT_STRING for w in warnings):
        # the report of a restore shows the message only: the reason is said there
        detail += (" (the column's character set cannot hold a character of the archive; "
                   "MariaDB would have stored '?')")
        hint = "give the column a character set that holds every character (utf8mb4)"
    return DatabaseError(
        f"table {table.name!r}: the server changed or rejected values while loading "
        f"({loaded} of {expected} rows): {detail}",
        hint=hint,
    )


def _with_charset(col: Column, charset: Any, collation: Any) -> Column:
    """``col`` with its character set and collation at the end of its engine type (replacing
    the ones SQLAlchemy rendered, if any). SHOW CREATE TABLE leaves out a character set or a
    collation equal to the table's default, and the ENUM/SET fallback of :meth:`MySQL.sa_type`
    needs them: spelled out, the column is recreated alike in any table. Columns without a
    character set (numbers, binary strings) and names that are not plain words are left as
    they are."""
    if not (isinstance(charset, str) and isinstance(collation, str)
            and _PLAIN_WORD.match(charset) and _PLAIN_WORD.match(collation)
            and _TEXT_TYPE.match(col.engine_type)):
        return col
    base = _CHARSET_TAIL.sub("", col.engine_type, count=1)
    return dataclasses.replace(
        col, engine_type=f"{base} CHARACTER SET {charset} COLLATE {collation}")


def _rename_columns(table: Table, fix: dict[str, str]) -> Table:
    def ren(names: list[str]) -> list[str]:
        return [fix.get(n, n) for n in names]

    return dataclasses.replace(
        table,
        columns=[dataclasses.replace(c, name=fix.get(c.name, c.name)) for c in table.columns],
        primary_key=ren(table.primary_key),
        indexes=[dataclasses.replace(i, columns=ren(i.columns)) for i in table.indexes],
        foreign_keys=[dataclasses.replace(f, columns=ren(f.columns)) for f in table.foreign_keys],
    )
