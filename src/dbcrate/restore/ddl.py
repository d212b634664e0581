"""Portable schema -> SQLAlchemy tables, constraints and indexes for a target engine.

Only names (quoted by the dialect) and validated type spellings reach the DDL; defaults are
recreated only when they are literals (re-rendered by the dialect) or CURRENT_TIMESTAMP, never
as SQL text taken from the archive.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from dbcrate.dialects.base import Dialect
from dbcrate.errors import Incompatibility
from dbcrate.model.schema import Column, Table

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass
class TargetTables:
    """The SQLAlchemy objects for all tables of one restore, in one MetaData."""

    metadata: sa.MetaData
    tables: dict[str, sa.Table]
    types: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    used_names: set[str] = field(default_factory=set)
    #: per table, the primary key added after the data (``Dialect.primary_key_after_data``)
    primary_keys: dict[str, Any] = field(default_factory=dict)
    #: per table, the foreign keys added after the data (engines that can ``ALTER TABLE``)
    foreign_keys: dict[str, list[sa.ForeignKeyConstraint]] = field(default_factory=dict)
    #: per table, ``(kind, name, reason)`` of each object of the archive not recreated
    not_recreated: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    #: keys that take more bytes than the target allows by their columns' declared lengths
    #: (``Dialect.max_key_bytes``): the plan refuses them before anything is created
    too_long_keys: list[Incompatibility] = field(default_factory=list)
    #: per ``(table, index columns)``, the prefix lengths of a plain index that is too long
    index_prefixes: dict[tuple[str, tuple[str, ...]], dict[str, int]] = field(default_factory=dict)

    def skip(self, table: str, kind: str, name: str, reason: str) -> None:
        """Record an object of ``table`` that is not recreated, and why."""
        self.not_recreated.setdefault(table, []).append((kind, name, reason))


def keyed_columns(table: Table) -> set[str]:
    cols = set(table.primary_key)
    for index in table.indexes:
        cols.update(index.columns)
    for fk in table.foreign_keys:
        cols.update(fk.columns)
    return cols


def column_type(dialect: Dialect, col: Column, *, same_engine: bool, keyed: bool) -> Any:
    if col.autoincrement or col.identity:
        # autoincrement needs the engine's integer class (SERIAL, AUTO_INCREMENT, rowid alias)
        return dialect.type_for_logical(col.type, keyed=keyed)
    return dialect.sa_type(col, same_engine=same_engine, keyed=keyed)


def _default(col: Column, dialect: Dialect, same_engine: bool, out: TargetTables, table: str) -> Any:
    d = col.default
    if d is None:
        return None
    if d.kind == "current_timestamp" and col.type.kind in ("datetime", "timestamptz"):
        return sa.text("CURRENT_TIMESTAMP")
    if d.kind == "literal" and d.value is not None:
        numeric = col.type.kind.startswith(("int", "uint", "float", "decimal"))
        if numeric and _NUMBER.match(d.value):
            return sa.text(d.value)
        if col.type.kind == "string" or (same_engine and not numeric):
            literal = sa.literal(d.value, sa.String()).compile(
                dialect=dialect.sa_dialect, compile_kwargs={"literal_binds": True}
            )
            return sa.text(str(literal))
    out.skip(table, "default", f"{col.name} = {d.sql or d.value!r}",
             "only literal defaults and CURRENT_TIMESTAMP are recreated (no SQL from the archive "
             "runs in the target)")
    return None


def constraint_name(dialect: Dialect, preferred: str | None, parts: list[str], used: set[str]) -> str | None:
    """The source's constraint name when usable; ``None`` lets the engine name it."""
    if preferred is None:
        return None
    return unique_name(dialect, preferred, parts, used)


def unique_name(dialect: Dialect, preferred: str | None, parts: list[str], used: set[str]) -> str:
    """A constraint/index name that is valid in the target and not used yet in this restore."""
    if preferred and not dialect.identifier_problem(preferred) and preferred not in used:
        used.add(preferred)
        return preferred
    base = "_".join(parts)
    if not dialect.identifier_problem(base) and base not in used and len(base) <= 60:
        used.add(base)
        return base
    digest = hashlib.sha1(base.encode(), usedforsecurity=False).hexdigest()[:8]
    name = f"{base[:40]}_{digest}"
    while name in used:
        digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
        name = f"{base[:40]}_{digest}"
    used.add(name)
    return name


#: integer kinds by width: a foreign key column narrower than its referenced column widens
_INTEGER_WIDTH = {"int8": 1, "int16": 2, "int32": 4, "int64": 8}


def _widen_to_referenced(tables: list[Table], out: TargetTables) -> list[Table]:
    """``tables`` with each integer foreign-key column narrower than the integer column it
    refers to (PostgreSQL lets a smallint refer to an integer; InnoDB does not) given the
    referenced column's type, each said in a warning. Values only widen: nothing changes."""
    by_name = {t.name: t for t in tables}
    result = []
    for table in tables:
        wider: dict[str, Column] = {}
        for fk in table.foreign_keys:
            parent = by_name.get(fk.ref_table)
            if parent is None:
                continue
            for name, ref in zip(fk.columns, fk.ref_columns):
                col, target = table.column(name), parent.column(ref)
                if _INTEGER_WIDTH.get(col.type.kind, 9) < _INTEGER_WIDTH.get(target.type.kind, 0):
                    wider[name] = replace(col, type=target.type)
                    label = fk_label(fk.name, fk.columns, fk.ref_table)
                    out.warnings.append(
                        f"column {table.name}.{name}: created as {target.type.kind} like "
                        f"{parent.name}.{ref}, which its foreign key {label} refers to "
                        f"(the target needs equal types; the source has {col.type.kind})")
        result.append(replace(table, columns=[wider.get(c.name, c) for c in table.columns])
                      if wider else table)
    return result


def _target_columns(
    table: Table, dialect: Dialect, same_engine: bool, out: TargetTables
) -> tuple[list[sa.Column[Any]], dict[str, Any]]:
    """The table's SQLAlchemy columns, and column -> the type each is created with."""
    keyed = keyed_columns(table)
    types = {col.name: column_type(dialect, col, same_engine=same_engine, keyed=col.name in keyed)
             for col in table.columns}
    if dialect.max_key_bytes is not None and not same_engine:
        _fit_keys(table, types, dialect, dialect.max_key_bytes, out)
    columns: list[sa.Column[Any]] = []
    autoinc = table.autoincrement_column
    for col in table.columns:
        args: list[Any] = []
        is_auto = (
            autoinc is not None
            and col.name == autoinc.name
            and table.primary_key[:1] == [col.name]
        )
        if col.identity and dialect.identity_columns:
            args.append(sa.Identity(always=col.identity == "always"))
        columns.append(
            sa.Column(
                col.name,
                types[col.name],
                *args,
                nullable=col.nullable if col.name not in table.primary_key else False,
                server_default=_default(col, dialect, same_engine, out, table.name),
                autoincrement=bool(is_auto),
                comment=col.comment if dialect.column_comments else None,
            )
        )
    return columns, types


def _length_is_ours(column: Column, target_length: int | None) -> bool:
    """Whether a key column's length in the target is dbcrate's choice, not the source's: the
    source declared none (PostgreSQL ``text``, ``varchar``) or more than a key can hold."""
    if column.type.kind not in ("string", "binary", "json", "other") or target_length is None:
        return False
    return column.type.length is None or column.type.length > target_length


def _shares(sizes: dict[str, int], room: int) -> dict[str, int]:
    """``room`` bytes shared among columns of ``sizes`` bytes: none gets more than its size,
    what a short column leaves goes to the longer ones (smallest first, each its fair part of
    what is left)."""
    out: dict[str, int] = {}
    ordered = sorted(sizes, key=lambda c: sizes[c])
    for i, c in enumerate(ordered):
        out[c] = max(0, min(sizes[c], room // (len(ordered) - i)))
        room -= out[c]
    return out


def _prefix_index(table: Table, label: str, columns: list[str], sizes: dict[str, int],
                  types: dict[str, Any], dialect: Dialect, limit: int, out: TargetTables) -> None:
    """A plain index over ``limit`` bytes: built on prefixes of its text columns, no longer
    than each column (:func:`_shares`); left out, with its reason, when no prefix fits."""
    texts = {c: sizes[c] for c in columns
             if sizes[c] and dialect.narrowed(types[c], sizes[c]) is not None}
    total = sum(sizes.values())
    room = limit - (total - sum(texts.values()))
    prefixes: dict[str, int] = {}
    for c, allotted in _shares(texts, room).items():
        if allotted < sizes[c]:
            prefixes[c] = getattr(dialect.narrowed(types[c], allotted), "length", 0) or 0
    index_name = label.rpartition(" ")[2]
    if not prefixes or min(prefixes.values()) < 1:
        out.skip(table.name, "index", index_name,
                 f"its key takes {total:,} bytes and no prefix of its text columns fits the "
                 f"target's {limit:,}")
        out.index_prefixes[(table.name, tuple(columns))] = {}
        return
    out.index_prefixes[(table.name, tuple(columns))] = prefixes
    out.warnings.append(
        f"{label} on {table.name} ({', '.join(columns)}): built on the first "
        + ", ".join(f"{n} of {c}" for c, n in prefixes.items())
        + f" (the whole key would take {total:,} bytes; the target's keys take at most "
        f"{limit:,}); it finds the same rows")


def _fit_keys(table: Table, types: dict[str, Any], dialect: Dialect, limit: int,
              out: TargetTables) -> None:
    """Make ``table``'s keys fit the target's key size (``Dialect.max_key_bytes``), changing
    ``types`` in place. A column whose length is dbcrate's choice (:func:`_length_is_ours`)
    is narrowed until every primary key, unique index and foreign key that holds it fits,
    said in a warning (a longer value then fails the table's load, loudly); one that still
    does not fit is put in ``out.too_long_keys``: the plan refuses the restore before anything
    is created. A plain index that does not fit is built on prefixes of its text columns (it
    finds the same rows) and leaves the columns whole."""
    keys: list[tuple[str, list[str], bool]] = []
    if table.primary_key:
        keys.append(("primary key", table.primary_key, True))
    for fk in table.foreign_keys:
        keys.append((f"foreign key {fk_label(fk.name, fk.columns, fk.ref_table)}", fk.columns, True))
    for index in table.indexes:
        label = f"{'unique ' if index.unique else ''}index {index.name or ''}".rstrip()
        keys.append((label, index.columns, index.unique or index.constraint))
    before = dict(types)
    for label, columns, exact in keys:
        sizes = {c: dialect.key_bytes(types[c]) for c in columns}
        total = sum(sizes.values())
        if total > limit and exact:
            free = [c for c in columns
                    if _length_is_ours(table.column(c), getattr(types[c], "length", None))]
            fixed = total - sum(sizes[c] for c in free)
            for c, allotted in _shares({c: sizes[c] for c in free}, limit - fixed).items():
                shorter = dialect.narrowed(types[c], allotted) if allotted < sizes[c] else None
                if shorter is not None:
                    types[c] = shorter
            total = sum(dialect.key_bytes(types[c]) for c in columns)
            if total > limit:
                out.too_long_keys.append(Incompatibility(
                    table.name, None,
                    f"{label} ({', '.join(columns)}) takes {total:,} bytes by its columns' "
                    f"declared lengths; the target's keys take at most {limit:,}"))
        elif total > limit:  # a plain index: built on prefixes, the columns stay whole
            _prefix_index(table, label, columns, sizes, types, dialect, limit, out)
    for c, t in types.items():
        if t is not before[c]:
            out.warnings.append(
                f"column {table.name}.{c}: created with length {t.length} (it is in a key, and "
                f"the target's keys take at most {limit:,} bytes); a longer value fails the "
                f"table's load")


def build_tables(
    tables: list[Table],
    dialect: Dialect,
    *,
    same_engine: bool,
    inline_foreign_keys: bool,
    existing: set[str] | None = None,
) -> TargetTables:
    """SQLAlchemy ``Table`` objects with columns and primary keys (plus foreign keys when
    ``inline_foreign_keys``, for engines that cannot add them later)."""
    md = sa.MetaData()
    out = TargetTables(md, {}, {})
    existing = existing or set()
    if dialect.foreign_key_types_match and not same_engine:
        tables = _widen_to_referenced(tables, out)
    for table in tables:
        columns, types = _target_columns(table, dialect, same_engine, out)
        constraints: list[Any] = []
        if table.primary_key:
            constraints.append(
                sa.PrimaryKeyConstraint(
                    *table.primary_key,
                    name=constraint_name(
                        dialect, table.primary_key_name, [table.name, "pkey"], out.used_names
                    )
                    if dialect.named_primary_keys
                    else None,
                )
            )
        out.tables[table.name] = sa.Table(
            dialect.own_name(table.name),
            md,
            *columns,
            *constraints,
            schema=dialect.sa_schema(table.name),
            **dialect.table_kwargs(table, same_engine=same_engine),
        )
        if table.primary_key and dialect.primary_key_after_data:
            # an AddConstraint takes its constraint out of CREATE TABLE; the columns stay
            # primary-key columns for SQLAlchemy (NOT NULL, SERIAL)
            pk = out.tables[table.name].primary_key
            out.primary_keys[table.name] = sa.schema.AddConstraint(pk)
        out.types[table.name] = types
    for table in tables:
        fks = foreign_keys(table, out, dialect, existing)
        if inline_foreign_keys:
            for fkc in fks:
                out.tables[table.name].append_constraint(fkc)
        else:  # added after the data (the restore appends them when it plans the adds)
            out.foreign_keys[table.name] = fks
    return out


def _ref_table(name: str, columns: list[str], out: TargetTables, dialect: Dialect) -> sa.Table:
    if name in out.tables:
        return out.tables[name]
    # a table outside this restore that exists in the target: a stub to resolve the reference
    return sa.Table(dialect.own_name(name), out.metadata,
                    *[sa.Column(c, sa.Integer) for c in columns],
                    schema=dialect.sa_schema(name))


def foreign_keys(
    table: Table, out: TargetTables, dialect: Dialect, existing: set[str]
) -> list[sa.ForeignKeyConstraint]:
    result = []
    for fk in table.foreign_keys:
        shown = fk_label(fk.name, fk.columns, fk.ref_table)
        if fk.ref_table not in out.tables and fk.ref_table not in existing:
            out.skip(table.name, "foreign key", shown,
                     f"table {fk.ref_table!r} is neither restored nor present in the target")
            continue
        ref = _ref_table(fk.ref_table, fk.ref_columns, out, dialect)
        try:
            refcols = [ref.c[c] for c in fk.ref_columns]
        except KeyError:
            out.skip(table.name, "foreign key", shown,
                     f"table {fk.ref_table!r} has no column(s) {', '.join(fk.ref_columns)}")
            continue
        name = None
        if dialect.named_constraints:
            name = constraint_name(dialect, fk.name, [table.name, *fk.columns, "fkey"], out.used_names)
        result.append(
            sa.ForeignKeyConstraint(
                fk.columns,
                refcols,
                name=name,
                ondelete=fk.on_delete,
                onupdate=fk.on_update,
                deferrable=fk.deferrable if dialect.deferrable_constraints else None,
                initially=("DEFERRED" if fk.initially_deferred else None)
                if dialect.deferrable_constraints
                else None,
            )
        )
    return result


def fk_label(name: str | None, columns: list[str], ref_table: str) -> str:
    """How a foreign key is named in messages: its name, or its columns and target."""
    return name or f"({', '.join(columns)}) -> {ref_table}"


def index_objects(table: Table, out: TargetTables, dialect: Dialect) -> list[Any]:
    """DDL elements for the secondary indexes and unique constraints of ``table``."""
    sa_table = out.tables[table.name]
    elements: list[Any] = []
    for index in table.indexes:
        cols = [sa_table.c[c] for c in index.columns]
        parts = [table.name, *index.columns, "key" if index.unique else "idx"]
        if index.constraint and dialect.named_constraints:
            uc = sa.UniqueConstraint(
                *cols, name=constraint_name(dialect, index.name, parts, out.used_names)
            )
            sa_table.append_constraint(uc)
            elements.append(sa.schema.AddConstraint(uc))
        else:
            prefixes = out.index_prefixes.get((table.name, tuple(index.columns)))
            if prefixes == {}:  # too long for any prefix: left out (_prefix_index said why)
                continue
            name = unique_name(dialect, index.name, parts, out.used_names)
            ix = sa.Index(name, *cols, unique=index.unique,
                          **(dialect.prefix_index_kwargs(prefixes) if prefixes else {}))
            ix._set_parent(sa_table)  # attach without emitting it in CREATE TABLE
            elements.append(sa.schema.CreateIndex(ix))
    return elements


@dataclass(frozen=True)
class CombinedDDL:
    """One statement for several DDL elements of one table (``Dialect.combined_index_ddl``);
    if it fails, the elements run one by one, so that the good ones are built and the error
    names the bad one."""

    sql: str
    parts: list[Any]


def index_steps(table: Table, out: TargetTables, dialect: Dialect) -> list[list[Any]]:
    """The units of work that build ``table``'s primary key (where it comes after the data)
    and indexes: one per element, or one for them all where the engine builds them in one
    pass. The primary key comes first: other tables' foreign keys need it."""
    elements = index_objects(table, out, dialect)
    combined = dialect.combined_index_ddl(elements)
    steps = [[CombinedDDL(combined, elements)]] if combined is not None else [[e] for e in elements]
    if table.name in out.primary_keys:
        steps.insert(0, [out.primary_keys[table.name]])
    return steps
