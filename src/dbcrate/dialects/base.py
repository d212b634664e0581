"""What every engine provides to dump and restore, and the reflection they share.

A :class:`Dialect` wraps one SQLAlchemy engine. Capabilities are class attributes (data, not
``isinstance`` checks). Subclasses implement the snapshot, the bulk read and the bulk write with
the engine's own fast path, and the value checks for what the engine cannot hold exactly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.sql import sqltypes

from dbcrate.dialects.engine_types import SAFE_ENGINE_TYPE, RawType
from dbcrate.dialects.naming import TableNaming
from dbcrate.dialects.native import NativeSupport
from dbcrate.dialects.reflection import (
    BulkInspector,
    quiet_reflection,
    reflect_foreign_keys,
    reflect_indexes,
    without_missing_columns,
)
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, DefaultValue, Table

_LITERAL_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
#: seconds a connection to a server may take before it is given up
CONNECT_TIMEOUT = 10


class Dialect(TableNaming):
    """One database engine, as dbcrate uses it.

    :cvar name: registry key (the SQLAlchemy dialect name).
    :cvar max_identifier_bytes: longest identifier in UTF-8 bytes (``None`` = unlimited).
    :cvar max_identifier_chars: longest identifier in characters (``None`` = unlimited).
    :cvar case_insensitive_columns: column names that differ only in case collide.
    :cvar transactional_ddl: CREATE/DROP roll back with the transaction.
    :cvar alter_add_foreign_key: foreign keys can be added after the data (ALTER TABLE).
    """

    name: ClassVar[str] = ""
    #: what the engine's driver raises when dbcrate uses it directly (bulk paths), besides
    #: SQLAlchemy's wrapper :class:`sqlalchemy.exc.DBAPIError`
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    transactional_ddl: ClassVar[bool] = True
    alter_add_foreign_key: ClassVar[bool] = True
    # what values the engine holds exactly (used by the portability preflight)
    holds_nan: ClassVar[bool] = True
    holds_infinity: ClassVar[bool] = True
    holds_negative_zero: ClassVar[bool] = True
    holds_nul_in_text: ClassVar[bool] = True
    holds_infinite_dates: ClassVar[bool] = True
    #: inclusive range of calendar years a date/timestamp may have (None = PostgreSQL's range)
    year_range: ClassVar[tuple[int, int] | None] = None
    max_integer: ClassVar[int] = 2**64 - 1
    #: (max precision, max scale) of an exact decimal; None = unlimited
    decimal_limits: ClassVar[tuple[int, int] | None] = None
    #: an exact decimal with more significant digits than this changes (None = exact)
    decimal_significant_digits: ClassVar[int | None] = None
    #: several connections can read one snapshot (parallel dump), and load at once (restore)
    parallel_dump: ClassVar[bool] = False
    parallel_restore: ClassVar[bool] = True
    #: into a database the restore made, a table's rows are loaded by a connection of the
    #: dialect's own after the table is committed (:meth:`load_committed`)
    loads_committed: ClassVar[bool] = False
    #: a dump reads the next batch in a thread while this one encodes: worth it where reading
    #: and encoding do not both hold the GIL (SQLite's ADBC reader: 16 s -> 11.5 s at scale 1;
    #: PostgreSQL 7 s -> 6 s); slower for MariaDB, whose reader holds it (docs/PERFORMANCE.md)
    read_ahead: ClassVar[bool] = False
    #: the data format of this engine's own rows (``pgcopy``): read_/load_native_rows
    native_rows: ClassVar[str | None] = None
    #: VARCHAR(n)/VARBINARY(n) lengths are enforced (values longer than n are errors)
    enforces_length: ClassVar[bool] = True
    #: a recreated table gets its primary key after its rows, as an index build (as
    #: pg_restore does): one sorted build instead of a b-tree insert and its WAL per row.
    #: False where the primary key is how rows are stored (InnoDB, SQLite rowid tables)
    primary_key_after_data: ClassVar[bool] = False
    #: the column type of the restore journal's table names (part of its primary key)
    journal_text_type: ClassVar[str] = "TEXT"
    #: how an ``INSERT ... SELECT`` meets rows whose key exists: ``on_conflict`` (``ON CONFLICT
    #: (primary key)``: another unique key's clash is an error) or ``on_duplicate_key``
    #: (MariaDB: any unique key matches, so the load checks afterwards that every archive
    #: key landed, or a row with another key would be changed unseen)
    upsert_style: ClassVar[Literal["on_conflict", "on_duplicate_key"]] = "on_conflict"
    #: SQL comparing two values exactly, NULL equal to NULL (``{a}``, ``{b}``: expressions);
    #: the stage's column comes first, so its (binary) collation decides where that matters
    same_value_sql: ClassVar[str] = "{a} IS NOT DISTINCT FROM {b}"
    #: the statement that turns foreign-key checks off for a loading session (cycles cannot be
    #: loaded in order; the orphan check runs afterwards); None: the engine checks them while
    #: loading, so parents are loaded first, one table at a time
    fk_checks_off_sql: ClassVar[str | None] = None
    #: the statement that opens a transaction
    begin_sql: ClassVar[str] = "BEGIN"
    #: the keyword of ``ALTER TABLE ... DROP <keyword> name`` for a foreign key
    drop_foreign_key_keyword: ClassVar[str] = "CONSTRAINT"
    #: the target schema is read inside one snapshot (a consistent view of every table)
    reflect_in_snapshot: ClassVar[bool] = True
    #: the engine's own schema definitions, captured at dump time and run on a target of the
    #: same engine (:mod:`.native`); ``None``: only the portable schema is carried
    native: ClassVar[NativeSupport | None] = None
    #: ``GENERATED ... AS IDENTITY`` columns are recreated as such
    identity_columns: ClassVar[bool] = False
    #: column comments are kept in the table definition
    column_comments: ClassVar[bool] = True
    #: a primary key constraint keeps its name (elsewhere the engine names it)
    named_primary_keys: ClassVar[bool] = False
    #: foreign keys and unique constraints are created with a name, and unique constraints as
    #: constraints (``ADD CONSTRAINT ... UNIQUE``) rather than unique indexes
    named_constraints: ClassVar[bool] = True
    #: a foreign key's columns must have their referenced columns' types (InnoDB: an INT
    #: cannot refer to a BIGINT); a narrower integer column is created as the wider type
    foreign_key_types_match: ClassVar[bool] = False
    #: ``DEFERRABLE`` / ``INITIALLY DEFERRED`` foreign keys
    deferrable_constraints: ClassVar[bool] = False
    #: exact decimals hold NaN and ±Infinity (PostgreSQL's numeric; SQLite keeps them as text)
    holds_decimal_specials: ClassVar[bool] = True
    #: seconds the driver may take to connect (None: the driver has no such argument)
    connect_timeout: ClassVar[int | None] = None
    #: the client character set the driver is told to use (None: the driver's own)
    client_charset: ClassVar[str | None] = None
    #: a restore keeps its connections open between units of work (a pool): connecting costs
    #: a server process each time (2,000 tables: 4,000 connections); only where a unit leaves
    #: no session state behind (what it sets is local to its transaction)
    pooled_sessions: ClassVar[bool] = False
    #: a restore loads from client-side files (LOAD DATA LOCAL), which the driver must allow
    loads_local_files: ClassVar[bool] = False
    #: the most bytes one index key may take (None: no limit dbcrate needs to plan for);
    #: with it, :meth:`key_bytes` and :meth:`narrowed` size keys before they are created
    max_key_bytes: ClassVar[int | None] = None

    # ------------------------------------------------------------------ connecting
    # class methods: they run before there is an engine (connect.open_engine builds it)
    @classmethod
    def connect_args(cls, *, read_only: bool) -> dict[str, object]:
        """The driver's connect arguments, from the capabilities above; ``read_only`` for a
        dump (no local files are loaded then)."""
        args: dict[str, object] = {}
        if cls.connect_timeout is not None:
            args["connect_timeout"] = cls.connect_timeout
        if cls.client_charset:
            args["charset"] = cls.client_charset
        if cls.loads_local_files:
            args["local_infile"] = not read_only
        return args

    @classmethod
    def connect_url(cls, url: URL, *, read_only: bool) -> URL:
        """The URL to connect with, checked first where the engine can tell a mistake early
        (a database file that does not exist).

        :raises ConnectionFailed: the URL cannot name a usable database.
        """
        return url

    @classmethod
    def database_file(cls, url: URL) -> Path | None:
        """The file the URL's database is kept in, where the engine keeps it in one file it
        creates on first connection; None otherwise (a server, an in-memory database)."""
        return None

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.sa_dialect = engine.dialect

    # ------------------------------------------------------------------ naming
    def quote(self, name: str) -> str:
        """Quote an identifier with the engine's own rules (the only way names reach SQL)."""
        return str(self.sa_dialect.identifier_preparer.quote_identifier(name))

    # ------------------------------------------------------------------ dump side
    def server_version(self, conn: Connection) -> str:
        info = self.sa_dialect.server_version_info or ()
        return ".".join(str(p) for p in info)

    def begin_snapshot(self, conn: Connection) -> None:
        """Start the one read transaction every table of a dump is read in."""
        raise NotImplementedError

    def end_snapshot(self, conn: Connection) -> None:
        self.close_readers(conn)
        conn.exec_driver_sql("ROLLBACK")

    def lock_for_reading(self, conn: Connection, tables: list[str]) -> None:
        """Lock ``tables`` in ``conn``'s snapshot before any is read (nothing by default): on
        an engine whose other sessions of the dump read too, a lock the first one holds keeps
        an ``ALTER`` from coming between them."""

    def lock_refused(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a session of the dump other than its leader refused a table's
        lock it may not wait for (``lock_for_reading``): the leader reads that table."""
        return False

    def close_readers(self, conn: Connection) -> None:
        """Close what the reads opened beside ``conn`` (a driver's own connection in its
        snapshot), not ``conn`` itself: safe after an error, with ``conn`` dead; idempotent."""

    def share_snapshot(self, leader: Connection, workers: list[Connection]) -> None:
        """Put every worker connection into the leader's snapshot (only if parallel_dump)."""
        raise NotImplementedError

    def key_ranges(self, conn: Connection, table: Table, parts: int) -> list[tuple[int, int]] | None:
        """Split a table by its single integer primary key into about ``parts`` half-open
        ranges ``[lo, hi)`` covering every row; ``None`` when it cannot be split."""
        if parts < 2 or len(table.primary_key) != 1:
            return None
        col = table.column(table.primary_key[0])
        if col.type.kind not in ("int16", "int32", "int64"):
            return None
        lo, hi = conn.exec_driver_sql(
            f"SELECT min({self.quote(col.name)}), max({self.quote(col.name)}) "
            f"FROM {self.table_sql(table.name)}"
        ).one()
        if lo is None or hi is None or hi - lo < parts:
            return None
        step = (int(hi) - int(lo) + parts) // parts
        end = int(hi) + 1
        bounds = sorted({min(int(lo) + i * step, end) for i in range(parts)} | {end})
        return list(itertools.pairwise(bounds))

    def range_condition(self, table: Table, key_range: tuple[int, int] | None) -> str:
        """``WHERE`` text selecting a key range (integers formatted here, never from input)."""
        if key_range is None:
            return ""
        pk = self.quote(table.primary_key[0])
        return f" WHERE {pk} >= {int(key_range[0])} AND {pk} < {int(key_range[1])}"

    def rows_elsewhere(self, conn: Connection) -> dict[str, str]:
        """Tables whose rows all live in other tables, with why (a partitioned table's rows
        are its partitions'): dumped with their schema and no data of their own."""
        return {}

    @classmethod
    def carried_as(cls, column: Column) -> str | None:
        """How another engine receives a column of this engine whose type it has no
        equivalent of (said in a warning), or ``None`` when its logical type says it all."""
        if column.type.kind == "other":
            return "text, holding the source's text form of each value"
        return None

    def declared_types(self, conn: Connection, name: str) -> dict[str, str]:
        """Each column's type as the table declares it, for the columns of a type SQLAlchemy
        does not know (a PostgreSQL ``point``, a MariaDB ``POINT``): their engine type."""
        return {}

    def reflect(self, conn: Connection, name: str) -> Table:
        """The portable schema of one table, read inside the snapshot."""
        with quiet_reflection():
            # an engine without schemas reads the table by its own name
            table = self._reflect(conn, name if self.has_schemas else self.own_name(name))
        table.name = name
        return table

    def reflect_many(self, conn: Connection, names: list[str]) -> list[Table]:
        """:meth:`reflect` of each of ``names``, the catalog read once for all of them
        (:class:`~dbcrate.dialects.reflection.BulkInspector`): the cost per table stays flat."""
        by_schema: dict[str | None, list[str]] = {}
        for name in names:
            schema, own = self.where(name)
            by_schema.setdefault(schema, []).append(own)
        with quiet_reflection():
            self._bulk: BulkInspector | None = BulkInspector(sa.inspect(conn), by_schema)
        try:
            return [self.reflect(conn, name) for name in names]
        finally:
            self._bulk = None

    def _reflect(self, conn: Connection, name: str) -> Table:
        insp = getattr(self, "_bulk", None) or sa.inspect(conn)
        schema, own = self.where(name)
        pk = insp.get_pk_constraint(own, schema=schema) or {}
        pk_cols = list(pk.get("constrained_columns") or [])
        columns = []
        generated: list[str] = []
        infos: list[dict[str, Any]] = [dict(i) for i in insp.get_columns(own, schema=schema)]
        if any(isinstance(i["type"], sqltypes.NullType) for i in infos):
            declared = self.declared_types(conn, name)
            for info in infos:
                if isinstance(info["type"], sqltypes.NullType) and info["name"] in declared:
                    info["declared_type"] = declared[info["name"]]
        for info in infos:
            computed = info.get("computed")
            if computed:
                # its values are the engine's to compute: not read (COPY refuses them), not
                # carried portably; the native schema recreates the column as it was
                kind = "STORED" if computed.get("persisted") else "VIRTUAL"
                generated.append(f"generated column {info['name']} (GENERATED ALWAYS AS "
                                 f"({computed.get('sqltext')}) {kind}): its values are "
                                 "recomputed, not dumped")
                continue
            columns.append(self.column_from_reflection(conn, name, info, pk_cols))
        table = Table(
            name=name,
            schema=None if own == name else schema,
            columns=columns,
            primary_key=pk_cols,
            primary_key_name=pk.get("name"),
        )
        table.skipped.extend(generated)
        reflect_indexes(insp, table, schema)
        reflect_foreign_keys(insp, table, schema, self.located if self.has_schemas else None,
                             self.default_schema)
        without_missing_columns(table)
        try:
            for ck in insp.get_check_constraints(own, schema=schema):
                table.skipped.append(f"check constraint {ck.get('name')}: {ck.get('sqltext')}")
        except NotImplementedError:
            pass
        try:
            comment = insp.get_table_comment(own, schema=schema).get("text")
            table.comment = comment or None
        except NotImplementedError:
            pass
        table.next_value = self.next_value(conn, table)
        return table

    def column_from_reflection(
        self, conn: Connection, table: str, info: dict[str, Any], pk: list[str]
    ) -> Column:
        sa_type = info["type"]
        return Column(
            name=info["name"],
            type=self.logical_type(sa_type, info),
            engine_type=info.get("declared_type") or self.engine_type_text(sa_type),
            nullable=bool(info.get("nullable", True)),
            default=self.portable_default(info.get("default")),
            autoincrement=self.is_autoincrement(info, pk),
            identity=self.identity_kind(info),
            comment=info.get("comment") or None,
        )

    def engine_type_text(self, sa_type: Any) -> str:
        try:
            return str(sa_type.compile(dialect=self.sa_dialect))
        except Exception:  # some reflected types cannot render; keep their class name
            return type(sa_type).__name__.upper()

    def logical_type(self, sa_type: Any, info: dict[str, Any]) -> LogicalType:
        """Map a reflected SQLAlchemy type to a logical type (engines refine this)."""
        return generic_logical_type(sa_type)

    def portable_default(self, text: str | None) -> DefaultValue | None:
        if text is None:
            return None
        raw = text.strip()
        while raw.startswith("(") and raw.endswith(")"):
            raw = raw[1:-1].strip()
        core = re.sub(r"::[a-z ]+(\([0-9, ]+\))?$", "", raw, flags=re.I)
        if _LITERAL_NUMBER.match(core):
            return DefaultValue("literal", value=core)
        if len(core) >= 2 and core[0] == core[-1] == "'" and "'" not in core[1:-1].replace("''", ""):
            return DefaultValue("literal", value=core[1:-1].replace("''", "'"))
        if core.upper() in ("CURRENT_TIMESTAMP", "NOW()", "CURRENT_TIMESTAMP()", "LOCALTIMESTAMP"):
            return DefaultValue("current_timestamp")
        if core.upper() in ("NULL",):
            return None
        return DefaultValue("expression", sql=text)

    def is_autoincrement(self, info: dict[str, Any], pk: list[str]) -> bool:
        return False

    def identity_kind(self, info: dict[str, Any]) -> str | None:
        identity = info.get("identity")
        if identity:
            return "always" if identity.get("always") else "by default"
        return None

    def inspect_target(self, conn: Connection) -> None:
        """Learn the target's server settings that change how names compare (before a restore
        plans anything)."""

    def estimate_rows(self, conn: Connection, name: str) -> int | None:
        """The engine's cheap estimate of a table's row count (for plans), or None; here an
        exact count (engines with statistics override it)."""
        value = conn.exec_driver_sql(f"SELECT count(*) FROM {self.table_sql(name)}").scalar()
        return int(value) if value is not None else None

    def estimate_sizes(self, conn: Connection,
                       names: list[str]) -> dict[str, tuple[int | None, int | None]]:
        """Per table, :meth:`estimate_rows` and :meth:`estimate_bytes` (an engine answers for
        every table in one query where it can: the cost per table stays flat); an estimate
        that cannot be had is ``None``."""
        out: dict[str, tuple[int | None, int | None]] = {}
        for name in names:
            try:
                rows = self.estimate_rows(conn, name)
            except sa.exc.DBAPIError:
                rows = None
            out[name] = (rows, self.estimate_bytes(conn, name))
        return out

    def estimate_bytes(self, conn: Connection, name: str) -> int | None:
        """The engine's cheap estimate of a table's data size in bytes (the weight of its rows
        in a dump's overall progress), or None: no estimate here."""
        return None

    def next_value(self, conn: Connection, table: Table) -> int | None:
        return None

    def read_table(
        self,
        conn: Connection,
        table: Table,
        batch_rows: int,
        key_range: tuple[int, int] | None = None,
        *,
        table_bytes: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table's rows (those in ``key_range`` if given) as record batches in the
        archive's encoding. ``table_bytes``, the plan's estimate of the table's size, lets a
        dialect skip a check that cannot find anything in a small table."""
        raise NotImplementedError

    def read_native_rows(self, conn: Connection, table: Table,
                         key_range: tuple[int, int] | None = None, *,
                         table_bytes: int | None = None) -> Iterator[tuple[Any, int]]:
        """The rows (in ``key_range``) in :attr:`native_rows`: pieces of text and how many
        rows each ends (a piece that ends no row counts 0: a very large row comes in several;
        ``table_bytes`` as for :meth:`read_table`)."""
        raise NotImplementedError

    def failure_hint(self, exc: BaseException) -> str | None:
        """The server's advice on a failure where its driver carries one (a ``HINT``)."""
        return None

    def interrupter(self, conn: Connection) -> Callable[[], None] | None:
        """A function that cancels the statement running on ``conn`` when called from another
        thread (a no-op between statements), obtained before the statement runs; None when
        the engine has none (Ctrl-C then waits for the batch being read or written)."""
        return None

    # ------------------------------------------------------------------ restore side
    def combined_index_ddl(self, elements: list[Any]) -> str | None:
        """One statement that builds all of one table's ``elements`` (``CreateIndex`` /
        ``AddConstraint``) in one pass over the table, or None to run them one by one."""
        return None

    def prepare_restore_session(self, conn: Connection) -> None:
        """Session settings for loading (time zone, strictness ...)."""

    def sa_type(self, column: Column, *, same_engine: bool, keyed: bool) -> Any:
        """The SQLAlchemy type to create ``column`` with in this engine."""
        if same_engine and SAFE_ENGINE_TYPE.match(column.engine_type):
            return RawType(column.engine_type)
        return self.type_for_logical(column.type, keyed=keyed)

    def type_for_logical(self, lt: LogicalType, *, keyed: bool) -> Any:
        raise NotImplementedError

    def key_bytes(self, sa_type: Any) -> int:
        """The bytes a column of ``sa_type`` takes in an index key (0: not known)."""
        return 0

    def narrowed(self, sa_type: Any, max_bytes: int) -> Any | None:
        """``sa_type`` shortened to take at most ``max_bytes`` in a key, or None."""
        return None

    def prefix_index_kwargs(self, prefixes: dict[str, int]) -> dict[str, Any]:
        """``sa.Index`` arguments that index only the first ``prefixes[column]`` characters
        (bytes, of a binary column) of each of those columns."""
        return {}

    def table_kwargs(self, table: Table, *, same_engine: bool) -> dict[str, Any]:
        return {}

    def load(
        self,
        conn: Connection,
        table: Table,
        batches: Iterator[pa.RecordBatch],
        temporary: bool = False,
        fresh: bool = False,
    ) -> int:
        """Append all batches to the table (a session-temporary one if ``temporary``); returns
        the row count. ``fresh``: the table was created empty in this connection's current
        transaction, so no other session can see it before the commit (PostgreSQL writes
        its rows frozen: ``COPY ... FREEZE``)."""
        raise NotImplementedError

    def load_committed(self, table: Table,
                       batches: Iterator[pa.RecordBatch]) -> tuple[int, Iterator[pa.RecordBatch]]:
        """Append the batches to the empty, committed table by a connection of the dialect's
        own, in a transaction of its own that is committed when this returns (and rolled back,
        the table left empty, when it raises). Only for a target no one else uses while the
        restore runs (a database file it made), one writer at a time.

        Returns ``(rows committed, the batches not loaded)``: all of them, none committed, where
        this dialect (or the first batch's values) cannot be loaded this way; the caller then
        loads them with :meth:`load` in its unit of work."""
        return 0, batches

    def load_native_rows(self, conn: Connection, table: Table, pieces: Iterator[Any],
                         fresh: bool = False) -> int:
        """Load pieces of rows in :attr:`native_rows` as they are (``fresh``: see load)."""
        raise NotImplementedError

    def make_fresh(self, conn: Connection, name: str) -> bool:
        """Make the empty table ``name`` (created by an earlier transaction: a native-schema
        restore's pre-data) count as created in this one, so that :meth:`load` may take it as
        ``fresh``; whether it does."""
        return False

    def merge_sql(self, table: str, stage: str, columns: list[str], key: list[str],
                  policy: Literal["skip", "update"]) -> str:
        """One ``INSERT ... SELECT`` from ``stage`` into ``table`` where a row whose ``key``
        exists is kept (``skip``) or gets the stage's values (``update``)."""
        q = self.quote
        cols = ", ".join(q(c) for c in columns)
        others = [c for c in columns if c not in key]
        insert = f"INSERT INTO {self.table_sql(table)} ({cols}) SELECT {cols} FROM {q(stage)}"
        if self.upsert_style == "on_duplicate_key":
            # qualified with the table's name: unqualified, a column of the SELECT's table
            # is ambiguous (error 1052), e.g. in a table whose columns are all key columns
            t = self.table_sql(table)
            if policy == "update" and others:
                sets = ", ".join(f"{t}.{q(c)} = VALUES({q(c)})" for c in others)
            else:  # a no-op assignment: the row is kept (INSERT IGNORE would also hide errors)
                sets = f"{t}.{q(key[0])} = {t}.{q(key[0])}"
            return f"{insert} ON DUPLICATE KEY UPDATE {sets}"
        if policy == "skip" or not others:
            action = "DO NOTHING"
        else:
            action = "DO UPDATE SET " + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in others)
        # WHERE true: SQLite's parser otherwise takes ON CONFLICT for a join's ON
        return f"{insert} WHERE true ON CONFLICT ({', '.join(q(c) for c in key)}) {action}"

    def set_next_value(self, conn: Connection, table: Table, column: Column, value: int) -> None:
        """Make the next INSERT without a value for ``column`` get at least ``value``."""

    def value_problems(self, table: Table, batch: pa.RecordBatch) -> list[tuple[str, str, list[int]]]:
        """Values this engine cannot hold exactly: ``(column, problem, row indexes)``."""
        return []

    def three_byte_utf8_columns(self, conn: Connection, table: str) -> set[str]:
        """Columns that hold only characters of up to 3 UTF-8 bytes (MariaDB utf8mb3)."""
        return set()

    def table_exists(self, conn: Connection, name: str) -> bool:
        schema, own = self.where(name)
        return bool(sa.inspect(conn).has_table(own, schema=schema))


def generic_logical_type(t: Any) -> LogicalType:
    """Logical type of a SQLAlchemy type, engine-independent part."""
    if isinstance(t, sqltypes.Boolean):
        return LogicalType("boolean")
    if isinstance(t, sqltypes.Integer):
        if isinstance(t, sqltypes.SmallInteger):
            return LogicalType("int16")
        if isinstance(t, sqltypes.BigInteger):
            return LogicalType("int64")
        return LogicalType("int32")
    if isinstance(t, sqltypes.Float):
        return LogicalType("float64")
    if isinstance(t, sqltypes.Numeric):
        return LogicalType("decimal", precision=t.precision, scale=t.scale)
    if isinstance(t, sqltypes.Enum):
        return LogicalType("string", length=t.length)
    if isinstance(t, sqltypes.String):
        fixed = isinstance(t, sqltypes.CHAR | sqltypes.NCHAR)
        return LogicalType("string", length=t.length, fixed=fixed)
    if isinstance(t, sqltypes._Binary):
        return LogicalType("binary", length=getattr(t, "length", None))
    if isinstance(t, sqltypes.DateTime):
        return LogicalType("timestamptz" if t.timezone else "datetime")
    if isinstance(t, sqltypes.Date):
        return LogicalType("date")
    if isinstance(t, sqltypes.Time):
        return LogicalType("other" if t.timezone else "time")
    if isinstance(t, sqltypes.JSON):
        return LogicalType("json")
    if isinstance(t, sqltypes.Uuid):
        return LogicalType("uuid")
    return LogicalType("other")

