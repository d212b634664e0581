"""Fuzzing the archive reader (hypothesis): mutated archives are either read or refused with a
DbcrateError - any other exception, a hang or a crash is a bug.

Three mutators, applied to small good archives of a tiny SQLite database:

1. bytes of the whole file: flip bits, truncate, insert, duplicate or zero ranges, overwrite
   (offsets anywhere, and near the end where the manifest is);
2. the manifest (and the marker) as JSON: random values of random types put in random fields,
   fields deleted or added, list items duplicated; manifest.sha256 recomputed so the manifest
   parser itself is exercised;
3. one data member (its decompressed text for the text formats, its bytes for Parquet and
   Arrow), with its size and SHA-256 recomputed in the manifest so the decoders are exercised.

Each input is opened with dbcrate.open_archive and verified; inputs that verify are also
restored into a SQLite file. A short run (150 examples per test) is part of the suite; a long
run: ``DBCRATE_FUZZ_EXAMPLES=20000 python -m pytest -q tests/test_fuzz.py`` (docs/RELIABILITY.md).
A failing input is written to the directory named by DBCRATE_FUZZ_CRASH_DIR (default: the
test's tmp directory) and its path printed; copy it into tests/fixtures/fuzz/, where
test_regression_fixtures replays every file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sqlite3
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dbcrate
from archive_tools import (
    DIGEST,
    MANIFEST,
    MARKER,
    Member,
    data_members,
    read_members,
    tar_bytes,
    with_manifest_bytes,
    with_member,
)
from dbcrate.errors import EXIT_CODES, DbcrateError

EXAMPLES = int(os.environ.get("DBCRATE_FUZZ_EXAMPLES", "150"))
FIXTURES = Path(__file__).parent / "fixtures" / "fuzz"
FORMATS = ["parquet", "arrow", "jsonl", "csv", "yaml", "xml"]
TEXT_FORMATS = {"jsonl", "csv", "yaml", "xml"}
#: bugs found by this fuzzer and not fixed yet: (exception class, text in its traceback, the bug).
#: While one exists, an input hitting it counts as "known bug" (an event) instead of failing the
#: fuzz tests; its regression fixtures (KNOWN_BUGS) fail strictly, so a fix is noticed.
#: (the lone-surrogate bug it found is fixed: Manifest.from_json refuses such strings)
KNOWN_CRASHES: list[tuple[type[BaseException], str, str]] = []
#: regression fixtures of bugs not fixed yet: file name -> the bug (the replay test xfails them)
KNOWN_BUGS: dict[str, str] = {}  # the lone-surrogate fixtures are refused since the fix

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


# ------------------------------------------------------------------------- the good inputs
def _tiny_source(path: Path) -> str:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, "
                "photo BLOB, born DATE)")
    con.executemany("INSERT INTO person VALUES (?, ?, ?, ?, ?)", [
        (1, "Ada", 1.5, b"\x00\x01\xff", "1815-12-10"),
        (2, "O'Brien \"quoted\" ; --", None, None, None),
        (3, "\u00e9t\u00e9 \U0001f600 <x>&amp;", -0.0, b"", "2000-02-29"),
        (4, "line\nbreak\ttab", float("inf"), b"\\x00", "1970-01-01"),
        (5, "", 3.25, b"abc", "9999-12-31"),
    ])
    con.execute("CREATE TABLE pet (id INTEGER PRIMARY KEY, owner INTEGER REFERENCES person(id), "
                "kind VARCHAR(10))")
    con.executemany("INSERT INTO pet VALUES (?, ?, ?)", [(1, 1, "cat"), (2, 1, "dog"), (3, 3, None)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


class Good:
    """A good archive in one data format: its bytes and members."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        self.members = read_members(path)
        self.manifest = json.loads(next(m.data for m in self.members if m.name == MANIFEST))


@pytest.fixture(scope="module")
def goods(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Good]:
    base = tmp_path_factory.mktemp("fuzzgood")
    src = _tiny_source(base / "tiny.db")
    out = {}
    for fmt in FORMATS:
        path = base / f"{fmt}.crate"
        dbcrate.dump(src, path, data_format=fmt, chunk_rows=2)
        out[fmt] = Good(path)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzzwork")


def crash_dir(work: Path) -> Path:
    d = Path(os.environ.get("DBCRATE_FUZZ_CRASH_DIR", work / "crashes"))
    d.mkdir(parents=True, exist_ok=True)
    return d


# ------------------------------------------------------------------------------ the oracle
STRICT = os.environ.get("DBCRATE_FUZZ_STRICT") == "1"


def outcome(data: bytes, work: Path, *, restore: bool, tolerate_known: bool = not STRICT) -> str:
    """'ok', 'refused: <class>' or 'report: ...'. An exception that is not a DbcrateError is
    saved as a crash input and re-raised (with the saved path in the message), unless it is a
    known bug (``tolerate_known``)."""
    path = work / "input.crate"
    path.write_bytes(data)
    try:
        try:
            with dbcrate.open_archive(path) as a:
                a.verify()
        except DbcrateError as exc:
            assert str(exc), "an error without a message"
            return f"refused: {type(exc).__name__}"
        if not restore:
            return "ok"
        target = work / "target.db"
        target.unlink(missing_ok=True)
        try:
            report = dbcrate.restore(path, f"sqlite:///{target}")
        except DbcrateError as exc:
            return f"refused at restore: {type(exc).__name__}"
        return "ok" if report.ok else "report: " + "; ".join(
            f"{t.name}: {t.error}" for t in report.tables if t.error)
    except Exception as exc:
        trace = traceback.format_exc()
        for kind, where, _ in KNOWN_CRASHES:
            if tolerate_known and isinstance(exc, kind) and where in trace:
                return f"known bug: {type(exc).__name__} {where}"
        saved = crash_dir(work) / f"crash-{hashlib.sha256(data).hexdigest()[:16]}.crate"
        saved.write_bytes(data)
        raise AssertionError(
            f"{type(exc).__name__} escaped (not a DbcrateError): {exc}\ninput saved as {saved}\n"
            + trace) from exc


# ---------------------------------------------------------------------- 1. byte mutations
OFFSET = st.one_of(st.integers(0, 2**31), st.integers(-8192, -1))
BYTE_OPS = st.one_of(
    st.tuples(st.just("flip"), OFFSET, st.integers(0, 7)),
    st.tuples(st.just("truncate"), OFFSET),
    st.tuples(st.just("insert"), OFFSET, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("overwrite"), OFFSET, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("duplicate"), OFFSET, st.integers(1, 4096), OFFSET),
    st.tuples(st.just("zero"), OFFSET, st.integers(1, 4096)),
    st.tuples(st.just("delete"), OFFSET, st.integers(1, 4096)),
)


def mutate_bytes(data: bytes, ops: list[tuple[Any, ...]]) -> bytes:
    buf = bytearray(data)
    for op in ops:
        if not buf:
            break

        def at(offset: int) -> int:
            return offset % len(buf)

        kind = op[0]
        if kind == "flip":
            buf[at(op[1])] ^= 1 << op[2]
        elif kind == "truncate":
            del buf[at(op[1]):]
        elif kind == "insert":
            i = at(op[1])
            buf[i:i] = op[2]
        elif kind == "overwrite":
            i = at(op[1])
            buf[i:i + len(op[2])] = op[2]
        elif kind == "duplicate":
            i = at(op[1])
            piece = bytes(buf[i:i + op[2]])
            j = at(op[3])
            buf[j:j] = piece
        elif kind == "zero":
            i = at(op[1])
            n = min(op[2], len(buf) - i)
            buf[i:i + n] = bytes(n)
        elif kind == "delete":
            i = at(op[1])
            del buf[i:i + op[2]]
    return bytes(buf)


@FUZZ
@given(fmt=st.sampled_from(["parquet", "jsonl"]), ops=st.lists(BYTE_OPS, min_size=1, max_size=4))
def test_fuzz_archive_bytes(goods: dict[str, Good], work: Path, fmt: str,
                            ops: list[tuple[Any, ...]]) -> None:
    event(outcome(mutate_bytes(goods[fmt].data, ops), work, restore=False)[:60])


# ------------------------------------------------------------------- 2. manifest mutations
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


INTERESTING_STRINGS = [
    "", "ok", "failed", "parquet", "jsonl", "string", "int64", "float64", "decimal", "binary",
    "date", "datetime", "timestamptz", "json", "uuid", "other", "literal", "expression",
    "current_timestamp", "always", "by default", "CASCADE", "id", "name", "person", "pet",
    "dbcrate-archive", "data/t0001/c000000.parquet", "data/t0001/c000001.parquet",
    "data/t0002/c000000.jsonl", "../../etc/passwd", "manifest.json", "x\"; DROP TABLE pet; --",
    "a`b", "\u0000", "\ud800", "\udfff", "0" * 70, "-1", "1e400", "NaN", "\U0001f600" * 5,
]
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 99, 2**31, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(INTERESTING_STRINGS),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.one_of(st.text(max_size=8), st.sampled_from(["name", "kind", "columns", "chunks",
                                                         "rows", "size", "sha256", "member"])),
        inner, max_size=4),
    max_leaves=8,
)
NAMES = st.one_of(st.sampled_from(INTERESTING_STRINGS), st.text(max_size=12))
EDIT = st.one_of(
    st.tuples(st.just("rename_table"), st.integers(0, 10**6), NAMES),
    st.tuples(st.just("rename_column"), st.integers(0, 10**6), st.integers(0, 10**6), NAMES),
    st.tuples(st.just("set_string"), st.integers(0, 10**6), st.sampled_from(INTERESTING_STRINGS)),
    st.tuples(st.just("set"), st.integers(0, 10**6), JSON_VALUES),
    st.tuples(st.just("delete"), st.integers(0, 10**6)),
    st.tuples(st.just("add"), st.integers(0, 10**6), st.text(max_size=12), JSON_VALUES),
    st.tuples(st.just("dup"), st.integers(0, 10**6)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
)


def _rename_table(doc: Any, index: int, new: str) -> None:
    """Rename a table everywhere the manifest names it (entry, schema, foreign keys)."""
    tables = doc.get("tables") if isinstance(doc, dict) else None
    if not isinstance(tables, list) or not tables or not isinstance(tables[index % len(tables)], dict):
        return
    entry = tables[index % len(tables)]
    old = entry.get("name")
    entry["name"] = new
    if isinstance(entry.get("schema"), dict):
        entry["schema"]["name"] = new
    for t in tables:
        for fk in (t.get("schema") or {}).get("foreign_keys") or [] if isinstance(t, dict) else []:
            if isinstance(fk, dict) and fk.get("ref_table") == old:
                fk["ref_table"] = new


def _rename_column(doc: Any, t_index: int, c_index: int, new: str) -> None:
    """Rename a column everywhere (columns, primary key, indexes, foreign keys both ways)."""
    tables = doc.get("tables") if isinstance(doc, dict) else None
    if not isinstance(tables, list) or not tables:
        return
    entry = tables[t_index % len(tables)]
    schema = entry.get("schema") if isinstance(entry, dict) else None
    columns = schema.get("columns") if isinstance(schema, dict) else None
    if not isinstance(columns, list) or not columns or not isinstance(columns[c_index % len(columns)], dict):
        return
    col = columns[c_index % len(columns)]
    old = col.get("name")
    col["name"] = new

    def ren(names: Any) -> Any:
        return [new if n == old else n for n in names] if isinstance(names, list) else names

    schema["primary_key"] = ren(schema.get("primary_key"))
    for index in schema.get("indexes") or []:
        if isinstance(index, dict):
            index["columns"] = ren(index.get("columns"))
    for t in tables:
        s = t.get("schema") if isinstance(t, dict) else None
        for fk in (s.get("foreign_keys") or []) if isinstance(s, dict) else []:
            if not isinstance(fk, dict):
                continue
            if s is schema:
                fk["columns"] = ren(fk.get("columns"))
            if fk.get("ref_table") == entry.get("name"):
                fk["ref_columns"] = ren(fk.get("ref_columns"))


def edit_json(doc: Any, edits: list[tuple[Any, ...]]) -> Any:
    for edit in edits:
        paths = _paths(doc)
        path = paths[edit[1] % len(paths)]
        kind = edit[0]
        if kind == "rename_table":
            _rename_table(doc, edit[1], edit[2])
        elif kind == "rename_column":
            _rename_column(doc, edit[1], edit[2], edit[3])
        elif kind == "set_string":
            strings = [p for p in paths if p and isinstance(_get(doc, p), str)]
            if strings:
                p = strings[edit[1] % len(strings)]
                _get(doc, p[:-1])[p[-1]] = edit[2]
        elif kind == "set":
            if not path:
                doc = edit[2]
            else:
                _get(doc, path[:-1])[path[-1]] = edit[2]
        elif kind == "delete" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif kind == "add":
            target = _get(doc, path)
            if isinstance(target, dict):
                target[edit[2]] = edit[3]
            elif isinstance(target, list):
                target.append(edit[3])
        elif kind == "dup":
            target = _get(doc, path)
            if isinstance(target, list) and target:
                target.append(json.loads(json.dumps(target[0])))
        elif kind == "swap":
            other = paths[edit[2] % len(paths)]
            if path and other and path[:-1] == other[:-1]:
                parent = _get(doc, path[:-1])
                parent[path[-1]], parent[other[-1]] = parent[other[-1]], parent[path[-1]]
    return doc


def _serialise(doc: Any, ascii_only: bool, indent: int | None) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only, indent=indent, allow_nan=True).encode(
        "utf-8", "surrogatepass")


@FUZZ
@given(fmt=st.sampled_from(["parquet", "csv"]), edits=st.lists(EDIT, min_size=1, max_size=3),
       marker_edits=st.lists(EDIT, max_size=1), ascii_only=st.booleans(),
       indent=st.sampled_from([None, 1]))
def test_fuzz_manifest(goods: dict[str, Good], work: Path, fmt: str, edits: list[Any],
                       marker_edits: list[Any], ascii_only: bool, indent: int | None) -> None:
    good = goods[fmt]
    doc = edit_json(json.loads(json.dumps(good.manifest)), edits)
    members = with_manifest_bytes(good.members, _serialise(doc, ascii_only, indent))
    if marker_edits:
        marker = next(m for m in members if m.name == MARKER)
        new = edit_json(json.loads(marker.data), marker_edits)
        members = [Member(m.name, _serialise(new, ascii_only, None)) if m.name == MARKER else m
                   for m in members]
    event(outcome(tar_bytes(members), work, restore=True)[:60])


# ------------------------------------------------------------- 3. data member mutations
@FUZZ
@given(fmt=st.sampled_from(FORMATS), index=st.integers(0, 100),
       ops=st.lists(BYTE_OPS, min_size=1, max_size=3), inside=st.booleans())
def test_fuzz_data_members(goods: dict[str, Good], work: Path, fmt: str, index: int,
                           ops: list[tuple[Any, ...]], inside: bool) -> None:
    """``inside``: for the text formats, mutate the decompressed text and compress it again
    (so the parsers, not zstd, see the damage)."""
    good = goods[fmt]
    names = data_members(good.members)
    name = names[index % len(names)]
    data = next(m.data for m in good.members if m.name == name)
    if inside and fmt in TEXT_FORMATS:
        text = zstandard.ZstdDecompressor().stream_reader(data).read()
        data = zstandard.ZstdCompressor().compress(mutate_bytes(text, ops))
    else:
        data = mutate_bytes(data, ops)
    event(outcome(tar_bytes(with_member(good.members, name, data)), work, restore=True)[:60])


# ------------------------------------------------------------------ regression fixtures
REGRESSIONS = sorted(p for p in FIXTURES.glob("*") if p.suffix == ".crate")


def _replay_params() -> list[Any]:
    return [pytest.param(p, id=p.name, marks=pytest.mark.xfail(reason=KNOWN_BUGS[p.name], strict=True))
            if p.name in KNOWN_BUGS else pytest.param(p, id=p.name) for p in REGRESSIONS]


def test_regression_fixture_directory() -> None:
    assert FIXTURES.is_dir()
    assert set(KNOWN_BUGS) <= {p.name for p in REGRESSIONS}


@pytest.mark.parametrize("path", _replay_params())
def test_regression_fixtures(path: Path, tmp_path: Path) -> None:
    """Every saved fuzz input: read or refused with a DbcrateError, never anything else (also
    through the CLI: no 'internal error', an exit code of the documented table)."""
    outcome(path.read_bytes(), tmp_path, restore=True, tolerate_known=False)
    for args in (["verify", str(path)], ["restore", str(path), f"sqlite:///{tmp_path / 'cli.db'}"]):
        res = subprocess.run([sys.executable, "-m", "dbcrate", *args], capture_output=True,
                             text=True, timeout=120)
        assert "internal error" not in res.stderr and "Traceback" not in res.stderr, res.stderr
        assert res.returncode in EXIT_CODES and res.returncode != 1, res.stderr


# -------------------------------------------------------------------- sanity of the harness
def test_mutators_change_the_input_and_the_good_archives_pass(goods: dict[str, Good],
                                                              work: Path) -> None:
    for fmt, good in goods.items():
        assert outcome(good.data, work, restore=True) == "ok", fmt
        assert len(data_members(good.members)) >= 4, fmt
        assert outcome(tar_bytes(with_manifest_bytes(good.members, next(
            m.data for m in good.members if m.name == MANIFEST))), work, restore=True) == "ok"
    # a bit flipped anywhere in a data member's or the manifest's bytes is refused (flips in tar
    # padding and after the last member change no content: they are not the oracle's business)
    rnd = random.Random(7)
    good = goods["parquet"]
    with tarfile.open(fileobj=io.BytesIO(good.data)) as tar:
        spans = [(i.offset_data, i.size) for i in tar.getmembers()
                 if i.name.startswith("data/") or i.name == MANIFEST]
    for _ in range(40):
        start, size = rnd.choice(spans)
        data = mutate_bytes(good.data, [("flip", start + rnd.randrange(size), rnd.randrange(8))])
        assert outcome(data, work, restore=False).startswith("refused")
    doc = json.loads(json.dumps(good.manifest))
    doc["tables"][0]["chunks"][0]["rows"] += 1
    assert outcome(tar_bytes(with_manifest_bytes(good.members, _serialise(doc, True, 1))), work,
                   restore=False).startswith("refused")
    assert DIGEST in {m.name for m in good.members}


# --------------------------------------------- found by the data-member fuzzer: not a crash
@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_invalid_utf8_in_a_string_member_is_refused_by_verify(fmt: str, tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, "h\u00e9llo"), (2, None)])
    con.commit()
    con.close()
    dbcrate.dump(f"sqlite:///{db}", tmp_path / "u.crate", data_format=fmt, compression_level=1)
    members = read_members(tmp_path / "u.crate")
    (name,) = data_members(members)
    data = next(m.data for m in members if m.name == name)
    at = data.find("h\u00e9llo".encode())
    assert at > 0, "the value is not stored as plain bytes: the test needs another way in"
    bad = data[:at + 1] + b"\xc3\x28" + data[at + 3:]  # an invalid two-byte sequence
    path = tmp_path / "bad.crate"
    path.write_bytes(tar_bytes(with_member(members, name, bad)))
    with pytest.raises(DbcrateError), dbcrate.open_archive(path) as a:
        a.verify()


# ------------------------------------------------ BI-02: hostile manifest shapes, bounded
HEAD = b'{"format": "dbcrate-archive", "format_version": 1, '
MANIFEST_SHAPES = {
    "nested-100000-deep": HEAD + b'"tables": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "nested-65-deep": HEAD + b'"tables": [], "x": ' + b"[" * 65 + b"]" * 65 + b"}",
    "integer-of-5000-digits": HEAD + b'"tables": [], "x": 1' + b"0" * 5000 + b"}",
    "version-of-5000-digits": b'{"format": "dbcrate-archive", "format_version": 1' + b"0" * 5000 + b"}",
    "duplicate-key": HEAD + b'"tables": [], "tables": []}',
    "invalid-utf8": HEAD + b'"tables": [], "x": "\xff\xfe"}',
    "nan-and-infinity": HEAD + b'"tables": [], "x": [NaN, Infinity, -Infinity]}',
    "tables-not-a-list": HEAD + b'"tables": {"a": 1}}',
    "empty-object": b"{}",
    "json-array": b"[]",
    "empty": b"",
    "bom": b"\xef\xbb\xbf" + HEAD + b'"tables": []}',
    "utf16": (HEAD + b'"tables": []}').decode().encode("utf-16"),
}


@pytest.mark.parametrize("shape", sorted(MANIFEST_SHAPES))
def test_hostile_manifest_shapes(shape: str, goods: dict[str, Good], tmp_path: Path) -> None:
    """Refused (or read) quickly, never a crash; the manifest digest matches, so the parser
    sees exactly these bytes."""
    good = goods["parquet"]
    data = tar_bytes(with_manifest_bytes(good.members, MANIFEST_SHAPES[shape]))
    started = time.monotonic()
    result = outcome(data, tmp_path, restore=True, tolerate_known=False)
    assert time.monotonic() - started < 10
    if shape != "nested-65-deep":  # within the depth limit: a valid, empty archive... or not
        assert result.startswith("refused"), result
