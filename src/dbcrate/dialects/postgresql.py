"""PostgreSQL through psycopg 3: COPY ... TO/FROM STDOUT in CSV, parsed and written by Arrow.

Why CSV COPY and not a cursor: COPY is the server's bulk path, and Arrow's C++ CSV reader and
writer convert it without a Python object per value. Text forms that Arrow cannot parse
(``infinity`` dates, BC dates, bytea hex) take an exact fallback in :mod:`dbcrate.values`.
Every value is carried exactly: floats print with ``extra_float_digits=3``, timestamps in UTC.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from psycopg.copy import LibpqWriter
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Connection
from sqlalchemy.sql import sqltypes

from dbcrate.dialects import pg_arrow, pg_catalog, pg_csv, pg_large, pgbinary
from dbcrate.dialects.base import CONNECT_TIMEOUT, Dialect, generic_logical_type
from dbcrate.dialects.native import NativeSupport
from dbcrate.dialects.native_pg_restore import PgNative
from dbcrate.dialects.pgcopy import copy_out_blocks
from dbcrate.dialects.pieces import batch_pieces
from dbcrate.errors import SourceValueError
from dbcrate.model.logical import (
    DATE_NEG_INFINITY,
    DATE_POS_INFINITY,
    TS_NEG_INFINITY,
    TS_POS_INFINITY,
    LogicalType,
)
from dbcrate.model.schema import Column, Table
from dbcrate.model.selection import select_names

#: COPY text parsed at once by a dump: 2 MB, not 8, took 40-70 MB off the scale-1 dump's peak
#: RSS with read-ahead, at the same speed (docs/PERFORMANCE.md, "Session 5")
CSV_BLOCK_BYTES = 2 * 1024 * 1024

#: maintenance_work_mem of a restore session (bytes), for the index builds after the load
RESTORE_MAINTENANCE_WORK_MEM = 256 * 1024 * 1024


class PostgreSQL(Dialect):
    name: ClassVar[str] = "postgresql"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error,)
    max_identifier_bytes: ClassVar[int | None] = 63
    default_schema: ClassVar[str | None] = "public"
    has_schemas: ClassVar[bool] = True
    pooled_sessions: ClassVar[bool] = True
    native: ClassVar[NativeSupport | None] = PgNative("public")
    holds_nul_in_text: ClassVar[bool] = False
    identity_columns: ClassVar[bool] = True
    named_primary_keys: ClassVar[bool] = True
    deferrable_constraints: ClassVar[bool] = True
    connect_timeout: ClassVar[int | None] = CONNECT_TIMEOUT
    # compared as text: json, xml and point have no equality operator, and a column's text
    # form is exact (both sides have the same type and typmod, in one session)
    same_value_sql: ClassVar[str] = "{a}::text IS NOT DISTINCT FROM {b}::text"
    parallel_dump: ClassVar[bool] = True
    primary_key_after_data: ClassVar[bool] = True
    #: the next COPY block is read (libpq, a Python loop per row) while this one is parsed
    #: and encoded (Arrow, without the GIL): scale-1 dump 6.9-7.4 s -> 6.0-6.3 s
    read_ahead: ClassVar[bool] = True
    native_rows: ClassVar[str | None] = "pgcopy"
    #: load with binary COPY where every column has an encoder (:mod:`.pgbinary`); the
    #: environment variable DBCRATE_PG_BINARY_COPY=0 keeps the CSV path (for comparisons)
    binary_copy: bool = os.environ.get("DBCRATE_PG_BINARY_COPY", "1") != "0"
    #: dumps read tables of at least this many bytes (or of unknown size) through ADBC
    #: (:mod:`.pg_arrow`); smaller ones, where a query's set-up costs more than the parse it
    #: saves (0.3 ms a table), through COPY CSV. None reads every table through COPY CSV.
    #: DBCRATE_PG_ADBC=0 sets None, =all sets 0 (for comparisons and the tests)
    arrow_reader_min_bytes: int | None = {"0": None, "all": 0}.get(
        os.environ.get("DBCRATE_PG_ADBC", ""), 1024 * 1024)

    # ------------------------------------------------------------------ dump
    def begin_snapshot(self, conn: Connection) -> None:
        self._begin(conn)
        # exported at once, at the top level (the server exports none from the savepoint of a
        # tolerated table's read): the -j workers and the ADBC readers join it. A server that
        # exports none (a pooler, a replica of another make) is read by this connection alone
        try:
            snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
        except sa.exc.DBAPIError:
            conn.exec_driver_sql("ROLLBACK")
            self._begin(conn)
            return
        pg_arrow.remember_snapshot(conn, snapshot)

    def _begin(self, conn: Connection) -> None:
        for stmt in (*pg_arrow.SESSION, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"):
            conn.exec_driver_sql(stmt)

    def close_readers(self, conn: Connection) -> None:
        pg_arrow.close_reader(conn)

    def server_version(self, conn: Connection) -> str:
        return str(conn.exec_driver_sql("SHOW server_version").scalar())

    def share_snapshot(self, leader: Connection, workers: list[Connection]) -> None:
        snapshot = pg_arrow.snapshot_of(leader) or str(  # (the server's error if it has none)
            leader.exec_driver_sql("SELECT pg_export_snapshot()").scalar())
        for conn in workers:
            self._begin(conn)
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            pg_arrow.remember_snapshot(conn, snapshot)
            pg_arrow.mark_side(conn)

    def lock_for_reading(self, conn: Connection, tables: list[str]) -> None:
        # as pg_dump: the leader locks every table it can read at once; the other sessions
        # (-j workers, ADBC readers) wait for no table lock (pg_arrow.SIDE_LOCK), since an
        # ALTER queued behind the leader's lock waits for the dump to end
        refs = [self.table_sql(name) for name in tables]
        for i in range(0, len(refs), 500):
            readable = [str(r) for r in conn.exec_driver_sql(  # (to_regclass: one dropped
                "SELECT t FROM unnest(%(t)s::text[]) t "       # since the snapshot is left out)
                "WHERE has_table_privilege(to_regclass(t), 'SELECT')",
                {"t": refs[i:i + 500]}).scalars()]  # (a table it cannot read fails its read)
            if readable:
                conn.exec_driver_sql(f"LOCK TABLE ONLY {', '.join(readable)} IN ACCESS SHARE MODE")

    def engine_type_text(self, sa_type: Any) -> str:
        if isinstance(sa_type, pg.ENUM | pg.DOMAIN):
            # a user-defined type must exist before a table can use it; carry it as text
            return f"{type(sa_type).__name__.lower()}:{sa_type.name}"
        return super().engine_type_text(sa_type)

    def declared_types(self, conn: Connection, name: str) -> dict[str, str]:
        return pg_catalog.declared_types(conn, self.table_sql(name))

    def column_from_reflection(self, conn: Connection, table: str, info: dict[str, Any],
                               pk: list[str]) -> Column:
        if isinstance(info["type"], pg.DOMAIN):
            info = {**info, "base_type": pg_catalog.domain_base(conn, self.quote, info["type"])}
        return super().column_from_reflection(conn, table, info, pk)

    def logical_type(self, sa_type: Any, info: dict[str, Any]) -> LogicalType:
        if isinstance(sa_type, sqltypes.REAL):
            return LogicalType("float32")
        if isinstance(sa_type, pg.DOMAIN):
            # a domain's values are its base type's: carried as that (its CHECK is the native
            # schema's; elsewhere it is said not to be carried)
            return self.logical_type(info.get("base_type", sa_type.data_type), {})
        if isinstance(sa_type, pg.ENUM | pg.MONEY | pg.INTERVAL):
            return LogicalType("other")
        if isinstance(sa_type, sqltypes.ARRAY):
            return LogicalType("other")
        return generic_logical_type(sa_type)

    def is_autoincrement(self, info: dict[str, Any], pk: list[str]) -> bool:
        default = info.get("default") or ""
        return bool(info.get("identity")) or default.startswith("nextval(")

    def portable_default(self, text: str | None) -> Any:
        if text and text.startswith("nextval("):
            return None  # the sequence is carried as autoincrement + next_value
        return super().portable_default(text)

    def _sequence_of(self, conn: Connection, table: str, column: str) -> str | None:
        qualified = self.table_sql(table)
        return conn.execute(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": qualified, "c": column}
        ).scalar()

    def estimate_rows(self, conn: Connection, name: str) -> int | None:
        value = conn.execute(
            sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
            {"t": self.table_sql(name)},
        ).scalar()
        return int(value) if value is not None and int(value) >= 0 else None  # -1: never analyzed

    def estimate_sizes(self, conn: Connection,
                       names: list[str]) -> dict[str, tuple[int | None, int | None]]:
        found = conn.exec_driver_sql(
            "SELECT u.i, c.reltuples::bigint, pg_catalog.pg_table_size(c.oid) "
            "FROM unnest(%(t)s::text[]) WITH ORDINALITY AS u(t, i) "
            "LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(u.t)",
            {"t": [self.table_sql(n) for n in names]}).all()
        # reltuples -1: never analyzed
        return {names[int(i) - 1]: (int(rows) if rows is not None and rows >= 0 else None,
                                    None if size is None else int(size))
                for i, rows, size in found}

    def estimate_bytes(self, conn: Connection, name: str) -> int | None:
        # the heap and its TOAST, without indexes: what a dump reads
        value = conn.execute(
            sa.text("SELECT pg_table_size(to_regclass(:t))"),
            {"t": self.table_sql(name)},
        ).scalar()
        return int(value) if value is not None else None

    def next_value(self, conn: Connection, table: Table) -> int | None:
        col = table.autoincrement_column
        if col is None:
            return None
        seq = self._sequence_of(conn, table.name, col.name)
        if not seq:
            return None
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
        return int(last) + 1 if called else int(last)

    def read_table(
        self,
        conn: Connection,
        table: Table,
        batch_rows: int,
        key_range: tuple[int, int] | None = None,
        *,
        table_bytes: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        raw = conn.connection.driver_connection
        assert raw is not None
        target = self.table_sql(table.name)
        direct_read = self.arrow_reader_min_bytes is not None and (
            table_bytes is None or table_bytes >= self.arrow_reader_min_bytes)
        lock = self._side_lock(conn, target, table_bytes, direct_read)
        large = self._large_rows(raw, table, key_range, table_bytes)
        names = [f"c{i}" for i in range(len(table.columns))]
        sql = self._copy_out_sql(table, key_range, " WITH (FORMAT csv)", large)
        schema = pa.schema([pa.field(c.name, c.type.arrow) for c in table.columns])
        read_options = pacsv.ReadOptions(
            column_names=names, block_size=4 * CSV_BLOCK_BYTES, use_threads=False
        )
        parse_options = pacsv.ParseOptions(newlines_in_values=True)
        convert_options = pg_csv.convert_options(names, table)

        def convert(handed: list[bytes | bytearray]) -> Iterator[pa.RecordBatch]:
            block = handed.pop()
            options = read_options
            if len(block) >= read_options.block_size:  # one row larger than a block
                options = pacsv.ReadOptions(column_names=names, block_size=len(block) + 1,
                                            use_threads=False)
            parsed = pacsv.read_csv(
                pa.py_buffer(block),  # a fresh block each time, never mutated after
                read_options=options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            del block  # the parsed arrays are copies: a 100 MB value is not held twice
            batches = parsed.to_batches()
            del parsed
            while batches:  # none held while the one converted from it is written
                yield pg_csv.from_csv_batch(batches.pop(0), table, schema)

        def copied(copy_sql: str, first: str | None = None) -> Iterator[pa.RecordBatch]:
            # Each COPY message is exactly one row, so blocks of whole messages are valid CSV
            # on their own; parsing bounded blocks keeps memory flat (Arrow's streaming reader
            # over a Python file object does not).
            for handed in copy_out_blocks(raw, copy_sql, CSV_BLOCK_BYTES, first=first):
                yield from convert(handed)

        direct = None
        if direct_read:
            where = pg_large.without_rows(self.range_condition(table, key_range), large)
            direct = pg_arrow.read_batches(conn, table, target, self.quote, where)
        yield from copied(sql, lock) if direct is None else direct
        # rows with a very large value: the rest of the row by COPY, the value in slices
        yield from pg_large.read_large_rows(raw, table, target, self.quote, large, schema,
                                            copied)

    def read_native_rows(self, conn: Connection, table: Table,
                         key_range: tuple[int, int] | None = None, *,
                         table_bytes: int | None = None) -> Iterator[tuple[Any, int]]:
        # COPY's text format, as pg_dump keeps it: what the server writes, stored as it is
        raw = conn.connection.driver_connection
        assert raw is not None
        lock = self._side_lock(conn, self.table_sql(table.name), table_bytes, False)
        large = self._large_rows(raw, table, key_range, table_bytes)
        sql = self._copy_out_sql(table, key_range, "", large)
        counts: list[int] = []
        for handed in copy_out_blocks(raw, sql, CSV_BLOCK_BYTES, counts, first=lock):
            yield handed.pop(), counts.pop()

        def one_row(copy_sql: str) -> bytes:
            return b"".join(h.pop() for h in copy_out_blocks(raw, copy_sql, CSV_BLOCK_BYTES))

        # rows with a very large value: the rest of the row by COPY, the value in slices
        yield from pg_large.copy_text_of_large_rows(raw, table, self.table_sql(table.name),
                                                    self.quote, large, one_row)

    @staticmethod
    def _side_lock(conn: Connection, target: str, table_bytes: int | None,
                   direct_read: bool) -> str | None:
        """A side session's lock of ``target`` (pg_arrow.SIDE_LOCK), taken now if a query
        reads the table before its COPY (a search for large rows, the ADBC reader's); else
        the statement, for the COPY to send first in its own message (None on the leader)."""
        lock = pg_arrow.side_lock(conn, target)
        if lock is not None and (direct_read or not _small(table_bytes)):
            conn.exec_driver_sql(lock)
            return None
        return lock

    def _large_rows(self, raw: Any, table: Table, key_range: tuple[int, int] | None,
                    table_bytes: int | None) -> list[pg_large.LargeRow]:
        """The rows (in ``key_range``) holding a value to read in slices; none is looked for
        in a table whose ``table_bytes`` (heap and TOAST) cannot hold such a value."""
        if _small(table_bytes):
            return []
        return pg_large.find_large_rows(raw, table, self.table_sql(table.name), self.quote,
                                        self.range_condition(table, key_range))

    def _copy_out_sql(self, table: Table, key_range: tuple[int, int] | None, options: str,
                      leave_out: Sequence[pg_large.LargeRow] = ()) -> str:
        """``COPY ... TO STDOUT`` of the table's columns (the rows in ``key_range``, but not
        those of ``leave_out``)."""
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        target = self.table_sql(table.name)
        where = pg_large.without_rows(self.range_condition(table, key_range), leave_out)
        if not where:
            return f"COPY {target} ({cols}) TO STDOUT{options}"
        # ONLY: as COPY of a table, not the rows of tables inheriting from it
        return f"COPY (SELECT {cols} FROM ONLY {target}{where}) TO STDOUT{options}"

    def lock_refused(self, exc: BaseException) -> bool:
        # LOCK ... NOWAIT of a side session (pg_arrow.SIDE_LOCK): lock_not_available
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) == "55P03"

    def failure_hint(self, exc: BaseException) -> str | None:
        if getattr(getattr(exc, "orig", exc), "sqlstate", None) == "55P03":
            return pg_arrow.LOCK_REFUSED_HINT
        diag = getattr(getattr(exc, "orig", exc), "diag", None)
        hint = getattr(diag, "message_hint", None)
        return str(hint) if hint else None

    def interrupter(self, conn: Connection) -> Callable[[], None] | None:
        # libpq's cancel request on a connection of its own: the COPY ends with QueryCanceled
        # (and the ADBC reader's query, if one is reading for this connection)
        raw = conn.connection.driver_connection
        if raw is None:
            return None

        def cancel() -> None:
            pg_arrow.cancel_reader(conn)
            raw.cancel_safe(timeout=2.0)
        return cancel

    # ------------------------------------------------------------------ restore
    def prepare_restore_session(self, conn: Connection) -> None:
        # one round trip (a statement list without parameters), at the start of every unit:
        # a pooled connection comes back with whatever the last unit's native objects set
        # (pg_dump's own SETs are session-wide), which RESET ALL clears. Index builds after
        # the load sort whole tables: the default maintenance_work_mem (64 MB) spills big
        # ones to disk; raised for this session only (never lowered), like pg_restore users
        # are told to do by hand; -j N sessions use at most N times this on the server
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute(
                "RESET ALL; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; "
                "SET IntervalStyle = 'iso_8601'; SET client_encoding = 'UTF8'; "
                "SELECT pg_catalog.set_config('maintenance_work_mem', CASE WHEN "
                "pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) "
                f"< {RESTORE_MAINTENANCE_WORK_MEM} THEN '{RESTORE_MAINTENANCE_WORK_MEM // 1024}kB' "
                "ELSE pg_catalog.current_setting('maintenance_work_mem') END, false)")

    def sa_type(self, column: Column, *, same_engine: bool, keyed: bool) -> Any:
        return super().sa_type(column, same_engine=same_engine, keyed=keyed)

    def type_for_logical(self, lt: LogicalType, *, keyed: bool) -> Any:
        kind = lt.kind
        if kind == "boolean":
            return sa.Boolean()
        if kind in ("int8", "int16"):
            return sa.SmallInteger()
        if kind == "int32":
            return sa.Integer()
        if kind == "int64":
            return sa.BigInteger()
        if kind == "uint64":
            return sa.Numeric(20, 0)
        if kind == "float32":
            return pg.REAL()
        if kind == "float64":
            return pg.DOUBLE_PRECISION()
        if kind == "decimal":
            return sa.Numeric(lt.precision, lt.scale) if lt.precision else pg.NUMERIC()
        if kind == "string":
            if lt.fixed and lt.length:
                return sa.CHAR(lt.length)
            return sa.String(lt.length) if lt.length else sa.Text()
        if kind == "binary":
            return pg.BYTEA()
        if kind == "date":
            return sa.Date()
        if kind == "time":
            return pg.TIME()
        if kind == "datetime":
            return pg.TIMESTAMP()
        if kind == "timestamptz":
            return pg.TIMESTAMP(timezone=True)
        if kind == "json":
            return pg.JSON()
        if kind == "uuid":
            return pg.UUID()
        return sa.Text()

    def chosen_schemas(self, conn: Connection, include: Sequence[str],
                       exclude: Sequence[str]) -> list[str]:
        # the schemas pg_dump dumps by default: not the catalogs, not an extension's own
        names = [str(n) for n in conn.exec_driver_sql(
            "SELECT n.nspname FROM pg_catalog.pg_namespace n "
            "WHERE n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema' "
            "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.objid = n.oid "
            "AND d.classid = 'pg_catalog.pg_namespace'::regclass AND d.deptype = 'e') "
            "ORDER BY n.nspname").scalars()]
        return select_names(names, list(include), list(exclude), "the source", "schema")

    def list_tables(self, conn: Connection, schemas: Sequence[str] = ()) -> list[str]:
        # one catalog query for every schema (ordinary and partitioned tables, as
        # SQLAlchemy's get_table_names)
        rows = conn.exec_driver_sql(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%(s)s) ORDER BY 1, 2",
            {"s": list(schemas) or [self.default_schema]}).all()
        return sorted(self.located(str(schema), str(name)) for schema, name in rows)

    def rows_elsewhere(self, conn: Connection) -> dict[str, str]:
        rows = conn.exec_driver_sql(
            "SELECT n.nspname, c.relname, (SELECT string_agg(k.relname, ', ' ORDER BY k.relname) "
            "FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid "
            "WHERE i.inhparent = c.oid) FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p'"
            ).all()
        return {self.located(str(schema), str(name)):
                f"partitioned table: its rows are dumped with its partitions ({parts or 'none'})"
                for schema, name, parts in rows}

    def make_fresh(self, conn: Connection, name: str) -> bool:
        # TRUNCATE gives the (empty) table a new file in this transaction: COPY ... FREEZE
        # then writes its rows frozen, as for a table created here (no later VACUUM rewrite)
        conn.exec_driver_sql(f"TRUNCATE ONLY {self.table_sql(name)}")
        return True

    def load(
        self,
        conn: Connection,
        table: Table,
        batches: Iterator[pa.RecordBatch],
        temporary: bool = False,
        fresh: bool = False,
    ) -> int:
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        # temporary tables live in pg_temp, found through the search path
        target = self.quote(table.name) if temporary else self.table_sql(table.name)
        first = next(batches, None)
        encoders = self._binary_encoders(raw, target, table, first) if first is not None else None
        rest = itertools.chain([first] if first is not None else [], batches)
        fmt = "binary" if encoders is not None else "csv"
        # FREEZE: rows of a table created in this transaction are written as already visible
        # to all, so the index builds and the first VACUUM do not rewrite every page
        # (order_items at scale 1: COPY 1.21 -> 1.02 s, its primary key 0.86 -> 0.50 s)
        freeze = ", FREEZE" if fresh and not temporary else ""
        sql = f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT {fmt}{freeze})"
        rows = 0
        # the synchronous writer: psycopg's default queues writes for a background thread
        # without bound, so memory would grow whenever the server is slower than we are
        with raw.cursor() as cur, cur.copy(sql, writer=LibpqWriter(cur)) as copy:
            if encoders is not None:
                copy.write(pgbinary.SIGNATURE)
                for batch in rest:
                    for piece in batch_pieces(batch, BINARY_PIECE_BYTES):
                        try:
                            if piece.num_rows == 1 and piece.nbytes > BINARY_PIECE_BYTES:
                                for part in pgbinary.encode_row(piece, encoders):  # a huge row
                                    copy.write(part)
                                continue
                            copy.write(pgbinary.encode_batch(piece, encoders))
                        except (pgbinary.EncodeError, pa.ArrowException) as exc:
                            raise SourceValueError(
                                f"table {table.name!r}: a value cannot be loaded ({exc})",
                                hint="check the archive with `dbcrate verify`; exclude the "
                                "table with -T to restore the rest") from None
                    rows += batch.num_rows
                copy.write(pgbinary.TRAILER)
            else:
                options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                for batch in rest:
                    arrays = [pg_csv.to_pg_text(batch.column(i), c) for i, c in enumerate(table.columns)]
                    out = pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])
                    sink = io.BytesIO()
                    pacsv.write_csv(out, sink, write_options=options)
                    copy.write(sink.getbuffer())
                    rows += batch.num_rows
        return rows

    def load_native_rows(self, conn: Connection, table: Table, pieces: Iterator[Any],
                         fresh: bool = False) -> int:
        raw = conn.connection.driver_connection
        assert raw is not None
        cols = ", ".join(self.quote(c.name) for c in table.columns)
        freeze = " WITH (FREEZE)" if fresh else ""
        sql = f"COPY {self.table_sql(table.name)} ({cols}) FROM STDIN{freeze}"
        with raw.cursor() as cur:
            with cur.copy(sql, writer=LibpqWriter(cur)) as copy:
                for piece in pieces:
                    copy.write(piece.data)
            return int(cur.rowcount)

    def _binary_encoders(self, raw: Any, target: str, table: Table,
                         first: pa.RecordBatch) -> list[pgbinary.FieldEncoder] | None:
        """Binary COPY encoders for the batches (planned from the first one and the target
        table's column types), or ``None`` to load through CSV."""
        if not self.binary_copy:
            return None
        with raw.cursor() as cur:
            cur.execute(_RECEIVES_SQL, (target,))
            receives = dict(cur.fetchall())
        return pgbinary.plan_encoders(list(first.schema.types),
                                      [receives.get(c.name) for c in table.columns])

    def set_next_value(self, conn: Connection, table: Table, column: Column, value: int) -> None:
        seq = self._sequence_of(conn, table.name, column.name)
        if seq:
            conn.execute(sa.text("SELECT setval(:s, :v, false)"), {"s": seq, "v": value})


def _small(table_bytes: int | None) -> bool:
    """Whether a table of ``table_bytes`` (heap and TOAST) is too small to hold a value read
    in slices (pg_large): none is looked for in it."""
    return table_bytes is not None and table_bytes < pg_large.CHECKED_TOAST_BYTES


# the receive function of each column's type (a domain's: its base type's), by column name
_RECEIVES_SQL = """
SELECT a.attname, coalesce(b.typreceive, t.typreceive)::text
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""
#: bytes of Arrow data encoded at once (the encoded rows are about as large)
BINARY_PIECE_BYTES = 4 * 1024 * 1024


# the sentinels are part of the archive encoding; keep the names referenced for readers
__all__ = ["DATE_NEG_INFINITY", "DATE_POS_INFINITY", "TS_NEG_INFINITY", "TS_POS_INFINITY",
           "PostgreSQL"]
