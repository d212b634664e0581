"""Registry of database engines: SQLAlchemy dialect name -> :class:`Dialect` subclass."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbcrate.dialects.base import Dialect
from dbcrate.errors import ConnectionFailed


# each imports its engine's module when first asked for (a plain import statement:
# tests/test_security.py, SE-07): a PostgreSQL dump need not load MariaDB's driver and numpy
def _postgresql() -> type[Dialect]:
    from dbcrate.dialects.postgresql import PostgreSQL
    return PostgreSQL


def _mysql() -> type[Dialect]:
    from dbcrate.dialects.mysql import MySQL
    return MySQL


def _sqlite() -> type[Dialect]:
    from dbcrate.dialects.sqlite import SQLite
    return SQLite


#: SQLAlchemy dialect name -> what returns its Dialect class
DIALECTS: dict[str, Callable[[], type[Dialect]]] = {
    "postgresql": _postgresql,
    "mysql": _mysql,
    "mariadb": _mysql,
    "sqlite": _sqlite,
}


def dialect_for(engine: Engine) -> Dialect:
    """The dbcrate dialect of an engine; an unknown engine names the supported ones."""
    try:
        cls = DIALECTS[engine.dialect.name]()
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
    load = DIALECTS.get(backend)
    return load() if load is not None else Dialect


def driver_errors() -> tuple[type[BaseException], ...]:
    """What database drivers raise: SQLAlchemy's wrapper and the errors of each engine's
    driver used directly (:attr:`Dialect.driver_errors`), of the dialects imported so far: a
    driver is used directly only by its dialect, so one not imported raises nothing (and a
    SQLite dump need not import psycopg and PyMySQL to catch their errors)."""
    found: list[type[BaseException]] = [sa.exc.DBAPIError]
    todo = list(Dialect.__subclasses__())
    while todo:
        cls = todo.pop()
        found.extend(e for e in cls.driver_errors if e not in found)
        todo.extend(cls.__subclasses__())
    return tuple(found)


def engine_family(name: str) -> str:
    """Normalise engine names (MariaDB is not MySQL: their type spellings and collations
    differ, so a restore from one into the other goes through the logical types)."""
    return name


def engine_name(dialect: Dialect) -> str:
    """The engine a dialect talks to, as recorded in manifests ("mariadb" for MariaDB)."""
    if getattr(dialect.sa_dialect, "is_mariadb", False):
        return "mariadb"
    return dialect.name


__all__ = ["DIALECTS", "Dialect", "dialect_class", "dialect_for", "driver_errors", "engine_family",
           "engine_name"]
