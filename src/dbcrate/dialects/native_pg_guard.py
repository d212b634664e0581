"""The guard of PostgreSQL native-schema SQL: each object's SQL is parsed with the server's own
grammar (pglast, libpg_query) and accepted only if every statement defines the kind of object
the entry claims to be. Nothing here touches a database.

Trust model: a native-schema restore creates the archive's objects as pg_restore does, so the
archive's functions, triggers, rules and policies exist in the target afterwards and run when
they are called. What is refused is SQL that *runs* something at restore time or acts outside
the object (``DO``, ``COPY``, ``ALTER SYSTEM``, roles, ``DROP``, arbitrary ``SELECT``, a C
function loading a library), a statement of another kind than the entry's, and any extra
statement however it is hidden (comments and strings are the parser's, not ours).

Contract for the runner: execute an accepted object's SQL on a session that ran
``native_pg.SESSION_SETUP`` (``standard_conforming_strings = on``, as the parser assumes), and
execute exactly the text that was checked.
"""

from __future__ import annotations

import functools
from typing import Any, NoReturn

import pglast
from pglast import ast

from dbcrate.dialects.native import UnsafeNativeSql
from dbcrate.model.native import NativeObject

_TABLE_CMDS = {"AT_ChangeOwner", "AT_SetStatistics", "AT_SetStorage", "AT_SetOptions",
               "AT_ResetOptions", "AT_SetRelOptions", "AT_ClusterOn", "AT_ReplicaIdentity",
               "AT_SetCompression", "AT_SetNotNull", "AT_AddInherit", "AT_AddIdentity",
               "AT_SetIdentity", "AT_ColumnDefault", "AT_AttachPartition",
               "AT_EnableRowSecurity", "AT_ForceRowSecurity", "AT_AddConstraint",
               "AT_EnableTrig", "AT_DisableTrig", "AT_EnableAlwaysTrig", "AT_EnableReplicaTrig",
               "AT_EnableRule", "AT_DisableRule", "AT_EnableAlwaysRule",
               "AT_EnableReplicaRule", "AT_SetLogged", "AT_SetUnLogged"}
_OWNER_ONLY = {"AT_ChangeOwner"}

#: kind -> (statement classes accepted, ALTER TABLE subcommands accepted)
_KINDS: dict[str, tuple[set[str], set[str]]] = {
    "SCHEMA": ({"CreateSchemaStmt"}, _OWNER_ONLY),
    "EXTENSION": ({"CreateExtensionStmt"}, _OWNER_ONLY),
    "TYPE": ({"CreateEnumStmt", "CompositeTypeStmt", "CreateRangeStmt", "DefineStmt"},
             _OWNER_ONLY),
    "SHELL TYPE": ({"DefineStmt"}, _OWNER_ONLY),
    "DOMAIN": ({"CreateDomainStmt"}, _OWNER_ONLY),
    "FUNCTION": ({"CreateFunctionStmt"}, _OWNER_ONLY),
    "PROCEDURE": ({"CreateFunctionStmt"}, _OWNER_ONLY),
    "AGGREGATE": ({"DefineStmt"}, _OWNER_ONLY),
    "OPERATOR": ({"DefineStmt"}, _OWNER_ONLY),
    "OPERATOR CLASS": ({"CreateOpClassStmt"}, _OWNER_ONLY),
    "OPERATOR FAMILY": ({"CreateOpFamilyStmt", "AlterOpFamilyStmt"}, _OWNER_ONLY),
    "COLLATION": ({"DefineStmt"}, _OWNER_ONLY),
    "CONVERSION": ({"CreateConversionStmt"}, _OWNER_ONLY),
    "CAST": ({"CreateCastStmt"}, _OWNER_ONLY),
    "TEXT SEARCH CONFIGURATION": ({"DefineStmt", "AlterTSConfigurationStmt"}, _OWNER_ONLY),
    "TEXT SEARCH DICTIONARY": ({"DefineStmt"}, _OWNER_ONLY),
    "TABLE": ({"CreateStmt", "AlterTableStmt"}, _TABLE_CMDS - {"AT_AttachPartition"}),
    "FOREIGN TABLE": ({"CreateForeignTableStmt", "AlterTableStmt"}, _TABLE_CMDS),
    "TABLE ATTACH": ({"AlterTableStmt"}, {"AT_AttachPartition"}),
    "VIEW": ({"ViewStmt", "AlterTableStmt"}, _OWNER_ONLY | {"AT_ColumnDefault"}),
    "MATERIALIZED VIEW": ({"CreateTableAsStmt", "AlterTableStmt"}, _TABLE_CMDS),
    "MATERIALIZED VIEW DATA": ({"RefreshMatViewStmt"}, set()),
    "SEQUENCE": ({"CreateSeqStmt", "AlterSeqStmt", "AlterTableStmt"},
                 _OWNER_ONLY | {"AT_AddIdentity", "AT_SetIdentity"}),
    "SEQUENCE OWNED BY": ({"AlterSeqStmt"}, set()),
    "SEQUENCE SET": (set(), set()),  # the one SELECT setval, checked below
    "DEFAULT": ({"AlterTableStmt"}, {"AT_ColumnDefault"}),
    "INDEX": ({"IndexStmt", "AlterTableStmt"}, {"AT_ClusterOn", "AT_SetStatistics",
                                                "AT_SetRelOptions", "AT_ReplicaIdentity"}),
    "INDEX ATTACH": ({"AlterTableStmt"}, {"AT_AttachPartition"}),
    "CONSTRAINT": ({"AlterTableStmt"}, {"AT_AddConstraint", "AT_ClusterOn",
                                        "AT_ReplicaIdentity"}),
    "FK CONSTRAINT": ({"AlterTableStmt"}, {"AT_AddConstraint"}),
    "CHECK CONSTRAINT": ({"AlterTableStmt", "AlterDomainStmt"}, {"AT_AddConstraint"}),
    "TRIGGER": ({"CreateTrigStmt", "AlterTableStmt"}, {"AT_EnableTrig", "AT_DisableTrig",
                                                       "AT_EnableAlwaysTrig",
                                                       "AT_EnableReplicaTrig"}),
    "EVENT TRIGGER": ({"CreateEventTrigStmt", "AlterEventTrigStmt"}, set()),
    "RULE": ({"RuleStmt", "AlterTableStmt"}, {"AT_EnableRule", "AT_DisableRule",
                                              "AT_EnableAlwaysRule", "AT_EnableReplicaRule"}),
    "POLICY": ({"CreatePolicyStmt"}, set()),
    "ROW SECURITY": ({"AlterTableStmt"}, {"AT_EnableRowSecurity", "AT_ForceRowSecurity"}),
    "STATISTICS": ({"CreateStatsStmt", "AlterStatsStmt"}, set()),
    "COMMENT": ({"CommentStmt"}, set()),
    "SECURITY LABEL": ({"SecLabelStmt"}, set()),
    "ACL": ({"GrantStmt"}, set()),
    "DEFAULT ACL": ({"AlterDefaultPrivilegesStmt"}, set()),
}

#: the only settings an entry may change: pg_dump's between-entry SETs
_SETTINGS = {"default_tablespace", "default_table_access_method", "default_with_oids"}
_REFUSED_LANGUAGES = {"c", "internal"}


@functools.lru_cache(maxsize=16384)
def parsed(sql: str) -> tuple[Any, ...]:
    """pglast's parse of ``sql`` (its ``RawStmt`` nodes), kept: a restore parses an object's
    SQL when it checks it, schedules it and runs it (2,000 tables: about 1 s of parsing more
    than once). The nodes are shared: callers read them, never change them."""
    return tuple(pglast.parse_sql(sql))


def check_object(obj: NativeObject) -> None:
    """Accept ``obj`` only if each statement of ``obj.sql`` defines an object of ``obj.kind``.

    Raises :class:`UnsafeNativeSql` (an :class:`ArchiveCorrupt`) naming the object and the
    statement found otherwise. Never touches a database."""
    allowed = _KINDS.get(obj.kind)
    if allowed is None:
        _refuse(obj, f"the object kind {obj.kind!r} is not one dbcrate restores")
    try:
        stmts = parsed(obj.sql)
    except pglast.parser.ParseError as exc:
        _refuse(obj, f"its SQL does not parse ({exc})")
    if not stmts:
        _refuse(obj, "its SQL holds no statement")
    for raw in stmts:
        _check_statement(obj, raw.stmt, allowed)


def _check_statement(obj: NativeObject, stmt: Any, allowed: tuple[set[str], set[str]]) -> None:
    name = type(stmt).__name__
    classes, subcommands = allowed
    if isinstance(stmt, ast.VariableSetStmt) and stmt.name in _SETTINGS:
        return
    if isinstance(stmt, ast.SelectStmt):
        _check_select(obj, stmt)
        return
    if isinstance(stmt, ast.AlterOwnerStmt):
        return
    if name not in classes:
        _refuse(obj, f"it holds a {name} statement")
    if isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            sub = getattr(cmd.subtype, "name", str(cmd.subtype))
            if sub not in subcommands:
                _refuse(obj, f"it holds an ALTER {name[5:-4].upper()} ... {sub} statement")
    elif isinstance(stmt, ast.CreateSchemaStmt) and stmt.schemaElts:
        _refuse(obj, "its CREATE SCHEMA creates other objects")
    elif isinstance(stmt, ast.CreateTableAsStmt):
        into = stmt.into
        if getattr(stmt.objtype, "name", "") != "OBJECT_MATVIEW" or into is None \
                or not into.skipData:
            _refuse(obj, "its CREATE ... AS is not a materialized view WITH NO DATA")
    elif isinstance(stmt, ast.CreateFunctionStmt):
        for opt in stmt.options or ():
            if opt.defname == "language" and str(opt.arg.sval).lower() in _REFUSED_LANGUAGES:
                _refuse(obj, f"its function is in LANGUAGE {opt.arg.sval} (a native library)")


def _check_select(obj: NativeObject, stmt: ast.SelectStmt) -> None:
    """The two SELECTs pg_dump writes: ``pg_catalog.setval`` (SEQUENCE SET) and
    ``pg_catalog.set_config('search_path', ...)``, with literal arguments, nothing else."""
    targets = stmt.targetList or ()
    only = len(targets) == 1 and stmt.fromClause is None and stmt.whereClause is None \
        and getattr(stmt.op, "name", None) == "SETOP_NONE"
    call = targets[0].val if only else None
    if isinstance(call, ast.FuncCall) and all(isinstance(a, ast.A_Const)
                                              for a in call.args or ()):
        fname = ".".join(n.sval for n in call.funcname or ())
        args = call.args or ()
        if fname == "pg_catalog.setval" and obj.kind == "SEQUENCE SET" and len(args) in (2, 3):
            return
        if fname == "pg_catalog.set_config" and len(args) == 3 \
                and getattr(args[0].val, "sval", None) == "search_path":
            return
    _refuse(obj, "it holds a SELECT that is not pg_dump's setval or search_path")


def _refuse(obj: NativeObject, why: str) -> NoReturn:
    raise UnsafeNativeSql(
        f"the archive's native schema object {obj.kind} {obj.qualified} was refused: {why}",
        hint="restore only archives you trust, or use ddl='portable', which runs no archive SQL")
