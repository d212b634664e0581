"""Capture a PostgreSQL database's native schema with pg_dump, as pgcopydb does.

Design: one ``pg_dump -Fc --schema-only`` into a private temporary file, then one
``pg_restore -f - --section=pre-data`` and one ``--section=post-data`` of that file. Each
section's script is split at pg_dump's entry headers (``-- Name: x; Type: y; Schema: z;
Owner: o``) into one :class:`NativeObject` per archive entry. Why this way:

- the server's own dumper knows every object kind, its dependencies and the order to create
  them in; re-rendering from the catalogs would have to re-implement pg_dump;
- asking pg_restore for the sections separately gives each entry its exact section (pg_restore
  -l does not print sections, and comments and grants follow their parent's section);
- two pg_restore calls instead of one per entry (``-L``) keep the capture fast on schemas of
  thousands of objects.

The data section is not taken from pg_dump (dbcrate copies the rows itself, and
``--schema-only`` drops sequence values): the values of the captured sequences are read from
``pg_sequences`` in the same call and written as pg_dump writes them (``SEQUENCE SET``,
``SELECT pg_catalog.setval(...)``); each populated materialized view gets a post-data
``MATERIALIZED VIEW DATA`` entry (``REFRESH MATERIALIZED VIEW``), last, as pg_restore does.

The SET statements pg_dump writes between entries (``default_tablespace``,
``default_table_access_method``) are kept at the start of the entry they apply to; the script's
preamble is not kept: a restore runs :data:`SESSION_SETUP` once per session instead.
The password never reaches a process list or a process's environment: it goes to pg_dump in a
password file (``PGPASSFILE``, mode 0600 in a private temporary directory, removed after).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from glob import glob
from pathlib import Path

import sqlalchemy as sa

from dbcrate.errors import DatabaseError, UsageError
from dbcrate.model.native import NativeObject, NativeSchema, Section

#: what a session runs before the objects' SQL (pg_dump's preamble, minus the timeouts and
#: the client encoding, which belong to the restoring session)
SESSION_SETUP: tuple[str, ...] = (
    "SET standard_conforming_strings = on",
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SET check_function_bodies = false",
    "SET xmloption = content",
    "SET client_min_messages = warning",
    "SET row_security = off",
)

#: dbcrate's own table, never part of a captured schema (restore/journal.py's JOURNAL_TABLE)
JOURNAL_TABLE = "dbcrate_journal"

_HEADER = re.compile(
    r"^--\n-- (?:Data for )?Name: (?P<name>.*?); Type: (?P<kind>.*?); Schema: (?P<schema>.*?);"
    r" Owner: (?P<owner>.*?)(?:; Tablespace: .*?)?\n--\n", re.M)
_PSQL_META = re.compile(r"^\\(?:restrict|unrestrict)\b.*$", re.M)
# the kinds whose header name is "table object" (pg_dump names them after their table)
_ON_TABLE = {"CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "RULE", "POLICY", "CHECK CONSTRAINT",
             "DEFAULT"}


def find_tool(name: str, server_major: int | None = None) -> tuple[str, int]:
    """The path and major version of a PostgreSQL client tool (``pg_dump``, ``pg_restore``):
    the newest of PATH's and ``/usr/lib/postgresql/*/bin``'s. Raises :class:`UsageError` when
    none is found, or when the newest is older than ``server_major`` (pg_dump refuses to dump
    a newer server)."""
    found: list[tuple[int, str]] = []
    candidates = [shutil.which(name), *sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            major = _tool_major(path)
            if major is not None:
                found.append((major, path))
    if not found:
        raise UsageError(f"{name} was not found (PATH, /usr/lib/postgresql/*/bin)",
                         hint="install the PostgreSQL client tools (e.g. postgresql-client), "
                              "or dump with no_native_schema=True (the portable schema only)")
    major, path = max(found)
    if server_major is not None and major < server_major:
        raise UsageError(f"{name} {major} ({path}) is older than the server ({server_major})",
                         hint=f"install the PostgreSQL {server_major} client tools, or dump "
                              "with no_native_schema=True (the portable schema only)")
    return path, major


def _tool_major(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else None


def pg_environment(url: sa.engine.URL, private_dir: Path | None = None) -> dict[str, str]:
    """The environment that points libpq tools at ``url``: PGHOST, PGPORT, PGUSER and
    PGDATABASE, and for a password PGPASSFILE, a file written (0600) into ``private_dir``:
    never an argument or an environment variable, which other processes could read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    pairs = {"PGHOST": url.host, "PGPORT": url.port, "PGUSER": url.username,
             "PGDATABASE": url.database}
    env.update({k: str(v) for k, v in pairs.items() if v is not None})
    for key, value in url.query.items():
        if key == "sslmode" and isinstance(value, str):
            env["PGSSLMODE"] = value
    if url.password is not None:
        if private_dir is None:
            raise ValueError("a password needs a private directory for its password file")
        passfile = private_dir / "pgpass"
        escaped = str(url.password).replace("\\", "\\\\").replace(":", "\\:")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"*:*:*:*:{escaped}\n")
        env["PGPASSFILE"] = str(passfile)
    return env


def capture(url: str | sa.engine.URL, *, schemas_include: Sequence[str] = (),
            schemas_exclude: Sequence[str] = (), tables: Sequence[str] = (),
            exclude_tables: Sequence[str] = (), snapshot: str | None = None) -> NativeSchema:
    """Every object of the database at ``url`` as pg_dump defines it, in pg_restore's order.

    ``schemas_include``/``schemas_exclude``/``tables``/``exclude_tables`` are pg_dump's
    ``-n``/``-N``/``-t``/``-T`` patterns; ``snapshot`` an exported snapshot to read in (the
    dump's, so that schema and rows agree). Raises :class:`UsageError` when pg_dump is missing
    or older than the server, :class:`DatabaseError` when pg_dump or pg_restore fails.
    """
    sa_url = sa.engine.make_url(url)
    started = time.monotonic()
    engine = sa.create_engine(sa_url)
    try:
        with engine.connect() as conn:
            num = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
            version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
            dump_path, major = find_tool("pg_dump", num // 10000)
            restore_path, _ = find_tool("pg_restore", num // 10000)
            args = [dump_path, "-Fc", "--schema-only", "--no-password"]
            args += [f"--schema={p}" for p in schemas_include]
            args += [f"--exclude-schema={p}" for p in schemas_exclude]
            args += [f"--table={p}" for p in tables]
            args += [f"--exclude-table={p}" for p in (*exclude_tables, f"*.{JOURNAL_TABLE}")]
            if snapshot:
                args.append(f"--snapshot={snapshot}")
            with tempfile.TemporaryDirectory(prefix="dbcrate-pg-") as tmp:
                env = pg_environment(sa_url, Path(tmp))
                archive = str(Path(tmp) / "schema.dump")
                _run([*args, "-f", archive], env)
                pre = split_script(_run([restore_path, "-f", "-", "--section=pre-data", archive],
                                        env), "pre-data")
                post = split_script(_run([restore_path, "-f", "-", "--section=post-data",
                                          archive], env), "post-data")
            data = _sequence_values(conn, pre)
            post += _matview_data(conn, pre)
    finally:
        engine.dispose()
    return NativeSchema(engine="postgresql", server_version=version,
                        objects=tuple(pre + data + post), tool=f"pg_dump {major}",
                        settings={"capture_seconds": f"{time.monotonic() - started:.3f}"})


def _run(args: list[str], env: dict[str, str]) -> str:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise DatabaseError(f"{Path(args[0]).name} could not be run: {exc}") from exc
    if done.returncode != 0:
        raise DatabaseError(f"{Path(args[0]).name} failed: {done.stderr.strip()[:2000]}",
                            hint="check the connection and the role's privileges")
    return done.stdout


def split_script(script: str, section: Section) -> list[NativeObject]:
    """One :class:`NativeObject` per entry of a pg_restore script, from its entry headers.

    The SET statements between entries go to the start of the entry that follows them."""
    script = _PSQL_META.sub("", script)
    heads = list(_HEADER.finditer(script))
    out: list[NativeObject] = []
    pending: list[str] = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(script)
        body_lines: list[str] = []
        sets: list[str] = []
        for line in script[head.end():end].splitlines():
            (sets if line.startswith("SET ") else body_lines).append(line)
        body = "\n".join(body_lines).strip()
        body = re.sub(r"\n*--\n-- PostgreSQL database dump complete\n--\s*$", "", body).strip()
        sql = "\n".join([*pending, body]).strip()
        pending = sets
        if not body:
            continue
        out.append(_object(head, section, sql))
    return out


def _object(head: re.Match[str], section: Section, sql: str) -> NativeObject:
    kind, name = head["kind"], head["name"]
    schema = None if head["schema"] == "-" else head["schema"]
    owner = None if head["owner"] in ("-", "") else head["owner"]
    table = None
    if kind in _ON_TABLE and " " in name:
        table, name = name.split(" ", 1)
    return NativeObject(kind=kind, name=name, section=section, sql=sql, schema=schema,
                        table=table, owner=owner)


def _sequence_values(conn: sa.Connection, objects: Iterable[NativeObject]) -> list[NativeObject]:
    out: list[NativeObject] = []
    for o in objects:
        if o.kind != "SEQUENCE" or o.schema is None:
            continue
        row = conn.exec_driver_sql(
            "SELECT format('SELECT pg_catalog.setval(%%L, %%s, %%s);',"
            " quote_ident(schemaname) || '.' || quote_ident(sequencename),"
            " coalesce(last_value, start_value),"
            " CASE WHEN last_value IS NULL THEN 'false' ELSE 'true' END)"
            " FROM pg_catalog.pg_sequences WHERE schemaname = %(s)s AND sequencename = %(n)s",
            {"s": o.schema, "n": o.name}).first()
        if row is not None:
            out.append(NativeObject(kind="SEQUENCE SET", name=o.name, section="data",
                                    sql=str(row[0]), schema=o.schema, owner=o.owner))
    return out


def _matview_data(conn: sa.Connection, objects: Iterable[NativeObject]) -> list[NativeObject]:
    out: list[NativeObject] = []
    for o in objects:
        if o.kind != "MATERIALIZED VIEW" or o.schema is None:
            continue
        sql = conn.exec_driver_sql(
            "SELECT format('REFRESH MATERIALIZED VIEW %%I.%%I;', schemaname, matviewname)"
            " FROM pg_catalog.pg_matviews"
            " WHERE schemaname = %(s)s AND matviewname = %(n)s AND ispopulated",
            {"s": o.schema, "n": o.name}).scalar()
        if sql:
            out.append(NativeObject(kind="MATERIALIZED VIEW DATA", name=o.name,
                                    section="post-data", sql=str(sql), schema=o.schema,
                                    owner=o.owner))
    return out

