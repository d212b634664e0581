"""Names in the engine: where a table lives (its schema and its own name), and which names
the engine cannot hold.

An archive names each table once (:attr:`dbcrate.model.schema.Table.name`): by its own name in
the source's default schema, ``schema.name`` in another. A dialect turns that archive name into
the engine's name of the table: on an engine with schemas (PostgreSQL) the table goes back to
its schema; on one without (MariaDB, where a schema is a database, and SQLite) every table is
created by its own name, and two archive tables of one own name are refused by the restore's
compatibility check before anything is written (:meth:`Dialect.incompatibilities`).

A dialect learns the schemas of a dump's tables when it lists them
(:meth:`TableLocations.located`) and those of an archive's from its manifest
(:meth:`TableLocations.locate`); a name it has not learnt is a table of the default schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbcrate.errors import Incompatibility
from dbcrate.model.schema import Table, qualified_name


class TableNaming:
    """The naming half of a :class:`~dbcrate.dialects.base.Dialect`: archive name -> engine
    name, and the names the engine cannot hold.

    :cvar default_schema: the schema a table without one lives in (``None``: the engine has
        one namespace per database).
    :cvar has_schemas: tables of one database live in several schemas (dump ``-n``/``-N``).
    :cvar max_identifier_bytes: longest identifier in UTF-8 bytes (``None`` = unlimited).
    :cvar max_identifier_chars: longest identifier in characters (``None`` = unlimited).
    :cvar case_insensitive_columns: column names that differ only in case collide.
    """

    default_schema: ClassVar[str | None] = None
    has_schemas: ClassVar[bool] = False
    max_identifier_bytes: ClassVar[int | None] = None
    max_identifier_chars: ClassVar[int | None] = None
    case_insensitive_columns: ClassVar[bool] = False
    case_insensitive_tables: bool = False  # a server setting for some engines

    def __init__(self) -> None:
        self._located: dict[str, tuple[str, str]] = {}

    def quote(self, name: str) -> str:
        """Quote one identifier (the dialect's own rules)."""
        raise NotImplementedError

    def chosen_schemas(self, conn: Connection, include: Sequence[str],
                       exclude: Sequence[str]) -> list[str]:
        """The schemas a dump reads: those matching a glob of ``include`` (every one that is
        not the engine's own when empty) and none of ``exclude`` (``-n``/``-N``); empty on an
        engine without schemas."""
        return []

    def list_tables(self, conn: Connection, schemas: Sequence[str] = ()) -> list[str]:
        """The archive names of the tables in ``schemas`` (:meth:`chosen_schemas`; empty: the
        default schema), in name order."""
        return sorted(sa.inspect(conn).get_table_names(schema=self.default_schema))

    def present_tables(self, conn: Connection, tables: Sequence[Table]) -> set[str]:
        """The archive names of ``tables`` (an archive's) whose table exists in the target,
        with the names of the target's other tables in the default schema (and in the
        archive's schemas)."""
        self.locate(tables)
        schemas = ([s for s in [self.default_schema, *self.schemas_of(t.name for t in tables)]
                    if s is not None] if self.has_schemas else [])
        held = self.list_tables(conn, schemas)
        if self.has_schemas:
            return set(held)
        fold = str.lower if self.case_insensitive_tables else str
        have = {fold(n) for n in held}
        return set(held) | {t.name for t in tables if fold(self.own_name(t.name)) in have}

    def locate(self, tables: Iterable[Table]) -> None:
        """Learn the schemas of ``tables`` (an archive's), so that their names reach SQL in
        them; tables without a schema stay in the default one."""
        for table in tables:
            if table.schema is not None:
                self._located[table.name] = (table.schema, table.sql_name)
            for fk in table.foreign_keys:
                if fk.ref_schema is not None:
                    self._located[fk.ref_table] = (fk.ref_schema, fk.ref_sql_name)

    def located(self, schema: str, name: str) -> str:
        """The archive name of the table ``name`` found in ``schema`` (while listing a
        source's tables), remembered for the SQL that names it later."""
        if schema == self.default_schema:
            return name
        archive_name = qualified_name(schema, name)
        self._located[archive_name] = (schema, name)
        return archive_name

    def where(self, name: str) -> tuple[str | None, str]:
        """The schema (``None`` on an engine without schemas) and own name of the table an
        archive calls ``name``."""
        schema, own = self._located.get(name, (self.default_schema, name))
        return (schema if self.has_schemas else None), own

    def own_name(self, name: str) -> str:
        """The engine's name of the table an archive calls ``name``, without its schema."""
        return self.where(name)[1]

    def sa_schema(self, name: str) -> str | None:
        """The ``schema`` of the SQLAlchemy table for the table an archive calls ``name``:
        ``None`` in the default schema (the connection's search path finds it)."""
        schema = self.where(name)[0]
        return None if schema == self.default_schema else schema

    def schemas_of(self, names: Iterable[str]) -> list[str]:
        """The schemas, other than the default one, of the tables an archive calls
        ``names``: those a restore creates before their tables."""
        return sorted({s for s in (self.sa_schema(n) for n in names) if s is not None})

    def spellings(self, name: str) -> tuple[str, ...]:
        """The forms a ``-t`` pattern may match for the table an archive calls ``name``: that
        name, and ``schema.name`` for one in the default schema."""
        schema, own = self.where(name)
        if schema is None or name != own:
            return (name,)
        return (name, qualified_name(schema, own))

    def table_sql(self, name: str) -> str:
        """The table an archive calls ``name``, quoted for SQL (schema-qualified where the
        engine has schemas): the only way a table's name reaches SQL."""
        schema, own = self.where(name)
        if schema is None:
            return self.quote(own)
        return f"{self.quote(schema)}.{self.quote(own)}"

    def identifier_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be used as-is in this engine, or ``None``."""
        if "\x00" in name:
            return "contains a NUL character"
        if self.max_identifier_bytes and len(name.encode()) > self.max_identifier_bytes:
            return f"is longer than {self.max_identifier_bytes} bytes and would be truncated"
        if self.max_identifier_chars and len(name) > self.max_identifier_chars:
            return f"is longer than {self.max_identifier_chars} characters"
        return None

    def name_problems(self, tables: list[Table]) -> list[Incompatibility]:
        """Names this engine would truncate, fold together or reject."""
        problems: list[Incompatibility] = []
        seen_tables: dict[str, str] = {}
        for table in tables:
            # on an engine without schemas, tables of two schemas may share their own name
            schema, own = self.where(table.name)
            why = self.identifier_problem(own)
            if why:
                problems.append(Incompatibility(table.name, None, f"table name {why}"))
            key = f"{schema}.{own.lower() if self.case_insensitive_tables else own}"
            if key in seen_tables and seen_tables[key] != table.name:
                why = (f"table name collides with {seen_tables[key]!r} here" if own == table.name
                       else f"its name {own!r} is that of {seen_tables[key]!r} here (one "
                       "namespace: schemas are not kept)")
                problems.append(Incompatibility(table.name, None, why))
            seen_tables[key] = table.name
            seen_cols: dict[str, str] = {}
            for col in table.columns:
                why = self.identifier_problem(col.name)
                if why:
                    problems.append(Incompatibility(table.name, col.name, f"column name {why}"))
                ckey = col.name.lower() if self.case_insensitive_columns else col.name
                if ckey in seen_cols:
                    problems.append(
                        Incompatibility(
                            table.name,
                            col.name,
                            f"column name collides with {seen_cols[ckey]!r} (names are "
                            "case-insensitive here)",
                        )
                    )
                seen_cols[ckey] = col.name
        return problems
