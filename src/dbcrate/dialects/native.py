"""What a dialect does with its engine's native schema: capture it at dump time, check it, and
run it on a target of the same engine (docs/RESTORE.md, "The native schema").

A dialect that supports it sets :attr:`dbcrate.dialects.base.Dialect.native` to an instance
of a :class:`NativeSupport` subclass; the dump and the restore only talk to this interface,
never to an engine by name. Everything a restore runs from an archive goes through
:meth:`NativeSupport.check` first (all objects, before the first statement runs), then
:meth:`NativeSupport.statements` (which drops owner and privilege statements on request and
marks them optional: a role missing on the target is a warning, not a failure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.native import NativeObject, NativeSchema


class UnsafeNativeSql(ArchiveCorrupt):
    """An archive's native-schema SQL is not a plain definition of the object it claims to be
    (each engine's guard: the server's own grammar for PostgreSQL, pglast). Nothing has been
    run when it is raised."""


@dataclass(frozen=True)
class Statement:
    """One statement of an object's SQL. ``optional``: an owner or privilege statement, run in
    a savepoint of its own; when it fails (a role the target lacks) the restore warns."""

    sql: str
    optional: bool = False


#: a table as ``(schema, its own name)``; the schema is None on an engine without schemas
TableRef = tuple[str | None, str]


class NativeSupport:
    """The native-schema interface of one engine (subclassed in each dialect that has it)."""

    #: the object kinds a portable (cross-engine or ``--ddl portable``) restore also carries
    #: (tables, keys, indexes, sequences); every other kind is reported as not carried
    portable_kinds: ClassVar[frozenset[str]] = frozenset({"TABLE"})
    #: the kinds whose object is a table: when it fails, the table's rows cannot be loaded
    table_kinds: ClassVar[frozenset[str]] = frozenset({"TABLE"})
    #: each statement runs in a savepoint (a failure leaves the transaction usable); False
    #: where DDL commits by itself and so ends any savepoint (MariaDB)
    savepoints: ClassVar[bool] = True
    #: a statement goes to the engine in one message with its savepoint and its release (one
    #: round trip, not three): where the driver runs several statements of one string
    #: (PostgreSQL's simple query protocol; Python's sqlite3 takes one at a time)
    savepoint_in_one_trip: ClassVar[bool] = False
    #: small tables load several to a transaction, each in a savepoint (a third of the round
    #: trips of a transaction each); not where DDL ends savepoints (MariaDB) or where one
    #: transaction holding several loads is slower (SQLite keeps each load's staging file
    #: attached until the commit)
    group_small_loads: ClassVar[bool] = False
    #: post-data kinds built each in a step of its own, beside the table's other steps
    #: (True: it shares the table, as ``CREATE INDEX`` does; False: it holds it alone, as
    #: ``ALTER TABLE ... ADD CONSTRAINT`` does), so that one big table's indexes are built
    #: on several sessions at once, as ``pg_restore -j`` builds them; the table's other
    #: post-data objects follow them. Empty: one step per table (MariaDB builds a table's
    #: indexes in one ``ALTER TABLE``, SQLite has one writer)
    steps_alone: ClassVar[dict[str, bool]] = {}

    #: :meth:`capture_apart` does its work apart from ``conn`` (an engine tool run by
    #: itself): a dump starts it while it plans, before any of its connections locks a table
    captures_apart: ClassVar[bool] = False

    def capture_apart(self, conn: Connection, url: sa.URL, tables: Sequence[TableRef],
                      excluded: Sequence[TableRef],
                      schemas: Sequence[str] = ()) -> Callable[[], NativeSchema]:
        """:meth:`capture` in two steps: what needs ``conn`` now, and the function that does
        the rest without it (on another thread, while ``conn`` is used). By default all now."""
        schema = self.capture(conn, url, tables, excluded, schemas)
        return lambda: schema

    def capture(self, conn: Connection, url: sa.URL, tables: Sequence[TableRef],
                excluded: Sequence[TableRef], schemas: Sequence[str] = ()) -> NativeSchema:
        """Every object of the database ``conn`` reads (inside the dump's snapshot) as the
        engine defines it: the dumped ``tables`` and what hangs on them, and the objects
        outside any table (types, functions, views...) of the dumped ``schemas`` (where the
        engine has schemas); ``excluded`` are the tables the dump leaves out, whose objects
        are left out too. Tables are ``(schema, name)`` pairs (``schema`` None on an engine
        without schemas)."""
        raise NotImplementedError

    def check(self, obj: NativeObject) -> None:
        """Refuse (:class:`~dbcrate.errors.ArchiveCorrupt`, exit 6) an object whose SQL is not
        a plain definition of the kind it claims; nothing is run."""
        raise NotImplementedError

    def for_restore(self, objects: Sequence[NativeObject],
                    schema: Sequence[NativeObject]) -> list[NativeObject]:
        """The checked ``objects`` a restore runs, as this engine restores them best (MariaDB:
        a table's plain secondary keys split off and built after its rows). ``schema``: every
        object of the archive's native schema. Deterministic: a resumed restore gets the same
        objects, so the journal's marks name the same steps."""
        return list(objects)

    def statements(self, obj: NativeObject, *, no_owner: bool,
                   no_privileges: bool) -> list[Statement]:
        """The statements of a checked object, in order; ownership statements left out with
        ``no_owner``, grants with ``no_privileges``."""
        return [Statement(obj.sql)]

    def table_name(self, obj: NativeObject) -> str:
        """The archive name of the table a table object (:attr:`table_kinds`) defines
        (:attr:`dbcrate.model.schema.Table.name`)."""
        return obj.name

    def table_of(self, obj: NativeObject) -> str | None:
        """The archive name of the table an object belongs to (an index, a constraint, a
        trigger), so that it is built once that table's rows are in; ``None`` for the
        others."""
        return obj.table

    def is_foreign_key(self, obj: NativeObject) -> bool:
        return obj.kind == "FK CONSTRAINT"

    def fk_parent(self, obj: NativeObject) -> str | None:
        """The table a foreign-key object references."""
        return None

    def existing(self, conn: Connection,
                 objects: Sequence[NativeObject]) -> list[tuple[NativeObject, str]]:
        """The objects of ``objects`` that exist in the target already, each with the
        statement that drops it (``--clean``), built from the target's catalog, never from
        archive text."""
        return []

    def lock_slots(self, conn: Connection) -> int | None:
        """How many locks all sessions of the target together can hold, where one transaction
        holds a lock per object it creates or drops until it commits (PostgreSQL's shared
        lock table); None: no such bound. A restore runs a big pre-data in several
        transactions by it (:mod:`dbcrate.restore.native_run`)."""
        return None

    def setup(self) -> tuple[str, ...]:
        """Statements run at the start of each transaction that runs archive SQL (pg_dump's
        preamble, local to the transaction)."""
        return ()

    def reset(self) -> tuple[str, ...]:
        """Statements that undo :meth:`setup` before the transaction goes on (one shared
        transaction loads rows after the schema)."""
        return ()

    def execute(self, conn: Connection, sql: str) -> None:
        """Run one checked statement as it is (no parameter markers are parsed in it)."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def settings_sql(self, schema: NativeSchema) -> list[str]:
        """Statements, built by dbcrate from checked values, that restore the database-level
        settings of ``schema`` (SQLite's ``user_version``)."""
        return []
