"""Registry of database engines: SQLAlchemy dialect name -> :class:`Dialect` subclass."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from dbcrate.dialects.base import Dialect
from dbcrate.dialects.mysql import MySQL
from dbcrate.dialects.postgresql import PostgreSQL
from dbcrate.dialects.sqlite import SQLite
from dbcrate.errors import ConnectionFailed

DIALECTS: dict[str, type[Dialect]] = {
    "postgresql": PostgreSQL,
    "mysql": MySQL,
    "mariadb": MySQL,
    "sqlite": SQLite,
}


def dialect_for(engine: Engine) -> Dialect:
    """The dbcrate dialect of an engine; an unknown engine names the supported ones."""
    try:
        cls = DIALECTS[engine.dialect.name]
    except KeyError:
        raise ConnectionFailed(
            f"engine {engine.dialect.name!r} is not supported",
            hint=f"supported engines: {', '.join(sorted(DIALECTS))}",
        ) from None
    return cls(engine)


def dialect_class(backend: str) -> type[Dialect]:
    """The dialect class of a URL's backend name (``url.get_backend_name()``), for what is
    decided before there is an engine (connect arguments, the URL); an engine dbcrate does not
    know gets the defaults of :class:`Dialect` (:func:`dialect_for` refuses it afterwards)."""
    return DIALECTS.get(backend, Dialect)


def engine_family(name: str) -> str:
    """Normalise engine names (MariaDB is not MySQL: their type spellings and collations
    differ, so a restore from one into the other goes through the logical types)."""
    return name


def engine_name(dialect: Dialect) -> str:
    """The engine a dialect talks to, as recorded in manifests ("mariadb" for MariaDB)."""
    if getattr(dialect.sa_dialect, "is_mariadb", False):
        return "mariadb"
    return dialect.name


__all__ = ["DIALECTS", "Dialect", "dialect_class", "dialect_for", "engine_family", "engine_name"]
