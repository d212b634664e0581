"""Fixtures: real SQLite files, and real PostgreSQL / MariaDB databases created per test.

Server URLs come from DBCRATE_TEST_PG / DBCRATE_TEST_MYSQL (defaults: the local servers).
When a server is unreachable its tests are skipped, except under CI=true, where they fail:
CI must prove the server paths, not skip them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
# Chinook (its licence is in examples/chinook/LICENSE.md) is bundled so the suite needs nothing
# outside the repository
CHINOOK = ROOT / "examples" / "chinook"
DATASETS = ROOT / "examples"
PG_ADMIN = os.environ.get("DBCRATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MY_ADMIN = os.environ.get("DBCRATE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
ENGINES = ("sqlite", "postgresql", "mysql")

_available: dict[str, str | None] = {}


def _probe(kind: str) -> str | None:
    """None when the server answers, else the reason."""
    if kind not in _available:
        url = PG_ADMIN if kind == "postgresql" else MY_ADMIN
        try:
            eng = sa.create_engine(url, connect_args={"connect_timeout": 5})
            with eng.connect():
                pass
            eng.dispose()
            _available[kind] = None
        except Exception as exc:
            _available[kind] = str(exc).splitlines()[0]
    return _available[kind]


def require(kind: str) -> None:
    if kind == "sqlite":
        return
    why = _probe(kind)
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{kind} server unreachable under CI=true: {why}")
    pytest.skip(f"{kind} server unreachable: {why}")


def _admin(kind: str) -> sa.Engine:
    return sa.create_engine(PG_ADMIN if kind == "postgresql" else MY_ADMIN,
                            isolation_level="AUTOCOMMIT")


class Databases:
    """Creates empty databases of any engine and drops them at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.created: list[tuple[str, str]] = []

    def new(self, kind: str, name: str | None = None) -> str:
        require(kind)
        name = name or f"dbcrate_t_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            return f"sqlite:///{self.tmp_path / (name + '.db')}"
        eng = _admin(kind)
        with eng.connect() as c:
            if kind == "postgresql":
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                c.exec_driver_sql(f'CREATE DATABASE "{name}" ENCODING UTF8 TEMPLATE template0')
            else:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
                c.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        eng.dispose()
        self.created.append((kind, name))
        base = sa.engine.make_url(PG_ADMIN if kind == "postgresql" else MY_ADMIN)
        return base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for kind, name in self.created:
            eng = _admin(kind)
            with eng.connect() as c:
                if kind == "postgresql":
                    c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:
                    c.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            eng.dispose()


@pytest.fixture
def dbs(tmp_path: Path) -> Iterator[Databases]:
    d = Databases(tmp_path)
    yield d
    d.drop_all()


def _strip_database_lines(script: str) -> str:
    pattern = re.compile(r"^(DROP DATABASE|CREATE DATABASE|\\c |USE )", re.I)
    return "\n".join(line for line in script.splitlines() if not pattern.match(line))


def load_chinook(kind: str, dbs: Databases) -> str:
    """A database of ``kind`` holding Chinook, loaded with the engine's own client."""
    if kind == "sqlite":
        src = CHINOOK / "Chinook_Sqlite.sqlite"
        dst = dbs.tmp_path / f"chinook_{uuid.uuid4().hex[:6]}.db"
        shutil.copy(src, dst)
        return f"sqlite:///{dst}"
    url = dbs.new(kind)
    parsed = sa.engine.make_url(url)
    if kind == "postgresql":
        script = _strip_database_lines((CHINOOK / "Chinook_PostgreSql.sql").read_text())
        cmd = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", parsed.host or "127.0.0.1",
               "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres",
               "-d", parsed.database]
    else:
        script = _strip_database_lines((CHINOOK / "Chinook_MySql.sql").read_text())
        cmd = ["mariadb", "-h", parsed.host or "127.0.0.1", "-P", str(parsed.port or 3306),
               "-u", parsed.username or "root", parsed.database]
    subprocess.run(cmd, input=script.encode(), check=True, capture_output=True)
    return url


@pytest.fixture(scope="session")
def chinook_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """Session-wide Chinook databases per engine (read-only for the tests)."""
    holder = Databases(tmp_path_factory.mktemp("chinook"))
    cache: dict[str, str] = {}

    def get(kind: str) -> str:
        require(kind)
        if kind not in cache:
            cache[kind] = load_chinook(kind, holder)
        return cache[kind]

    yield get
    holder.drop_all()


def engine_of(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def run_sql(url: str, *statements: str) -> None:
    eng = engine_of(url)
    with eng.connect() as c:
        for stmt in statements:
            c.exec_driver_sql(stmt)
    eng.dispose()


def rows(url: str, sql: str) -> list[tuple]:
    """The rows of a query, as tuples."""
    eng = engine_of(url)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.exec_driver_sql(sql)]
    finally:
        eng.dispose()


def tables(url: str) -> set[str]:
    """The names of the database's tables (its default schema)."""
    eng = engine_of(url)
    try:
        return set(sa.inspect(eng).get_table_names())
    finally:
        eng.dispose()


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``dbcrate`` in this process (its ``main``): exit code, stdout, stderr."""
    import contextlib
    import io

    from dbcrate.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return (0 if code is None else int(str(code))), out.getvalue(), err.getvalue()



def failing_load_hook(table: str, message: str) -> str:
    """A hooks file whose ``transform`` raises ``ValueError(message)`` on the second batch of
    ``table`` that a restore's worker thread loads (the preflight, in the main thread, passes
    every batch): a load that fails halfway, the earlier batches already sent."""
    return f'''
import threading
seen = []
def transform(table, batch):
    if table == {table!r} and threading.current_thread().name.startswith("dbcrate-task"):
        seen.append(batch.num_rows)
        if len(seen) == 2:
            raise ValueError({message!r})
    return batch
'''
