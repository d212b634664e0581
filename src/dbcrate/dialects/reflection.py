"""Reflection of a table's indexes and foreign keys into the portable schema (SQLAlchemy's
inspector), shared by every dialect's :meth:`~dbcrate.dialects.base.Dialect.reflect`."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from dbcrate.model.schema import ForeignKey, Index, Table


def reflect_indexes(insp: Any, table: Table, schema: str | None) -> None:
    """Add the unique constraints and plain-column indexes to ``table``; partial and
    expression indexes are listed as skipped (they cannot be carried portably)."""
    seen_unique: set[tuple[str, ...]] = set()
    for uc in insp.get_unique_constraints(table.sql_name, schema=schema):
        cols = list(uc.get("column_names") or [])
        if cols and None not in cols:
            table.indexes.append(Index(uc.get("name"), cols, unique=True, constraint=True))
            seen_unique.add(tuple(cols))
    for ix in insp.get_indexes(table.sql_name, schema=schema):
        dialect_options = ix.get("dialect_options") or {}
        if any(k.endswith("_where") and v is not None for k, v in dialect_options.items()):
            table.skipped.append(f"index {ix.get('name')} (partial index)")
            continue
        raw_cols = list(ix.get("column_names") or [])
        if not raw_cols or any(c is None for c in raw_cols) or ix.get("expressions"):
            table.skipped.append(f"index {ix.get('name')} (expression index)")
            continue
        cols = [str(c) for c in raw_cols]
        if ix.get("duplicates_constraint") or (ix.get("unique") and tuple(cols) in seen_unique):
            continue
        table.indexes.append(Index(ix.get("name"), cols, unique=bool(ix.get("unique"))))


def reflect_foreign_keys(insp: Any, table: Table, schema: str | None,
                         located: Callable[[str, str], str] | None,
                         default_schema: str | None = None) -> None:
    """Add the foreign keys of ``table`` (in ``schema``) to it. ``located`` names a table of
    a schema in the archive (:meth:`~dbcrate.dialects.naming.TableNaming.located`) where
    the engine has schemas; without it a foreign key to another schema (a MariaDB database) is
    skipped. A referenced table without a schema is one the search path finds: in
    ``default_schema``."""
    for fk in insp.get_foreign_keys(table.sql_name, schema=schema):
        ref_schema = fk.get("referred_schema") or default_schema
        ref_table = str(fk["referred_table"])
        if located is not None and ref_schema is not None:
            ref_table = located(ref_schema, ref_table)
        elif ref_schema not in (None, schema):
            table.skipped.append(f"foreign key {fk.get('name')} to schema {ref_schema}")
            continue
        opts = fk.get("options") or {}
        table.foreign_keys.append(
            ForeignKey(
                name=fk.get("name"),
                columns=[str(c) for c in fk["constrained_columns"]],
                ref_table=ref_table,
                ref_schema=ref_schema if ref_table != fk["referred_table"] else None,
                ref_columns=list(fk["referred_columns"]),
                on_delete=_fk_action(opts.get("ondelete")),
                on_update=_fk_action(opts.get("onupdate")),
                deferrable=bool(opts.get("deferrable")),
                initially_deferred=str(opts.get("initially", "")).upper() == "DEFERRED",
            )
        )


def _fk_action(value: Any) -> str | None:
    if not value:
        return None
    text = str(value).upper()
    return text if text in ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION") else None


def without_missing_columns(table: Table) -> None:
    """Leave out the indexes and foreign keys that name a column the portable schema does not
    have (a generated column), each with a note: they could not be created from it."""
    have = set(table.column_names)
    kept = []
    for index in table.indexes:
        if set(index.columns) <= have:
            kept.append(index)
        else:
            table.skipped.append(f"index {index.name} (on a generated column)")
    table.indexes = kept
    keys = []
    for fk in table.foreign_keys:
        if set(fk.columns) <= have:
            keys.append(fk)
        else:
            table.skipped.append(f"foreign key {fk.name} (on a generated column)")
    table.foreign_keys = keys


@contextlib.contextmanager
def quiet_reflection() -> Iterator[None]:
    """Reflection without SQLAlchemy's warning about a type it does not know: such a column
    is read as the type the table declares (:meth:`Dialect.declared_types`), and what it
    cannot carry is dbcrate's own warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
        yield


#: from this many tables of a schema on, :class:`BulkInspector` reads the catalog facts of
#: every table of the schema, when the dump takes them all, instead of naming each table:
#: a filter of 2,000 names made the seven catalog queries of a 2,000-table dump 0.91 s
#: instead of 0.55 s (SQLAlchemy binds each name; the server matches each row against the list)
UNFILTERED_MIN_TABLES = 100

#: what :class:`BulkInspector` reads for all tables at once: SQLAlchemy's ``get_multi_<kind>``
BULK_KINDS = ("columns", "pk_constraint", "indexes", "unique_constraints", "foreign_keys",
              "check_constraints", "table_comment")


class BulkInspector:
    """SQLAlchemy's inspector for many tables: each kind of catalog fact (columns, keys,
    indexes ...) read once for all of them with its ``get_multi_*`` method (one catalog query
    per kind and schema on PostgreSQL, where ``get_columns`` costs one per table: 2,000 tables
    took 11 queries each), then answered per table as ``get_<kind>(name, schema)`` is.

    A table or kind the bulk read did not answer falls back to the per-table call."""

    def __init__(self, insp: Any, tables: dict[str | None, list[str]]) -> None:
        self._insp = insp
        self._facts: dict[tuple[str, str | None, str], Any] = {}
        for schema, names in tables.items():
            wanted = _filter(insp, schema, names)
            for kind in BULK_KINDS:
                try:
                    found = getattr(insp, f"get_multi_{kind}")(schema=schema, filter_names=wanted)
                except NotImplementedError:
                    continue
                for (_, name), value in found.items():
                    self._facts[(kind, schema, name)] = value

    def _get(self, kind: str, name: str, schema: str | None) -> Any:
        found = self._facts.get((kind, schema, name))
        if found is None:
            return getattr(self._insp, f"get_{kind}")(name, schema=schema)
        return found

    def get_columns(self, name: str, schema: str | None = None) -> Any:
        return self._get("columns", name, schema)

    def get_pk_constraint(self, name: str, schema: str | None = None) -> Any:
        return self._get("pk_constraint", name, schema)

    def get_indexes(self, name: str, schema: str | None = None) -> Any:
        return self._get("indexes", name, schema)

    def get_unique_constraints(self, name: str, schema: str | None = None) -> Any:
        return self._get("unique_constraints", name, schema)

    def get_foreign_keys(self, name: str, schema: str | None = None) -> Any:
        return self._get("foreign_keys", name, schema)

    def get_check_constraints(self, name: str, schema: str | None = None) -> Any:
        return self._get("check_constraints", name, schema)

    def get_table_comment(self, name: str, schema: str | None = None) -> Any:
        return self._get("table_comment", name, schema)


def _filter(insp: Any, schema: str | None, names: list[str]) -> list[str] | None:
    """The ``filter_names`` of the bulk reads of ``names`` in ``schema``: None (every table of
    the schema) when they are many and every table of the schema is among them, else
    ``names``. (Where an engine has no bulk queries, SQLAlchemy reads the tables one by one
    either way: the same tables.)"""
    if len(names) < UNFILTERED_MIN_TABLES:
        return names
    return None if set(names) >= set(insp.get_table_names(schema=schema)) else names
