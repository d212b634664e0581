"""What a restore reads from the parse of PostgreSQL native-schema SQL (pglast, as the guard
parses it, :mod:`.native_pg_guard`): an object's statements with owners and grants marked, the
table an index is on, the table a foreign key references. Nothing here touches a database; the
SQL given is an object's that the guard accepted.

Imported only by a restore (:mod:`.native_pg_restore` asks for it when first used): loading
pglast is no cost of a dump.
"""

from __future__ import annotations

import functools
from typing import Any

import pglast
from pglast import ast
from pglast.stream import RawStream

from dbcrate.dialects.native import Statement
from dbcrate.dialects.native_pg_guard import parsed
from dbcrate.model.native import NativeObject


def statements(sql: str, *, no_owner: bool, no_privileges: bool) -> list[Statement]:
    """The statements of an object's ``sql`` to run: the archive's text of each, owner and
    grant statements optional (left out with ``no_owner``/``no_privileges``), a ``CREATE
    SCHEMA`` rendered from its parse with ``IF NOT EXISTS``."""
    out = []
    for text, stmt in _pieces(sql):
        if _is_owner(stmt):
            if not no_owner:
                out.append(Statement(text, optional=True))
        elif isinstance(stmt, ast.GrantStmt | ast.GrantRoleStmt
                        | ast.AlterDefaultPrivilegesStmt):
            if not no_privileges:
                out.append(Statement(text, optional=True))
        elif isinstance(stmt, ast.CreateSchemaStmt):
            # the target may have it (public always does): pg_restore's error, made quiet
            out.append(Statement(RawStream()(ast.CreateSchemaStmt(
                schemaname=stmt.schemaname, authrole=stmt.authrole, if_not_exists=True))))
        else:
            out.append(Statement(text))
    return out


def index_relation(obj: NativeObject) -> tuple[str | None, str] | None:
    """``(schema or None, table)`` an index object's ``CREATE INDEX`` is on, or None."""
    stmt = _first(obj)
    if isinstance(stmt, ast.IndexStmt) and stmt.relation is not None:
        return stmt.relation.schemaname, str(stmt.relation.relname)
    return None


def referenced_table(obj: NativeObject) -> tuple[str | None, str] | None:
    """``(schema or None, table)`` a foreign key's ``ALTER TABLE`` references, or None."""
    stmt = _first(obj)
    if isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            pktable = getattr(cmd.def_, "pktable", None)
            if pktable is not None:
                return pktable.schemaname, str(pktable.relname)
    return None


def _is_owner(stmt: Any) -> bool:
    if isinstance(stmt, ast.AlterOwnerStmt):
        return True
    if isinstance(stmt, ast.AlterTableStmt) and stmt.cmds:
        return all(getattr(c.subtype, "name", "") == "AT_ChangeOwner" for c in stmt.cmds)
    return False


@functools.lru_cache(maxsize=16384)
def _pieces(sql: str) -> tuple[tuple[str, Any], ...]:
    """Each statement of ``sql``: its text, and its parse (kept, as :func:`parsed` is)."""
    return tuple((text, pglast.parse_sql(text)[0].stmt) for text in pglast.split(sql))


def _first(obj: NativeObject) -> Any:
    stmts = parsed(obj.sql)
    for raw in stmts:
        if not isinstance(raw.stmt, ast.VariableSetStmt):
            return raw.stmt
    return None
