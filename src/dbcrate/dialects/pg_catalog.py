"""What PostgreSQL's catalog says of a column's type where SQLAlchemy's reflection says less:
the declared type of a column of a type it does not know, and a domain's sized base type."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: pg_type.typtype of user-defined types, as their engine type's prefix
TYPE_KINDS = {"c": "composite", "e": "enum", "d": "domain", "r": "range", "m": "multirange"}

#: a base type's spelling (format_type) whose length or precision reflection loses
SIZED_TYPES: tuple[tuple[str, Callable[..., Any]], ...] = (
    (r"character varying\((\d+)\)", sa.VARCHAR),
    (r"character\((\d+)\)", sa.CHAR),
    (r"numeric\((\d+),(\d+)\)", sa.NUMERIC),
)


def declared_types(conn: Connection, table_sql: str) -> dict[str, str]:
    """Each column's type as the table (``table_sql``, quoted and qualified) declares it: a
    type of the catalog (point, xml ...) by its name; a user-defined one (composite, range, an
    extension's) as "kind:name", which no portable restore spells as a type (it may not exist
    there): such a column is recreated as text, as enums are."""
    rows = conn.exec_driver_sql(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), n.nspname, "
        "coalesce(e.typtype, t.typtype) FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' "
        "JOIN pg_catalog.pg_namespace n ON n.oid = coalesce(e.typnamespace, t.typnamespace) "
        "WHERE a.attrelid = pg_catalog.to_regclass(%(t)s) AND a.attnum > 0 "
        "AND NOT a.attisdropped",
        {"t": table_sql}).all()
    return {str(col): str(spelled) if schema == "pg_catalog"
            else f"{TYPE_KINDS.get(str(kind), 'type')}:{spelled}"
            for col, spelled, schema, kind in rows}


def domain_base(conn: Connection, quote: Callable[[str], str], domain: Any) -> Any:
    """A domain's base type with its length or precision (SQLAlchemy's reflection keeps only
    the type's name: ``varchar`` for a ``varchar(50)`` domain)."""
    name = quote(domain.name)
    spelled = conn.exec_driver_sql(
        "SELECT format_type(typbasetype, typtypmod) FROM pg_catalog.pg_type "
        "WHERE oid = pg_catalog.to_regtype(%(t)s)",
        {"t": f"{quote(domain.schema)}.{name}" if domain.schema else name}).scalar()
    for pattern, make in SIZED_TYPES:
        found = re.fullmatch(pattern, str(spelled or ""))
        if found:
            return make(*(int(g) for g in found.groups()))
    return domain.data_type
