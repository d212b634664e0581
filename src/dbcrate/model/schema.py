"""The portable schema of a table as stored in the manifest.

These dataclasses are plain data: reflection (``dialects``) fills them from a live database,
the manifest serialises them, and restore turns them into DDL for the target engine. Names are
kept exactly as the source spells them; they only ever reach SQL through the dialect's quoting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dbcrate.model.logical import LogicalType
from dbcrate.model.manifest_check import MAX_TYPE_PARAMETER, NEXT_VALUE_RANGE


def _str(data: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string")
    return value


def _bool(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"field {key!r} must be true or false")
    return value


def _str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {key!r} must be a list of strings")
    return list(value)


@dataclass(frozen=True)
class DefaultValue:
    """A column default that can be recreated safely.

    ``kind`` is ``literal`` (``value`` holds the literal as text, re-quoted by the target
    dialect), ``current_timestamp``, or ``expression`` (``sql`` is informational only and
    is never executed: recreating arbitrary SQL from an archive would let an archive run code).
    """

    kind: str
    value: str | None = None
    sql: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.value is not None:
            out["value"] = self.value
        if self.sql is not None:
            out["sql"] = self.sql
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DefaultValue:
        kind = _str(data, "kind")
        if kind not in ("literal", "current_timestamp", "expression"):
            raise ValueError(f"unknown default kind {kind!r}")
        return cls(kind, _str(data, "value", optional=True), _str(data, "sql", optional=True))


@dataclass(frozen=True)
class Column:
    """One column: name, portable type, the source engine's type, nullability, default."""

    name: str
    type: LogicalType
    engine_type: str
    nullable: bool = True
    default: DefaultValue | None = None
    autoincrement: bool = False
    identity: str | None = None  # 'always' | 'by default' for SQL identity columns
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.to_dict(),
            "engine_type": self.engine_type,
            "nullable": self.nullable,
        }
        if self.default is not None:
            out["default"] = self.default.to_dict()
        if self.autoincrement:
            out["autoincrement"] = True
        if self.identity:
            out["identity"] = self.identity
        if self.comment:
            out["comment"] = self.comment
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        default = data.get("default")
        identity = _str(data, "identity", optional=True)
        if identity not in (None, "always", "by default"):
            raise ValueError(f"unknown identity kind {identity!r}")
        return cls(
            name=_str(data, "name"),
            type=_logical_type(data.get("type")),
            engine_type=_str(data, "engine_type"),
            nullable=_bool(data, "nullable", True),
            default=DefaultValue.from_dict(default) if isinstance(default, dict) else None,
            autoincrement=_bool(data, "autoincrement", False),
            identity=identity,
            comment=_str(data, "comment", optional=True),
        )


@dataclass(frozen=True)
class Index:
    """A secondary index or a unique constraint (``constraint=True``)."""

    name: str | None
    columns: list[str]
    unique: bool = False
    constraint: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": self.columns,
            "unique": self.unique,
            "constraint": self.constraint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Index:
        return cls(
            name=_str(data, "name", optional=True),
            columns=_str_list(data, "columns"),
            unique=_bool(data, "unique", False),
            constraint=_bool(data, "constraint", False),
        )


FK_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION")


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key from ``columns`` to ``ref_table(ref_columns)``.

    ``ref_table`` is the referenced table's archive name (:attr:`Table.name`); ``ref_schema``
    its schema when that is not the source's default one (as :attr:`Table.schema`)."""

    name: str | None
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    on_delete: str | None = None
    on_update: str | None = None
    deferrable: bool = False
    initially_deferred: bool = False
    ref_schema: str | None = None

    @property
    def ref_sql_name(self) -> str:
        """The referenced table's own name, without its schema."""
        return unqualified(self.ref_table, self.ref_schema)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "columns": self.columns,
            "ref_table": self.ref_table,
            "ref_columns": self.ref_columns,
        }
        for key in ("on_delete", "on_update"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.deferrable:
            out["deferrable"] = True
        if self.initially_deferred:
            out["initially_deferred"] = True
        if self.ref_schema is not None:
            out["ref_schema"] = self.ref_schema
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForeignKey:
        actions = {}
        for key in ("on_delete", "on_update"):
            value = _str(data, key, optional=True)
            if value is not None and value.upper() not in FK_ACTIONS:
                raise ValueError(f"unknown foreign key action {value!r}")
            actions[key] = value.upper() if value else None
        if len(_str_list(data, "columns")) != len(_str_list(data, "ref_columns")):
            raise ValueError("a foreign key needs as many referenced columns as columns")
        ref_schema = _str(data, "ref_schema", optional=True)
        ref_table = _str(data, "ref_table")
        check_qualified(ref_table, ref_schema)
        return cls(
            name=_str(data, "name", optional=True),
            columns=_str_list(data, "columns"),
            ref_table=ref_table,
            ref_columns=_str_list(data, "ref_columns"),
            deferrable=_bool(data, "deferrable", False),
            initially_deferred=_bool(data, "initially_deferred", False),
            ref_schema=ref_schema,
            **actions,
        )


def qualified_name(schema: str | None, name: str) -> str:
    """A table's archive name: ``name`` in the source's default schema (``schema`` None),
    ``schema.name`` in any other."""
    return name if schema is None else f"{schema}.{name}"


def unqualified(archive_name: str, schema: str | None) -> str:
    """The inverse of :func:`qualified_name`: the table's own name."""
    return archive_name if schema is None else archive_name[len(schema) + 1:]


def check_qualified(archive_name: str, schema: str | None) -> None:
    """Refuse an archive name that does not start with its schema and a dot."""
    if schema is not None and (not schema or not archive_name.startswith(f"{schema}.")
                               or len(archive_name) == len(schema) + 1):
        raise ValueError(f"table {archive_name!r} in schema {schema!r} must be named "
                         f"{schema!r} + '.' + its name")


@dataclass
class Table:
    """The portable schema of one table.

    ``next_value`` is the value the table's identity/sequence/AUTO_INCREMENT would hand out
    next in the source (``None`` when the table has none).
    ``skipped`` lists schema objects that were seen but cannot be recreated portably (check
    constraints, expression indexes, triggers ...), so that a restore can say so.

    ``name`` is the table's name in the archive, unique in it: its own name for a table in the
    source's default schema (PostgreSQL's ``public``; engines without schemas have only that),
    ``schema.name`` for a table in another schema, whose ``schema`` is then set
    (:func:`qualified_name`). SQL names the table by :attr:`sql_name` inside ``schema``.
    """

    name: str
    columns: list[Column]
    primary_key: list[str] = field(default_factory=list)
    primary_key_name: str | None = None
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    next_value: int | None = None
    comment: str | None = None
    skipped: list[str] = field(default_factory=list)
    #: engine-specific table options (e.g. MariaDB engine and collation), applied only when
    #: restoring into the same engine, and only if they are plain words
    options: dict[str, str] = field(default_factory=dict)
    #: the schema (namespace) of a table outside the source's default schema, else None
    schema: str | None = None

    @property
    def sql_name(self) -> str:
        """The table's own name, without its schema (what the engine calls it)."""
        return unqualified(self.name, self.schema)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def autoincrement_column(self) -> Column | None:
        for col in self.columns:
            if col.autoincrement or col.identity:
                return col
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "columns": [c.to_dict() for c in self.columns],
            "primary_key": self.primary_key,
            "primary_key_name": self.primary_key_name,
            "indexes": [i.to_dict() for i in self.indexes],
            "foreign_keys": [f.to_dict() for f in self.foreign_keys],
            "next_value": self.next_value,
        }
        if self.comment:
            out["comment"] = self.comment
        if self.skipped:
            out["skipped"] = self.skipped
        if self.options:
            out["options"] = self.options
        if self.schema is not None:
            out["schema"] = self.schema
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Table:
        cols = data.get("columns")
        if not isinstance(cols, list) or not cols:
            raise ValueError("a table needs a non-empty list of columns")
        columns = [Column.from_dict(c) for c in cols]
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise ValueError("duplicate column names")
        table = cls(
            name=_str(data, "name"),
            schema=_str(data, "schema", optional=True),
            columns=columns,
            primary_key=_str_list(data, "primary_key"),
            primary_key_name=_str(data, "primary_key_name", optional=True),
            indexes=[Index.from_dict(i) for i in data.get("indexes", [])],
            foreign_keys=[ForeignKey.from_dict(f) for f in data.get("foreign_keys", [])],
            next_value=_next_value(data.get("next_value")),
            comment=_str(data, "comment", optional=True),
            skipped=_str_list(data, "skipped"),
            options={
                str(k): str(v)
                for k, v in (data.get("options") or {}).items()
                if isinstance(v, str | int) and not isinstance(v, bool)
            },
        )
        check_qualified(table.name, table.schema)
        known = set(names)
        referenced = list(table.primary_key)
        for index in table.indexes:
            referenced += index.columns
        for fk in table.foreign_keys:
            referenced += fk.columns
        unknown = [c for c in referenced if c not in known]
        if unknown:
            raise ValueError(f"table {table.name!r} refers to unknown columns {unknown}")
        return table


def _logical_type(data: Any) -> LogicalType:
    """A column's logical type, its parameters within what any engine accepts (a length of
    ``10**30`` would otherwise reach Arrow's compute functions and the DDL as is)."""
    if not isinstance(data, dict):
        raise ValueError("a column needs a logical type object")
    for name in ("length", "precision", "scale"):
        value = data.get(name)
        if isinstance(value, int) and not 0 <= value <= MAX_TYPE_PARAMETER:
            raise ValueError(f"logical type field {name!r} is out of range 0..{MAX_TYPE_PARAMETER}")
    return LogicalType.from_dict(data)


def _next_value(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("'next_value' must be an integer or null")
    if not NEXT_VALUE_RANGE[0] <= value <= NEXT_VALUE_RANGE[1]:
        raise ValueError("'next_value' is out of the range of 64-bit counters")
    return value


def dependency_order(tables: Iterable[Table]) -> list[Table]:
    """Order tables so that a table comes after the tables its foreign keys reference.

    References outside the given set and self-references are ignored; cycles are broken in
    name order (restore adds foreign keys after all data, so any order loads; the order only
    matters for engines that check constraints while loading). Deterministic.
    """
    by_name = {t.name: t for t in tables}
    deps = {
        name: sorted({fk.ref_table for fk in t.foreign_keys if fk.ref_table in by_name} - {name})
        for name, t in by_name.items()
    }
    ordered: list[Table] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:  # a cycle: break it here
            return
        state[name] = 1
        for dep in deps[name]:
            visit(dep)
        state[name] = 2
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name)
    return ordered
