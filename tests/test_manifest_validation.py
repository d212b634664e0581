"""Whatever a manifest says, reading it is validated: every field is checked by type and range
when the manifest is read (src/dbcrate/manifest_check.py), and a bad one is refused as "not a
dbcrate archive" (NotAnArchive, exit 4) naming the field by its path, before any value reaches
Arrow, the DDL or a database.

A small good archive (two SQLite tables with every kind of schema object: a VARCHAR(n), a
CHAR(n), a NUMERIC(p,s), a BLOB, defaults of the three kinds, a unique constraint, an index, a
foreign key with an action, an AUTOINCREMENT counter; a storage with a file column) is written
once. Its manifest is walked, and every field - leaf or container - is replaced by values of the
wrong type, out of range, huge, negative, null, wrapped in a list or an object, or deleted, and
extra keys and items are added; the manifest digest is recomputed so the parser is reached. Each
mutated archive is listed, verified and restored into SQLite (a sample into PostgreSQL too): each
must either work or be refused with the archive's DbcrateError class - never another exception,
and never a table failing for a reason that is a dbcrate bug (a Python exception inside the
restore, which the report would otherwise only show as text).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dbcrate
from archive_tools import (
    MANIFEST,
    JsonPath,
    Member,
    get_at,
    json_paths,
    mutate,
    read_members,
    render,
    tar_bytes,
    with_manifest,
)
from dbcrate.cli import commands as dbcrate_cli
from dbcrate.errors import (
    ArchiveCorrupt,
    DbcrateError,
    NotAnArchive,
    NotPortable,
    UnsupportedFormatVersion,
)
from dbcrate.model.manifest import Manifest

from conftest import Databases

#: the restore's modules that turn an exception into a failed table's message
#: (``dbcrate.restore`` is the function, hence importlib)
RESTORE_MODULES = [importlib.import_module(f"dbcrate.restore.{name}")
                   for name in ("recreate", "existing", "preflight", "finish")]
EXAMPLES = int(os.environ.get("DBCRATE_MANIFEST_EXAMPLES", "120"))
PG_EXAMPLES = int(os.environ.get("DBCRATE_MANIFEST_PG_EXAMPLES", "25"))
ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)

#: what reading a hostile archive may raise: the archive is not one / is damaged / is newer
ARCHIVE_ERRORS: tuple[type[DbcrateError], ...] = (NotAnArchive, ArchiveCorrupt,
                                                  UnsupportedFormatVersion)
#: what a restore may raise besides: a valid manifest whose values the target cannot hold
RESTORE_ERRORS: tuple[type[DbcrateError], ...] = (*ARCHIVE_ERRORS, NotPortable)

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)


# ------------------------------------------------------------------------- the good archive
SOURCE_SQL = """
CREATE TABLE parent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(20) NOT NULL DEFAULT 'x',
    code CHAR(3) UNIQUE,
    price NUMERIC(10,2) DEFAULT 0,
    photo BLOB,
    at DATETIME DEFAULT CURRENT_TIMESTAMP,
    file TEXT);
CREATE TABLE child (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE,
    note TEXT DEFAULT (lower('A')),
    CONSTRAINT child_u UNIQUE (parent_id, note));
CREATE INDEX ix_child_note ON child(note);
INSERT INTO parent (name, code, price, photo, file) VALUES
    ('a', 'abc', 1.5, x'00ff', 'a/x.txt'), ('b', 'def', 2, NULL, 'y.txt');
INSERT INTO child VALUES (1, 1, 'n1'), (2, 2, NULL), (3, 1, 'n3');
"""


@dataclass(repr=False)
class Good:
    path: Path
    members: list[Member]
    manifest: dict[str, Any]

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Good({self.path.name})"

    def copy(self) -> Any:
        return json.loads(json.dumps(self.manifest))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Good:
    base = tmp_path_factory.mktemp("manifest_good")
    db = base / "source.db"
    con = sqlite3.connect(db)
    con.executescript(SOURCE_SQL)
    con.commit()
    con.close()
    media = base / "media"
    (media / "a").mkdir(parents=True)
    (media / "a" / "x.txt").write_text("hi")
    (media / "y.txt").write_text("yo")
    path = base / "good.crate"
    dbcrate.dump(f"sqlite:///{db}", path, storages=[str(media)], storages_basepath=str(base),
                 file_columns=["parent.file=media"])
    members = read_members(path)
    manifest = json.loads(next(m.data for m in members if m.name == MANIFEST))
    assert manifest["storage"]["file_columns"], "the storage section is exercised too"
    return Good(path, members, manifest)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifest_work")


# --------------------------------------------------------------------- mutating the manifest
#: values of every JSON type, at and beyond every bound the format has
HOSTILE: list[Any] = [
    None, True, False, 0, 1, -1, 3, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64,
    -(2**31), -(2**63), -(2**63) - 1, 10**30, -(10**30), 10**300, 0.0, 1.0, 1.5, -0.5, 1e308,
    math.inf, -math.inf, math.nan, "", " ", "0", "1", "yes", "true", "null", "x\x00y", "\x00",
    "a" * 5000, "CASCADE", "cascade", "always", "int64", "string", "decimal", "literal", "ok",
    "failed", "parquet", "arrow", "csv", "../x", "data/t0001/c000000.parquet", "0" * 64,
    [], [None], [1, 2], ["id"], [""], {}, {"kind": "string"}, {"a": 1}, [[[]]], {"x": {"y": {}}},
]

VALUE = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)),
                    max_size=2),
)
HOW = st.sampled_from(["set", "set", "set", "delete", "wrap_list", "wrap_object", "add_key",
                       "append"])


def _doc(good: Good, edits: list[tuple[JsonPath, str, Any]]) -> Any:
    doc = good.copy()
    for path, how, value in edits:
        try:
            get_at(doc, path)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced it
        doc = mutate(doc, path, how, value)
    return doc


def mutated(good: Good, edits: list[tuple[JsonPath, str, Any]]) -> bytes:
    """The good archive with its manifest edited and its digest recomputed."""
    return tar_bytes(with_manifest(good.members, _doc(good, edits)))


# ------------------------------------------------------------------------------ the oracle
#: exceptions a failed table may record: what the database or its driver said, or dbcrate's
#: own errors; anything else inside a restore is a dbcrate bug hidden in the report's text
DRIVER_ERRORS: tuple[type[BaseException], ...] = (sa.exc.DBAPIError, sqlite3.Error,
                                                  DbcrateError)


@contextlib.contextmanager
def catching_table_failures() -> Iterator[list[BaseException]]:
    """Record every exception restore turns into a failed table (its messages go through
    ``failure_message``/``driver_message``)."""
    seen: list[BaseException] = []
    real_failure, real_driver = dbcrate.errors.failure_message, dbcrate.errors.driver_message

    def failure(exc: BaseException) -> str:
        seen.append(exc)
        return real_failure(exc)

    def driver(exc: BaseException) -> str:
        seen.append(exc)
        return real_driver(exc)

    with contextlib.ExitStack() as stack:
        for module in RESTORE_MODULES:
            for name, fake in (("failure_message", failure), ("driver_message", driver)):
                if hasattr(module, name):
                    stack.enter_context(mock.patch.object(module, name, fake))
        yield seen


#: a Python exception raised inside these packages is the driver refusing a value (sqlite3
#: raises OverflowError for an integer beyond 64 bits: a MariaDB unsigned AUTO_INCREMENT value
#: does not fit a SQLite counter), not a dbcrate bug
DRIVER_PACKAGES = ("/sqlalchemy/", "/psycopg/", "/pymysql/", "/sqlite3/")


def _raised_by_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and any(p in last.tb_frame.f_code.co_filename
                                    for p in DRIVER_PACKAGES)


def _bugs(seen: list[BaseException]) -> list[BaseException]:
    import psycopg

    allowed = (*DRIVER_ERRORS, psycopg.Error)
    return [e for e in seen if not isinstance(e, allowed) and not _raised_by_driver(e)]


def outcome(data: bytes, work: Path, target: str) -> str:
    """Open, list, verify and restore one input through the library; a short description of
    what happened. Fails the test on any exception but the allowed DbcrateErrors."""
    path = work / f"in-{uuid.uuid4().hex[:8]}.crate"
    path.write_bytes(data)
    try:
        refused: DbcrateError | None = None  # when opening (restore opens it the same way)
        try:
            archive = dbcrate.open_archive(path)
        except DbcrateError as exc:
            assert isinstance(exc, ARCHIVE_ERRORS), f"{type(exc).__name__}: {exc}"
            refused = exc
        else:
            with archive:
                for entry in archive.tables:  # what ls shows
                    _ = (entry.name, entry.rows, entry.size, entry.status,
                         [(c.name, c.type.describe(), c.nullable) for c in entry.schema.columns])
                try:  # (a restore without storages_to does not read the storages: it may work)
                    archive.verify()
                except DbcrateError as exc:
                    assert isinstance(exc, ARCHIVE_ERRORS), f"{type(exc).__name__}: {exc}"
                    assert exc.message
        with catching_table_failures() as seen:
            try:
                report = dbcrate.restore(path, target, clean=True)
            except DbcrateError as exc:
                assert isinstance(exc, RESTORE_ERRORS), f"{type(exc).__name__}: {exc}"
                if refused is not None:
                    assert type(exc) is type(refused), (exc, refused)
                return f"refused: {type(exc).__name__}"
        assert refused is None, f"opening refused ({refused}) but restore did not"
        bugs = _bugs(seen)
        assert not bugs, f"a table failed for a Python exception: {bugs!r}"
        return "ok" if report.ok else "tables failed (database refused)"
    finally:
        path.unlink(missing_ok=True)


@dataclass
class Run:
    argv: list[str]
    rc: int
    stderr: str


def cli(*argv: str) -> Run:
    """``dbcrate`` in this process; any exception but SystemExit escaping main() fails."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            dbcrate_cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return Run(list(argv), 0 if code is None else code, err.getvalue())


def assert_clean(run: Run, codes: set[int]) -> None:
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run
    assert run.rc in codes, run


@pytest.fixture(autouse=True)
def _wide_console() -> Iterator[None]:
    saved = (dbcrate_cli.err._width, dbcrate_cli.out._width)
    dbcrate_cli.err._width = dbcrate_cli.out._width = 10_000
    yield
    dbcrate_cli.err._width, dbcrate_cli.out._width = saved


# ------------------------------------------------------------------ every field, every kind
#: the deterministic sweep's replacements: every JSON type, and integers at every bound
SWEEP_VALUES: list[Any] = [None, True, False, 0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63,
                           2**64 - 1, 10**30, -(10**30), 1.5, "", "yes", "x\x00y", [], [1], {},
                           {"a": 1}]
SWEEP_SHAPES = ["delete", "wrap_list", "wrap_object", "add_key", "append"]


def sweep(good: Good) -> Iterator[tuple[JsonPath, str, Any]]:
    """Every (path, mutation, value) of the deterministic sweep."""
    for path in json_paths(good.manifest):
        for value in SWEEP_VALUES:
            yield path, "set", value
        for how in SWEEP_SHAPES:
            yield path, how, {"x": 1}


def _names_the_field(good: Good, path: JsonPath, how: str, value: Any) -> bool:
    """Whether the sweep's mutation gives a leaf of a fixed type another type, null, or deletes
    it from its object: then a refusal must name the field (format and format_version are
    checked before the fields, as "not a dbcrate archive" / "no valid format version")."""
    if path[0] in ("format", "format_version"):
        return False
    original = get_at(good.manifest, path)
    if isinstance(original, dict | list):
        return False
    if how == "delete":
        return isinstance(get_at(good.manifest, path[:-1]), dict)
    return how == "set" and (value is None or type(value) is not type(original))


@pytest.fixture(scope="module")
def accepted(good: Good, work: Path) -> list[tuple[JsonPath, str, Any]]:
    """The sweep: every mutation is opened and verified; the ones the reader accepts (the
    only ones whose values can reach a restore) are returned for the restore sweeps."""
    out = []
    counts: dict[str, int] = {}
    file = work / "sweep.crate"
    for path, how, value in sweep(good):
        file.write_bytes(mutated(good, [(path, how, value)]))
        result = "ok"
        try:
            with dbcrate.open_archive(file) as archive:
                out.append((path, how, value))
                archive.verify()
        except DbcrateError as exc:
            assert isinstance(exc, ARCHIVE_ERRORS), (render(path), how, value, exc)
            result = type(exc).__name__
            if isinstance(exc, NotAnArchive) and _names_the_field(good, path, how, value):
                assert render(path) in exc.message, (render(path), how, value, exc.message)
        counts[result] = counts.get(result, 0) + 1
    # the sweep reaches both sides: most mutations refused, the harmless ones accepted
    assert counts.get("NotAnArchive", 0) > 1000 and counts.get("ok", 0) > 100, counts
    return out


def test_sweep_every_field_every_kind_of_value(accepted: list[tuple[JsonPath, str, Any]]) -> None:
    """Each node of the manifest (leaf or container) replaced by a value of each JSON type
    (null, booleans, negative, at and past every integer bound, a float, strings, lists,
    objects), wrapped in a list or an object, given an extra key or item, or deleted: opening
    and verifying works or raises the archive's error class, and a leaf given another type,
    null, or deleted is refused naming its path (the ``accepted`` fixture asserts it)."""
    assert accepted
    assert all(render(p) for p, _, _ in accepted)


def _restore_accepted(good: Good, work: Path, accepted: list[tuple[JsonPath, str, Any]],
                      target: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    seen: set[bytes] = set()
    for edit in accepted:
        data = mutated(good, [edit])
        # a restore sees the parsed manifest only: mutations that parse alike (an unknown key
        # added, an informational field changed) restore alike, so each is restored once
        raw = next(m.data for m in with_manifest(good.members, _doc(good, [edit]))
                   if m.name == MANIFEST)
        parsed = Manifest.from_json(raw).to_json()
        if parsed in seen:
            continue
        seen.add(parsed)
        try:
            result = outcome(data, work, target)
        except AssertionError as exc:
            raise AssertionError(f"{render(edit[0])} {edit[1]} {edit[2]!r}: {exc}") from None
        counts[result] = counts.get(result, 0) + 1
    return counts


def test_sweep_accepted_mutations_restore_into_sqlite(good: Good, work: Path,
                                                      accepted: list[tuple[JsonPath, str, Any]]
                                                      ) -> None:
    """Every mutation the reader accepts is restored into SQLite: it works, or is refused with
    a DbcrateError of the archive, or a table fails because the database refused a value;
    never a Python exception (TypeError, OverflowError ...) in the restore."""
    counts = _restore_accepted(good, work, accepted, f"sqlite:///{work / 'sweep.db'}")
    assert counts.get("ok", 0) > 20, counts


@pytest.mark.postgresql
def test_sweep_accepted_mutations_restore_into_postgresql(good: Good, work: Path, dbs: Databases,
                                                          accepted: list[tuple[JsonPath, str, Any]]
                                                          ) -> None:
    """The same into PostgreSQL (where a column length of 10**30 used to crash the preflight
    with a TypeError): the values the reader lets through are within what the restore
    handles."""
    counts = _restore_accepted(good, work, accepted, dbs.new("postgresql"))
    assert counts.get("ok", 0) > 20, counts


def test_cli_refuses_a_huge_length_on_postgresql(good: Good, work: Path, dbs: Databases) -> None:
    """The reported case, as a real process: a column length of 10**30 with a matching digest;
    ``dbcrate restore`` into PostgreSQL, ``verify`` and ``ls`` exit 4 naming the field, with no
    traceback and no table created."""
    doc = good.copy()
    doc["tables"][1]["schema"]["columns"][1]["type"]["length"] = 10**30
    path = work / "length.crate"
    path.write_bytes(tar_bytes(with_manifest(good.members, doc)))
    url = dbs.new("postgresql")
    for argv in (["restore", str(path), url], ["verify", str(path)], ["ls", str(path)]):
        proc = subprocess.run([sys.executable, "-m", "dbcrate", *argv], env=ENV,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == NotAnArchive.exit_code == 4, proc
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc
        flat = " ".join(proc.stderr.split())
        assert ("tables[1].schema.columns[1].type.length: 10**30 is out of range 0..2**31-1"
                in flat), flat
    engine = sa.create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


# ------------------------------------------------------------------ named refusals, exactly
COL = ("tables", 1, "schema", "columns")  # the table "parent"
CASES: list[tuple[JsonPath, Any, str]] = [
    ((*COL, 1, "type", "length"), 10**30,
     "tables[1].schema.columns[1].type.length: 10**30 is out of range 0..2**31-1"),
    ((*COL, 1, "type", "length"), 2**31, "type.length: 2**31 is out of range 0..2**31-1"),
    ((*COL, 3, "type", "precision"), -1, "columns[3].type.precision: -1 is out of range"),
    ((*COL, 3, "type", "scale"), 2**63, "columns[3].type.scale: 2**63 is out of range"),
    ((*COL, 1, "type", "length"), [160], "type.length: must be an integer, not a list"),
    ((*COL, 1, "type", "fixed"), 1, "columns[1].type.fixed: must be true or false, not 1"),
    ((*COL, 1, "type", "kind"), "varchar", "columns[1].type.kind: 'varchar' is not one of"),
    ((*COL, 1, "nullable"), "yes", "columns[1].nullable: must be true or false, not 'yes'"),
    ((*COL, 1, "nullable"), 0, "columns[1].nullable: must be true or false, not 0"),
    ((*COL, 1, "name"), "", "columns[1].name: '' is not a name"),
    ((*COL, 1, "name"), "na\x00me", "columns[1].name: 'na\\x00me' is not a name"),
    ((*COL, 1, "default", "kind"), "sql", "columns[1].default.kind: 'sql' is not one of"),
    ((*COL, 1, "identity"), "sometimes", "columns[1].identity: 'sometimes' is not one of"),
    (("tables", 0, "chunks", 0, "rows"), 2**63, "tables[0].chunks[0].rows: 2**63 is out of "
                                                "range 0..2**63-1"),
    (("tables", 0, "chunks", 0, "rows"), -1, "tables[0].chunks[0].rows: -1 is out of range"),
    (("tables", 0, "chunks", 0, "rows"), True, "chunks[0].rows: must be an integer, not a "
                                               "boolean"),
    (("tables", 0, "chunks", 0, "rows"), 3.0, "chunks[0].rows: must be an integer, not a number"),
    (("tables", 0, "chunks", 0, "size"), "761", "chunks[0].size: must be an integer, not a "
                                                "string"),
    (("tables", 0, "chunks", 0, "sha256"), "A" * 64, "chunks[0].sha256: 'AAAA"),
    (("tables", 0, "rows"), -3, "tables[0].rows: -3 is out of range"),
    (("tables", 0, "bytes"), 10**30, "tables[0].bytes: 10**30 is out of range"),
    (("tables", 0, "status"), "maybe", "tables[0].status: 'maybe' is not one of 'ok', 'failed'"),
    (("tables", 0, "schema", "indexes", 0), "child_u", "indexes[0]: must be an object, not a "
                                                       "string"),
    (("tables", 0, "schema", "indexes", 0, "unique"), "true", "indexes[0].unique: must be true"),
    (("tables", 0, "schema", "indexes", 0, "name"), "", "indexes[0].name: '' is not a name"),
    (("tables", 0, "schema", "foreign_keys", 0, "on_delete"), "EXPLODE",
     "foreign_keys[0].on_delete: 'EXPLODE' is not one of"),
    (("tables", 0, "schema", "foreign_keys", 0, "ref_table"), None,
     "foreign_keys[0].ref_table: must not be null"),
    (("tables", 0, "schema", "primary_key", 0), 7, "schema.primary_key[0]: must be a string"),
    (("tables", 1, "schema", "next_value"), 2**64, "tables[1].schema.next_value: 2**64 is out of "
                                                   "range -2**63..2**64-1"),
    (("tables", 1, "schema", "options"), ["engine"], "tables[1].schema.options: must be an object"),
    (("complete",), 1, "complete: must be true or false, not 1"),
    (("complete",), "yes", "complete: must be true or false, not 'yes'"),
    (("data_format",), [], "data_format: must be a string, not a list"),
    (("source",), "sqlite", "source: must be an object, not a string"),
    (("source", "engine"), 5, "source.engine: must be a string, not an integer"),
    (("tables",), {"child": {}}, "tables: must be a list, not an object"),
    (("storage", "roots", 0, "files"), -5, "storage.roots[0].files: -5 is out of range"),
    (("storage", "index", "size"), 2**64, "storage.index.size: 2**64 is out of range"),
    (("storage", "file_check", "missing_examples"), [1],
     "storage.file_check.missing_examples[0]: must be a string, not an integer"),
    (("storage", "exclude"), [{"glob": "*"}], "storage.exclude[0]: must be a string"),
]


@pytest.mark.parametrize(("path", "value", "fragment"), CASES,
                         ids=[f"{render(p)}={v!r}"[:60] for p, v, _ in CASES])
def test_hostile_field_is_refused_naming_it(path: JsonPath, value: Any, fragment: str, good: Good,
                                            work: Path) -> None:
    """Each hostile value is refused when the manifest is read: NotAnArchive naming the field
    and what is wrong; ``ls``, ``verify`` and ``restore`` exit 4 without a traceback and create
    nothing."""
    file = work / "case.crate"
    doc = good.copy()
    if path[-2:] == ("file_check", "missing_examples"):
        doc["storage"]["file_check"]["missing"] = 1  # so that ls would print the examples
    file.write_bytes(tar_bytes(with_manifest(good.members, mutate(doc, path, "set", value))))
    with pytest.raises(NotAnArchive) as caught:
        dbcrate.open_archive(file)
    assert fragment in caught.value.message, caught.value.message
    target = work / "case.db"
    target.unlink(missing_ok=True)
    for argv in (["ls", str(file)], ["verify", str(file)],
                 ["restore", str(file), f"sqlite:///{target}"]):
        run = cli(*argv)
        assert_clean(run, {NotAnArchive.exit_code})
        assert fragment in " ".join(run.stderr.split()), run
    assert not target.exists() or not sqlite3.connect(target).execute(
        "SELECT name FROM sqlite_master").fetchall()


def test_missing_required_field_is_named(good: Good, work: Path) -> None:
    """A required field deleted: refused as missing, by its path."""
    for path in [("tables", 0, "schema", "columns"), ("tables", 1, "chunks", 0, "sha256"),
                 ("tables", 1, "schema", "columns", 2, "type", "kind"), ("storage", "index")]:
        file = work / "missing.crate"
        file.write_bytes(tar_bytes(with_manifest(good.members,
                                                 mutate(good.copy(), path, "delete"))))
        with pytest.raises(NotAnArchive, match=re.escape(f"{render(path)}: is missing")):
            dbcrate.open_archive(file)


def test_chunk_totals_beyond_64_bits_are_refused(good: Good, work: Path) -> None:
    """Each chunk's row count is in range, but their sum is not: refused before anything adds
    them up (ls shows the total)."""
    doc = good.copy()
    chunk = doc["tables"][0]["chunks"][0]
    doc["tables"][0]["chunks"] = [dict(chunk, rows=2**62), dict(chunk, rows=2**62,
                                                                member="data/t0001/c000001.parquet")]
    del doc["tables"][0]["rows"]  # (optional: the table's own total is checked by itself)
    file = work / "sum.crate"
    file.write_bytes(tar_bytes(with_manifest(good.members, doc)))
    with pytest.raises(NotAnArchive, match=re.escape("tables[0].chunks: the chunks' rows add up "
                                                     "to 2**63, more than 2**63-1")):
        dbcrate.open_archive(file)


def test_good_manifest_and_unknown_keys_are_accepted(good: Good, work: Path) -> None:
    """Control: the good manifest, and one with unknown keys everywhere (forward
    compatibility: a reader ignores keys it does not know), open, verify and restore."""
    doc = good.copy()
    for path in json_paths(doc):
        node = get_at(doc, path)
        if isinstance(node, dict):
            node["zz_future"] = {"nested": [1, 2]}
    for data in (good.path.read_bytes(), tar_bytes(with_manifest(good.members, doc))):
        assert outcome(data, work, f"sqlite:///{work / 'control.db'}") == "ok"


@SETTINGS
@given(data=st.data())
def test_property_mutated_manifest_sqlite(good: Good, work: Path, data: st.DataObject) -> None:
    """Property: one to three mutations anywhere in the manifest; ls, verify and restore into
    SQLite work or refuse with the archive's error class, never another exception."""
    paths = json_paths(good.manifest)
    edits = data.draw(st.lists(st.tuples(st.sampled_from(paths), HOW, VALUE), min_size=1,
                               max_size=3))
    target = f"sqlite:///{work / 'target.db'}"
    data_ = mutated(good, edits)
    event(outcome(data_, work, target))
    file = work / "cli.crate"  # the CLI too: an exit code of the table, never a traceback
    file.write_bytes(data_)
    for argv in (["ls", str(file)], ["verify", str(file)],
                 ["restore", "--clean", str(file), target]):
        assert_clean(cli(*argv), {0, 4, 5, 6, 9, 10})


@pytest.mark.postgresql
def test_property_mutated_manifest_postgresql(good: Good, work: Path, dbs: Databases) -> None:
    """The same property restoring into PostgreSQL, for a sample (one database, ``clean``)."""
    url = dbs.new("postgresql")

    @settings(SETTINGS, max_examples=PG_EXAMPLES)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        paths = json_paths(good.manifest)
        edits = data.draw(st.lists(st.tuples(st.sampled_from(paths), HOW, VALUE), min_size=1,
                                   max_size=2))
        event(outcome(mutated(good, edits), work, url))

    run()
