"""Turning a user's database URL into an engine, with clear errors and no leaked password."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from dbcrate.dialects import Dialect, dialect_class, dialect_for
from dbcrate.dialects.base import CONNECT_TIMEOUT
from dbcrate.errors import ConnectionFailed

#: a bare scheme -> the driver dbcrate ships with
DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
__all__ = [
    "CONNECT_TIMEOUT", "DEFAULT_DRIVERS", "discard_if_empty", "new_sqlite_file", "open_engine",
    "parse_url", "public_url",
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


def discard_if_empty(path: Path | None) -> None:
    """Remove the SQLite file that :func:`new_sqlite_file` named if nothing was written to it
    (a dry run, a refused restore): no 0-byte database is left behind."""
    if path is not None and path.is_file() and path.stat().st_size == 0:
        path.unlink()


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
            poolclass=sa.pool.NullPool,
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
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unknown error"
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise ConnectionFailed(
            f"cannot connect to {shown}: {reason}",
            hint="check that the server is running, the database exists and the credentials "
            "are right",
        ) from None
    return engine, dialect, original
