"""Turning a user's database URL into an engine, with clear errors and no leaked password."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from dbcrate.dialects import Dialect, dialect_class, dialect_for
from dbcrate.dialects.base import CONNECT_TIMEOUT
from dbcrate.dialects.create_db import creation_for, database_missing
from dbcrate.errors import ConnectionFailed, UsageError

#: a bare scheme -> the driver dbcrate ships with
DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
__all__ = [
    "CONNECT_TIMEOUT", "DEFAULT_DRIVERS", "claim_new_sqlite_file", "create_database",
    "discard_if_empty", "discard_new_file", "new_sqlite_file", "open_engine", "parse_url",
    "public_url",
]


def parse_url(text: str) -> URL:
    """Parse a SQLAlchemy URL; a path to an existing file is taken as a SQLite database."""
    if "://" not in text:
        if text.endswith((".db", ".sqlite", ".sqlite3")) or Path(text).is_file():
            return sa.engine.make_url("sqlite:///" + os.path.abspath(text))
        raise ConnectionFailed(
            f"{text!r} is not a database URL",
            hint="use a SQLAlchemy URL such as sqlite:///app.db or "
            "postgresql://user@host/dbname",
        )
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise ConnectionFailed(
            "the database URL cannot be parsed",
            hint="use a SQLAlchemy URL such as postgresql://user@host/dbname",
        ) from None
    if url.drivername in DEFAULT_DRIVERS:
        url = url.set(drivername=DEFAULT_DRIVERS[url.drivername])
    return url


#: dbcrate's own journal table (restore/journal.py's JOURNAL_TABLE, not imported: connect must
#: not depend on restore): a database holding only it counts as empty for ``create``
JOURNAL_TABLE = "dbcrate_journal"

_SECRET_KEYS = ("pass", "secret", "token", "key", "cred")


def public_url(url: URL) -> str:
    """The URL without its password or secret query parameters: safe for manifests and logs."""
    query = {k: v for k, v in url.query.items() if not any(s in k.lower() for s in _SECRET_KEYS)}
    # URL.set(password=None) means "unchanged"; _replace really removes it
    return url._replace(password=None).set(query=query).render_as_string(hide_password=False)


def new_sqlite_file(text: str) -> Path | None:
    """The path of the SQLite database ``text`` names if that file does not exist yet (opening
    it will create it), else None: a restore that writes nothing removes it again."""
    try:
        url = parse_url(text)
    except ConnectionFailed:
        return None
    path = dialect_class(url.get_backend_name()).database_file(url)
    return None if path is None or path.exists() else path


def claim_new_sqlite_file(text: str) -> Path | None:
    """:func:`new_sqlite_file`, made by this call (``O_CREAT | O_EXCL``, mode 0644 as SQLite
    makes it, less the umask): a file another process made in between is not taken for one
    this restore made (a refused restore removes the file it made). SQLite opens the empty
    file as a new database."""
    path = new_sqlite_file(text)
    if path is None:
        return None
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError:  # made meanwhile, or a link; or no such directory (opening says why)
        return None
    return path


def discard_if_empty(path: Path | None) -> None:
    """Remove the SQLite file that :func:`new_sqlite_file` named if nothing was written to it
    (a dry run, a refused restore): no 0-byte database is left behind."""
    if path is not None and path.is_file() and path.stat().st_size == 0:
        path.unlink()


def discard_new_file(path: Path) -> None:
    """Remove the SQLite file that :func:`new_sqlite_file` named, with what SQLite keeps beside
    it (a restore refused after it wrote into a database it made: the user had no file there,
    and has none again)."""
    for name in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        name.unlink(missing_ok=True)


def _pool(cls: type[Dialect], read_only: bool) -> dict[str, Any]:
    """A connection per unit of work (every connection closed when returned), or - for a
    restore where the dialect allows (``pooled_sessions``) - a pool that keeps them open and
    tests each one as it is handed out, so that a session the server ended while it sat idle
    (an administrator's kill, a restart) is replaced instead of failing the next unit."""
    if read_only or not cls.pooled_sessions:
        return {"poolclass": sa.pool.NullPool}
    return {"poolclass": sa.pool.QueuePool, "pool_size": 4, "max_overflow": -1,
            "pool_pre_ping": True}


def open_engine(text: str, *, read_only: bool = False) -> tuple[Engine, Dialect, URL]:
    """Create and test an engine for ``text``.

    :param read_only: for dumps; a SQLite file must exist and is opened read-only.
    :raises ConnectionFailed: with a message that never contains the password.
    """
    url = original = parse_url(text)
    shown = public_url(url)
    cls = dialect_class(url.get_backend_name())
    url = cls.connect_url(url, read_only=read_only)
    connect_args = cls.connect_args(read_only=read_only)
    try:
        engine = sa.create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
            connect_args=connect_args,
            **_pool(cls, read_only),
        )
    except sa.exc.NoSuchModuleError:
        raise ConnectionFailed(
            f"no database driver for {url.drivername!r}",
            hint="supported: sqlite://, postgresql+psycopg://, mysql+pymysql://, mariadb+pymysql://",
        ) from None
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConnectionFailed(f"cannot use {shown}: {exc}") from None
    dialect = dialect_for(engine)
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        raise _not_connected(exc, url, shown, read_only=read_only) from None
    return engine, dialect, original


def _not_connected(exc: sa.exc.DBAPIError, url: URL, shown: str, *,
                   read_only: bool) -> ConnectionFailed:
    """The error of a connection that failed, its hint naming the likely fix: a database that
    does not exist (a restore can create it: ``create=True``), a database file that cannot be
    opened, or a server that cannot be reached or refused the credentials."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unknown error"
    if url.password:
        reason = reason.replace(str(url.password), "***")
    backend = url.get_backend_name()
    if exc.orig is not None and database_missing(backend, exc.orig):
        return ConnectionFailed(
            f"cannot connect to {shown}: the database {url.database} does not exist",
            hint="check the database name in the URL" if read_only else
            "restore with create=True to create it first, or create it yourself")
    path = dialect_class(backend).database_file(url)
    if path is not None:
        return ConnectionFailed(
            f"cannot open the database file {path}: {reason}",
            hint="check that the path names a database file (not a directory or another "
            "kind of file) and that you may read and write it and its directory")
    return ConnectionFailed(
        f"cannot connect to {shown}: {reason}",
        hint="check that the server is running, the database exists and the credentials "
        "are right")


def create_database(text: str, *, clean: bool, dry_run: bool) -> bool:
    """Create the database the URL ``text`` names, where it does not exist (``create=True``,
    pg_restore's ``-C``): ``CREATE DATABASE`` from the server's maintenance database
    (:mod:`dbcrate.dialects.create_db`), the name quoted by the dialect; an engine that keeps
    a database in a file creates it on the first connection (nothing to do here). Returns
    whether a database was created.

    :raises UsageError: the database exists and holds tables, and ``clean`` is not given
        (``create`` is for a new database); or a dry run, whose database does not exist yet;
        or the engine cannot create databases.
    :raises ConnectionFailed: the server cannot be reached or refuses ``CREATE DATABASE``
        (the message never holds the password).
    """
    url = parse_url(text)
    backend = url.get_backend_name()
    how = creation_for(backend)
    if how is None:
        raise UsageError(f"create=True: dbcrate cannot create a database of {backend!r}",
                         hint="create the database yourself, then restore without create=True")
    if how.maintenance is None or not url.database:
        _refuse_if_not_empty(text, clean, exists=_file_exists(url))
        return False
    engine, dialect, _ = open_engine(
        how.maintenance(url).render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text(how.exists_sql), {"name": url.database}).first()
            if exists is None and dry_run:
                raise UsageError(
                    f"the database {url.database} does not exist on {public_url(url)}: "
                    "create=True would create it, and a dry run changes nothing",
                    hint="restore without dry_run=True, or create the database first")
            if exists is None:
                _run_create(conn, how.create_sql(dialect.quote(url.database)), url)
                return True
    finally:
        engine.dispose()
    _refuse_if_not_empty(text, clean, exists=True)
    return False


def _run_create(conn: sa.Connection, statement: str, url: URL) -> None:
    try:
        conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unknown error"
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise ConnectionFailed(f"cannot create the database {url.database} on "
                               f"{public_url(url)}: {reason}",
                               hint="the user of the URL needs the right to create databases "
                               "(PostgreSQL: CREATEDB; MariaDB: CREATE), or create it yourself"
                               ) from None


def _file_exists(url: URL) -> bool:
    path = dialect_class(url.get_backend_name()).database_file(url)
    return path is not None and path.is_file() and path.stat().st_size > 0


def _refuse_if_not_empty(text: str, clean: bool, *, exists: bool) -> None:
    """``create`` means a new database: one that exists and holds tables is refused, unless
    ``clean`` (its tables are then dropped and recreated as without ``create``)."""
    if not exists or clean:
        return
    engine, dialect, url = open_engine(text)
    try:
        with engine.connect() as conn:
            held = [t for t in dialect.list_tables(conn) if t != JOURNAL_TABLE]
    finally:
        engine.dispose()
    if held:
        shown = ", ".join(held[:5]) + (" ..." if len(held) > 5 else "")
        raise UsageError(
            f"create=True: the database {url.database} on {public_url(url)} exists already and "
            f"holds {len(held)} {'table' if len(held) == 1 else 'tables'} ({shown})",
            hint="add clean=True to drop and recreate the archive's tables in it, restore "
            "without create=True, or name a new database")
