"""Creating a restore's target database (``RestoreOptions.create``, pg_restore's ``-C``), and
telling a database that does not exist from other connection failures: the engine specifics,
as data.

:data:`CREATORS` maps a URL's backend name (``url.get_backend_name()``) to a
:class:`DatabaseCreation`: where to connect to create a database (the server's maintenance
database), the statement that creates one (the name quoted by the dialect, never formatted in
raw), the query that says whether one exists (the name a bound parameter), and how the driver
says that the database of a URL does not exist. An engine that keeps a database in one file
(SQLite) has no maintenance database: connecting creates the file. Code outside ``dialects/``
looks an engine up here and never branches on its name (:func:`dbcrate.connect.create_database`
is the one caller that creates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import URL


def _never(exc: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class DatabaseCreation:
    """How one engine creates a database.

    :param maintenance: the URL of the target's server to connect to for ``CREATE DATABASE``
        (the same credentials); ``None``: the database is a file that connecting creates.
    :param create_sql: ``CREATE DATABASE`` for an identifier already quoted by the dialect.
    :param exists_sql: a query with the bound parameter ``:name`` that returns a row when the
        database exists.
    :param missing: whether a driver's connection error says the URL's database does not exist.
    """

    maintenance: Callable[[URL], URL] | None
    create_sql: Callable[[str], str] = lambda quoted: f"CREATE DATABASE {quoted}"
    exists_sql: str = ""
    missing: Callable[[BaseException], bool] = _never

    @property
    def server(self) -> bool:
        """Whether databases live on a server (created there), not in files."""
        return self.maintenance is not None


def _pg_missing(exc: BaseException) -> bool:
    """psycopg: ``FATAL: database "x" does not exist`` (SQLSTATE 3D000, invalid_catalog_name,
    which a failed connection does not always carry: the text is checked too)."""
    if getattr(exc, "sqlstate", None) == "3D000":
        return True
    text = str(exc)
    return "database" in text and "does not exist" in text


def _mysql_missing(exc: BaseException) -> bool:
    """PyMySQL/mysqlclient: error 1049, ``Unknown database 'x'``."""
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    return len(args) > 0 and args[0] == 1049


_POSTGRESQL = DatabaseCreation(
    # every PostgreSQL server has the maintenance database "postgres" (initdb creates it)
    maintenance=lambda url: url.set(database="postgres"),
    # template0 with an explicit encoding: independent of what template1 was given since
    create_sql=lambda quoted: f"CREATE DATABASE {quoted} ENCODING 'UTF8' TEMPLATE template0",
    exists_sql="SELECT 1 FROM pg_database WHERE datname = :name",
    missing=_pg_missing,
)

_MYSQL = DatabaseCreation(
    # MariaDB/MySQL accept a session without a default database (URL.set(database=None)
    # would mean "unchanged": _replace removes it)
    maintenance=lambda url: url._replace(database=None),
    create_sql=lambda quoted: f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4",
    exists_sql="SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name",
    missing=_mysql_missing,
)

#: backend name -> how that engine creates a database
CREATORS: dict[str, DatabaseCreation] = {
    "postgresql": _POSTGRESQL,
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "sqlite": DatabaseCreation(maintenance=None),
}


def creation_for(backend: str) -> DatabaseCreation | None:
    """The :class:`DatabaseCreation` of a backend name, ``None`` for an engine without one."""
    return CREATORS.get(backend)


def database_missing(backend: str, exc: BaseException) -> bool:
    """Whether the driver error ``exc`` of a connection to ``backend`` says that the URL's
    database does not exist (so that the hint can name ``create``)."""
    found = CREATORS.get(backend)
    return found is not None and found.missing(exc)


__all__ = ["CREATORS", "DatabaseCreation", "creation_for", "database_missing"]
