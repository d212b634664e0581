"""The source engine's native schema: every object of the dumped database as the engine itself
defines it (pg_dump's object set, ``SHOW CREATE ...``, ``sqlite_master``), beside the portable
schema that cross-engine restores use.

A :class:`NativeSchema` is data: a list of :class:`NativeObject` (kind, qualified name, the
section it is restored in, the SQL the engine gave for it). It is captured by the engine's
dialect and restored only into the same engine, and only after each object's SQL was checked
to be the definition of the kind it claims to be (the dialects' guards). Reading it from an
archive never runs anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

#: pg_restore's three sections: objects created before the rows (types, tables without their
#: constraints, functions), the rows themselves (sequence values), and after the rows (primary
#: keys, indexes, constraints, triggers, rules, policies, foreign keys, materialized-view data)
Section = Literal["pre-data", "data", "post-data"]
SECTIONS: tuple[Section, ...] = ("pre-data", "data", "post-data")


#: per engine family, the object kinds that a portable restore (another engine, or ``--ddl
#: portable``) also carries: tables with their columns and keys, indexes, sequences; every
#: other kind (views, functions, triggers, types, checks ...) is reported as not carried
PORTABLE_KINDS: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"TABLE", "INDEX", "CONSTRAINT", "FK CONSTRAINT", "SEQUENCE",
                             "SEQUENCE SET", "SEQUENCE OWNED BY", "DEFAULT", "SCHEMA"}),
    "mysql": frozenset({"TABLE", "FK CONSTRAINT"}),
    "mariadb": frozenset({"TABLE", "FK CONSTRAINT"}),
    "sqlite": frozenset({"TABLE", "INDEX", "SEQUENCE SET"}),
}


@dataclass(frozen=True)
class NativeObject:
    """One object as the engine defines it.

    ``kind`` is the engine's word for it, upper case (``TABLE``, ``VIEW``, ``INDEX``,
    ``TRIGGER``, ``FUNCTION``, ``TYPE``, ``SEQUENCE``, ``CONSTRAINT``, ``FK CONSTRAINT``,
    ``COMMENT``, ``ACL`` ...); ``schema`` its namespace (``None`` where the engine has one per
    database); ``table`` the table it belongs to, for indexes, triggers and constraints;
    ``sql`` one or more complete statements that create it; ``owner`` the role that owns it
    (PostgreSQL), skipped with ``--no-owner``.
    """

    kind: str
    name: str
    section: Section
    sql: str
    schema: str | None = None
    table: str | None = None
    owner: str | None = None
    #: session settings the engine recorded with the object and runs it under (MariaDB:
    #: ``sql_mode``, ``character_set_client``, ``collation_connection``); a restore sets them,
    #: from checked values, before it creates the object
    session: dict[str, str] | None = None

    @property
    def qualified(self) -> str:
        """``schema.name`` (or ``name``), for messages and listings."""
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NativeObject:
        section = data["section"]
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}")
        session = data.get("session")
        if session is not None and not isinstance(session, dict):
            raise ValueError("a native object's session must be an object")
        return cls(kind=str(data["kind"]), name=str(data["name"]), section=section,
                   sql=str(data["sql"]), schema=_opt(data.get("schema")),
                   table=_opt(data.get("table")), owner=_opt(data.get("owner")),
                   session={str(k): str(v) for k, v in session.items()} if session else None)


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class NativeSchema:
    """Every captured object of one database, in the order the engine restores them, with
    the engine family, the server's version, the tool that captured them (``pg_dump 15.20``,
    or ``None`` for the engine's catalog) and database-level settings (SQLite's
    ``user_version`` and ``application_id``, ...)."""

    engine: str
    server_version: str
    objects: tuple[NativeObject, ...]
    tool: str | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def of_section(self, section: Section) -> list[NativeObject]:
        return [o for o in self.objects if o.section == section]

    def kinds(self) -> dict[str, int]:
        """How many objects of each kind (``ls`` shows this)."""
        out: dict[str, int] = {}
        for o in self.objects:
            out[o.kind] = out.get(o.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``native`` object (docs/FORMAT.md, "The native schema")."""
        return {"engine": self.engine, "server_version": self.server_version, "tool": self.tool,
                "settings": self.settings, "objects": [o.to_dict() for o in self.objects]}

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> NativeSchema:
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: Any) -> NativeSchema:
        """The inverse of :meth:`to_dict` (the fields' types were checked by the manifest's
        reader; this refuses what does not fit the value types)."""
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise ValueError("a native schema is an object with a list of objects")
        settings = data.get("settings") or {}
        if not isinstance(settings, dict):
            raise ValueError("native schema settings must be an object")
        return cls(engine=str(data["engine"]), server_version=str(data["server_version"]),
                   tool=_opt(data.get("tool")),
                   settings={str(k): str(v) for k, v in settings.items()},
                   objects=tuple(NativeObject.from_dict(o) for o in data["objects"]))


def not_portable(schema: NativeSchema) -> list[NativeObject]:
    """The objects of ``schema`` that a portable restore does not recreate."""
    kinds = PORTABLE_KINDS.get(schema.engine, frozenset({"TABLE"}))
    return [o for o in schema.objects if o.kind not in kinds]
