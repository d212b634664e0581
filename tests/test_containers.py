"""Container kinds (docs/CONTAINERS.md): tar, directory, sqlite and python hold the same dump.

Proofs, on real engines: the edge-value fixtures round-trip through every kind for SQLite,
PostgreSQL and MariaDB sources (restored into the same engine, compared with the independent
content check of tests/content.py); a conversion chain through every kind and two data formats
keeps the content; the SQLite file is an ordinary SQLite database (sqlite3 module and shell);
Python data modules are read as data - injected code is refused and never runs; the restore.py
launcher works; --max-row-count splits; outputs are atomic, private and refuse to clobber;
reading directories and SQLite files is defensive; conversion runs in bounded memory.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import dbcrate
from dbcrate.containers.kinds import CONTAINER_KINDS, detect_kind, get_kind
from dbcrate.containers.writers import open_dump_writer
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, OutputError, UsageError
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table
from test_edge_values import assert_same_archives

from conftest import ENGINES, Databases, engine_of
from content import snapshot
from edge_fixtures import create_edge_database

KINDS = ("tar", "directory", "sqlite", "python")
OUTPUT_NAMES = {"tar": "out.crate", "directory": "out_dir", "sqlite": "out.sqlite",
                "python": "out_py"}


def sqlite_source(tmp_path: Path, statements: list[str], name: str = "src.db") -> str:
    path = tmp_path / name
    conn = sqlite3.connect(path)
    for stmt in statements:
        conn.execute(stmt)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def numbers_source(tmp_path: Path, rows: int, name: str = "numbers.db") -> str:
    return sqlite_source(tmp_path, [
        "CREATE TABLE numbers (id INTEGER PRIMARY KEY, label TEXT, x REAL)",
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        "INSERT INTO numbers SELECT i, 'row ' || i, i / 7.0 FROM n",
    ], name)


def leftovers(directory: Path) -> list[str]:
    """Temp names a writer could have left behind."""
    return sorted(p.name for p in directory.iterdir() if ".dbcrate-" in p.name)


# ---------------------------------------------------------------- edge values, every kind
@pytest.mark.parametrize("engine", ENGINES)
def test_edge_values_round_trip_every_kind(engine: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(engine)
    create_edge_database(engine, src)
    expected = snapshot(src)
    reference = tmp_path / "reference.crate"
    dbcrate.dump(src, reference)
    for kind in KINDS:
        out = tmp_path / OUTPUT_NAMES[kind]
        result = dbcrate.dump_as(src, out, kind)
        assert result.path == str(out) and out.exists(), kind
        assert leftovers(tmp_path) == [], kind  # the temp tar of dump_as is gone
        with dbcrate.open_archive(out) as archive:
            assert archive.kind == kind
            archive.verify()
        assert_same_archives(reference, out)  # every value, bit for bit (NaN, -0.0, ...)
        dst = dbs.new(engine)
        report = dbcrate.restore(out, dst)
        assert report.ok, (kind, report.to_dict())
        assert snapshot(dst) == expected, kind


# ---------------------------------------------------------------- conversion chain
def test_convert_chain_through_every_kind_keeps_content(dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new("postgresql")  # the richest values: infinities, BC dates, 1000-digit numerics
    create_edge_database("postgresql", src)
    first = tmp_path / "first.crate"
    dbcrate.dump(src, first)
    chain = [
        ("sqlite", tmp_path / "a.sqlite", {}),
        ("python", tmp_path / "b_py", {"max_row_count": 2}),  # several modules per table
        ("directory", tmp_path / "c_dir", {"data_format": "jsonl"}),
        ("tar", tmp_path / "d.crate", {"data_format": "parquet"}),
    ]
    previous = first
    for kind, path, extra in chain:
        result = dbcrate.convert(previous, path, kind=kind, **extra)
        assert result.kind == kind
        assert detect_kind(path) == kind
        assert_same_archives(first, path)
        previous = path
    with dbcrate.open_archive(first) as a, dbcrate.open_archive(previous) as b:
        assert [t.schema.to_dict() for t in a.tables] == [t.schema.to_dict() for t in b.tables]
        assert a.manifest.source == b.manifest.source
        assert a.manifest.created_at == b.manifest.created_at
        edge = b.table("Edge Values")
        assert len(edge.chunks) == -(-edge.rows // 2)  # the python step's chunking is kept
        b.verify()
    # tar -> directory -> tar with the same format copies members byte for byte: the
    # manifest is the same document (restore's resume journal keys on it)
    dbcrate.convert(first, tmp_path / "e_dir", kind="directory")
    dbcrate.convert(tmp_path / "e_dir", tmp_path / "f.crate")
    with dbcrate.open_archive(first) as a, dbcrate.open_archive(tmp_path / "f.crate") as f:
        assert a.manifest.to_json() == f.manifest.to_json()
    dst = dbs.new("postgresql")
    assert dbcrate.restore(previous, dst).ok
    assert snapshot(dst) == snapshot(src)


# ---------------------------------------------------------------- the SQLite file
HOSTILE = [
    'CREATE TABLE "we""ird\nname" (id INTEGER PRIMARY KEY, "col""q" TEXT, "new\nline" TEXT)',
    "INSERT INTO \"we\"\"ird\nname\" VALUES (1, 'quote\"d', 'nl')",
    'CREATE TABLE "dbcrate_archive" (id INTEGER PRIMARY KEY, dbcrate_row TEXT)',
    "INSERT INTO \"dbcrate_archive\" VALUES (7, 'not metadata')",
    'CREATE TABLE "t0001" (id INTEGER PRIMARY KEY)',
    "INSERT INTO t0001 VALUES (42)",
    "CREATE TABLE plain (id INTEGER PRIMARY KEY, amount NUMERIC(10,2), f REAL, at DATETIME)",
    "INSERT INTO plain VALUES (1, 12.5, 2.5, '2024-02-29 12:00:00')",
]


def test_sqlite_file_opens_with_sqlite3_and_the_shell(tmp_path: Path) -> None:
    src = sqlite_source(tmp_path, HOSTILE)
    out = tmp_path / "dump.sqlite"
    dbcrate.dump_as(src, out, "sqlite")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes()[:16] == b"SQLite format 3\x00"

    conn = sqlite3.connect(out)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"dbcrate_archive", "dbcrate_tables", "dbcrate_columns", "plain"} <= tables
    mapping = dict(conn.execute("SELECT name, data_table FROM dbcrate_tables"))
    # unsafe or clashing names are mapped; the mapping is in the metadata
    assert mapping["plain"] == "plain"
    assert mapping['we"ird\nname'] == "t0004"  # position 4 in name order; control char
    assert mapping["dbcrate_archive"] == "t0001"  # the metadata prefix is dbcrate's
    assert mapping["t0001"] == "t0003"  # its own name was taken by then
    assert conn.execute('SELECT "col""q", c0003 FROM t0004').fetchall() == [('quote"d', "nl")]
    # a column called like dbcrate's row number is mapped too
    assert conn.execute("SELECT dbcrate_row, id, c0002 FROM t0001").fetchall() == [
        (1, 7, "not metadata")]
    assert conn.execute("SELECT name, data_column FROM dbcrate_columns WHERE table_number = 1"
                        ).fetchall() == [("id", "id"), ("dbcrate_row", "c0002")]
    row = conn.execute("SELECT id, amount, f, at FROM plain").fetchone()
    assert row[0] == 1 and row[1] == "12.5" and row[2] == 2.5
    assert row[3] == "2024-02-29T12:00:00"
    manifest = json.loads(conn.execute(
        "SELECT content FROM dbcrate_archive WHERE name = 'manifest.json'").fetchone()[0])
    assert manifest["data_format"] == "sqlite"
    assert {t["name"] for t in manifest["tables"]} == set(mapping)
    conn.close()

    shell = shutil.which("sqlite3")
    if shell is None:
        pytest.skip("no sqlite3 shell on this machine (the sqlite3 module was checked)")
    shown = subprocess.run([shell, "-header", str(out), "SELECT * FROM plain;",
                            "SELECT name FROM dbcrate_archive ORDER BY name;",
                            ".schema plain"], capture_output=True, text=True, check=True).stdout
    assert "dbcrate_row|id|amount|f|at" in shown
    assert "1|1|12.5|2.5|2024-02-29T12:00:00" in shown
    assert "manifest.json" in shown and "dbcrate-archive.json" in shown
    assert "/* decimal(10,2) */" in shown  # the logical type, in the schema the shell prints

    dst = tmp_path / "copy.db"
    assert dbcrate.restore(out, f"sqlite:///{dst}").ok
    assert snapshot(f"sqlite:///{dst}") == snapshot(src)


def _sqlite_dump(tmp_path: Path) -> Path:
    out = tmp_path / "t.sqlite"
    dbcrate.dump_as(numbers_source(tmp_path, 50), out, "sqlite")
    return out


@pytest.mark.parametrize(("change", "error"), [
    ("UPDATE numbers SET label = 'changed' WHERE id = 3", ArchiveCorrupt),
    ("UPDATE numbers SET dbcrate_row = 99 WHERE id = 3", ArchiveCorrupt),
    ("INSERT INTO numbers (dbcrate_row, id) VALUES (51, 51)", ArchiveCorrupt),
    ("UPDATE dbcrate_columns SET data_column = 'x' WHERE position = 2", ArchiveCorrupt),
    ("UPDATE dbcrate_archive SET content = content || ' ' WHERE name = 'manifest.json'",
     ArchiveCorrupt),
    ("CREATE VIEW v AS SELECT 1", NotAnArchive),
    ("CREATE TRIGGER tr AFTER INSERT ON numbers BEGIN SELECT 1; END", NotAnArchive),
    ("CREATE TABLE extra (a)", NotAnArchive),
    ("PRAGMA application_id = 1", NotAnArchive),
])
def test_sqlite_archive_changes_are_detected(tmp_path: Path, change: str,
                                             error: type[Exception]) -> None:
    out = _sqlite_dump(tmp_path)
    conn = sqlite3.connect(out)
    conn.execute(change)
    conn.commit()
    conn.close()
    with pytest.raises(error), dbcrate.open_archive(out) as archive:
        archive.verify()


# ---------------------------------------------------------------- Python data modules
def _python_dump(tmp_path: Path, rows: int = 5) -> tuple[str, Path]:
    src = numbers_source(tmp_path, rows)
    out = tmp_path / "py"
    dbcrate.dump_as(src, out, "python")
    return src, out


def _rewrite_module(dump: Path, member: str, text: str) -> None:
    """Replace a data module and record its new size and SHA-256 in the manifest, so that
    what refuses it is the literal-only reader, not the checksum."""
    data = text.encode()
    (dump / member).write_bytes(data)
    manifest = json.loads((dump / "manifest.json").read_bytes())
    for table in manifest["tables"]:
        for chunk in table["chunks"]:
            if chunk["member"] == member:
                chunk["size"] = len(data)
                chunk["sha256"] = hashlib.sha256(data).hexdigest()
                table["bytes"] = sum(c["size"] for c in table["chunks"])
    raw = json.dumps(manifest, indent=1).encode()
    (dump / "manifest.json").write_bytes(raw)
    (dump / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest() + "\n")


MEMBER = "data/t0001/c000000.py"


@pytest.mark.parametrize(("where", "snippet", "words"), [
    ("value", "__import__('os').system('touch {X}')", "a function call"),
    ("value", "print('{X}')", "a function call"),
    ("value", "os.path", "an attribute access"),
    ("value", "X", "a name"),
    ("value", "f'{{1}}'", "an f-string"),
    ("value", "(lambda: 1)", "a lambda"),
    ("value", "[i for i in ()]", "a comprehension"),
    ("value", "1 + 1", "an operator"),
    ("row", "__import__('os').system('touch {X}')", "a function call"),
    ("head", "import os; os.system('touch {X}')", "only comments may come before"),
    ("tail", "__import__('os').system('touch {X}')", "only comments may come after"),
    ("break", "], __import__('os').system('touch {X}'), [", "a function call"),
])
def test_python_dump_refuses_injected_code(tmp_path: Path, dbs: Databases, where: str,
                                           snippet: str, words: str) -> None:
    _src, dump = _python_dump(tmp_path)
    marker = tmp_path / "X"
    code = snippet.format(X=marker)
    lines = (dump / MEMBER).read_text().split("\n")
    index = lines.index("ROWS = [")
    if where == "value":  # replace the label of the first row
        lines[index + 1] = lines[index + 1].replace("'row 1'", code)
        assert code in lines[index + 1]
    elif where == "row":
        lines[index + 1] = f"    {code},"
    elif where == "head":
        lines.insert(0, code)
    elif where == "tail":
        lines.append(code)
    else:
        lines.insert(index + 2, f"    {code}")
    _rewrite_module(dump, MEMBER, "\n".join(lines))

    target = dbs.new("sqlite")
    # refused by the preflight (verify) and, without it, by the load itself: the table fails
    # and is rolled back; what refuses is the literal-only reader, not a checksum
    with pytest.raises(ArchiveCorrupt) as info:
        dbcrate.restore(dump, target)
    messages = [info.value.message]
    report = dbcrate.restore(dump, target, verify=False)
    assert not report.ok
    messages += [t.error or "" for t in report.tables if t.status == "failed"]
    for message in messages:
        assert MEMBER in message and "line " in message, message
        assert words in message, message
    with pytest.raises(ArchiveCorrupt), dbcrate.open_archive(dump) as archive:
        archive.verify()
    assert not marker.exists()
    # nothing of the table's rows is in: from the native schema the table was created (empty)
    # before the rows, and the report says it stays empty
    with engine_of(target).connect() as conn:
        if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'numbers'"
                                ).scalar():
            assert conn.exec_driver_sql("SELECT count(*) FROM numbers").scalar() == 0
            assert all("stays empty" in (t.error or "") for t in report.tables
                       if t.status == "failed")


def test_python_module_changed_without_the_manifest_fails_its_checksum(tmp_path: Path) -> None:
    _src, dump = _python_dump(tmp_path)
    module = dump / MEMBER
    module.write_text(module.read_text().replace("'row 1'", "'row X'"))
    with pytest.raises(ArchiveCorrupt, match="SHA-256"), dbcrate.open_archive(dump) as archive:
        archive.verify()


def test_python_module_reads_well(tmp_path: Path) -> None:
    src = sqlite_source(tmp_path, [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC(10,2), f REAL, "
        "b BLOB, at DATETIME, ok BOOLEAN)",
        "INSERT INTO t VALUES (1, 'Ann', 12.5, -1.5, x'00ff', '2024-02-29 12:00:00.5', 1)",
        "INSERT INTO t VALUES (2, NULL, NULL, 1e300, NULL, NULL, 0)",
    ])
    dump = tmp_path / "py"
    dbcrate.dump_as(src, dump, "python")
    text = (dump / MEMBER).read_text()
    assert "    (1, 'Ann', '12.5', -1.5, b'\\x00\\xff', '2024-02-29T12:00:00.500000', True),\n" in text
    assert "    (2, None, None, 1e+300, None, None, False),\n" in text
    assert "#   'amount': decimal(10,2)" in text
    assert stat.S_IMODE(dump.stat().st_mode) == 0o700
    assert stat.S_IMODE((dump / MEMBER).stat().st_mode) == 0o600
    assert sorted(p.name for p in dump.iterdir()) == ["data", "manifest.json", "manifest.sha256",
                                                      "restore.py"]


def test_restore_launcher_runs(tmp_path: Path) -> None:
    src, dump = _python_dump(tmp_path, rows=30)
    launcher = (dump / "restore.py").read_text()
    assert "row 1" not in launcher and "ROWS" not in launcher  # no data in it
    dst = f"sqlite:///{tmp_path / 'restored.db'}"
    done = subprocess.run([sys.executable, str(dump / "restore.py"), dst],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert snapshot(dst) == snapshot(src)
    again = subprocess.run([sys.executable, str(dump / "restore.py"), dst],
                           capture_output=True, text=True)
    assert again.returncode == 8  # restore's own refusal: the table exists (options pass on)
    forced = subprocess.run([sys.executable, str(dump / "restore.py"), dst, "--clean"],
                            capture_output=True, text=True)
    assert forced.returncode == 0, forced.stderr


def test_max_row_count_splits_modules(tmp_path: Path) -> None:
    src = numbers_source(tmp_path, 2500)
    dump = tmp_path / "py"
    dbcrate.dump_as(src, dump, "python", max_row_count=1000)
    modules = sorted(p.relative_to(dump).as_posix() for p in (dump / "data").rglob("*.py"))
    assert modules == ["data/t0001/c000000.py", "data/t0001/c000001.py", "data/t0001/c000002.py"]
    with dbcrate.open_archive(dump) as archive:
        assert [c.rows for c in archive.table("numbers").chunks] == [1000, 1000, 500]
    assert "rows from 2001" in (dump / "data/t0001/c000002.py").read_text()
    lite = tmp_path / "n.sqlite"
    dbcrate.convert(dump, lite, kind="sqlite", max_row_count=700)
    with dbcrate.open_archive(lite) as archive:
        assert [c.rows for c in archive.table("numbers").chunks] == [700, 700, 700, 400]
        archive.verify()
    dst = f"sqlite:///{tmp_path / 'copy.db'}"
    assert dbcrate.restore(lite, dst).ok
    assert snapshot(dst) == snapshot(src)


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize("kind", ["python", "directory"])
def test_existing_directory_is_refused_without_overwrite(tmp_path: Path, kind: str) -> None:
    src = numbers_source(tmp_path, 10)
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        dbcrate.dump_as(src, out, kind)
    with pytest.raises(OutputError, match="not a dbcrate dump"):
        dbcrate.dump_as(src, out, kind, overwrite=True)  # only an earlier dump is replaced
    assert (out / "precious.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == []

    empty = tmp_path / "empty"
    empty.mkdir()
    dbcrate.dump_as(src, empty, kind)  # an empty directory is fine
    with pytest.raises(OutputError):
        dbcrate.dump_as(src, empty, kind)
    dbcrate.dump_as(src, empty, kind, overwrite=True, max_row_count=3)
    with dbcrate.open_archive(empty) as archive:
        assert len(archive.table("numbers").chunks) == 4
        archive.verify()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["directory", "sqlite", "python"])
def test_a_damaged_source_leaves_no_output(tmp_path: Path, kind: str) -> None:
    src = numbers_source(tmp_path, 3000)
    crate = tmp_path / "src.crate"
    dbcrate.dump(src, crate, chunk_rows=1000)
    data = bytearray(crate.read_bytes())
    with dbcrate.open_archive(crate) as archive:
        last = archive.table("numbers").chunks[-1].member
        offset = archive.reader.members[last].offset_data  # type: ignore[attr-defined]
    data[offset + 100] ^= 0xFF
    crate.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(ArchiveCorrupt, match="c000002"):
        dbcrate.convert(crate, out, kind=kind)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_conversion_refuses_bad_requests(tmp_path: Path) -> None:
    src = numbers_source(tmp_path, 3)
    crate = tmp_path / "a.crate"
    dbcrate.dump(src, crate)
    with pytest.raises(UsageError) as info:
        dbcrate.convert(crate, tmp_path / "x", kind="zip")
    assert all(k in (info.value.hint or "") for k in KINDS)
    with pytest.raises(UsageError, match="tar and directory"):
        dbcrate.convert(crate, tmp_path / "x.sqlite", kind="sqlite", data_format="csv")
    with pytest.raises(UsageError, match="source archive itself"):
        dbcrate.convert(crate, crate)
    dbcrate.convert(crate, tmp_path / "d", kind="directory")
    with pytest.raises(UsageError, match="inside"):
        dbcrate.convert(tmp_path / "d", tmp_path / "d" / "x.sqlite", kind="sqlite")
    with pytest.raises(UsageError, match="at least 1"):
        dbcrate.convert(crate, tmp_path / "y_py", kind="python", max_row_count=0)
    assert leftovers(tmp_path) == []


def test_storages_need_the_tar_or_directory_kind(tmp_path: Path) -> None:
    if "storages" not in dbcrate.DumpOptions.__dataclass_fields__:
        pytest.skip("this dbcrate has no storages")
    files = tmp_path / "media"
    (files / "sub").mkdir(parents=True)
    (files / "a.txt").write_text("a")
    (files / "sub" / "b.bin").write_bytes(bytes(range(256)))
    crate = tmp_path / "s.crate"
    src = numbers_source(tmp_path, 5)
    dbcrate.dump(src, crate, storages=[str(files)], storages_basepath=str(tmp_path))
    for kind in ("sqlite", "python"):
        with pytest.raises(UsageError, match="storages need the tar or directory kind"):
            dbcrate.convert(crate, tmp_path / f"s_{kind}", kind=kind)
        with pytest.raises(UsageError, match=r"storages .* need the tar or directory kind"):
            dbcrate.dump_as(src, tmp_path / f"t_{kind}", kind, storages=[str(files)],
                            storages_basepath=str(tmp_path))
    directory = tmp_path / "s_dir"
    dbcrate.convert(crate, directory, kind="directory")
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("storage/*"))
    back = tmp_path / "back.crate"
    dbcrate.convert(directory, back)
    with dbcrate.open_archive(crate) as a, dbcrate.open_archive(back) as b:
        assert a.manifest.to_json() == b.manifest.to_json()
        names = a.member_names()  # type: ignore[attr-defined]
        assert sorted(names) == sorted(b.member_names())  # type: ignore[attr-defined]
        assert any(n.startswith("storage/") for n in names)
        for name in names:
            with a.member_stream(name) as x, b.member_stream(name) as y:  # type: ignore[attr-defined]
                assert x.read() == y.read(), name
    # restore reads the storages of a directory archive like those of a tar
    restored = tmp_path / "restored"
    dst = f"sqlite:///{tmp_path / 'copy.db'}"
    assert dbcrate.restore(directory, dst, storages_to=str(restored)).ok
    assert (restored / "media" / "sub" / "b.bin").read_bytes() == bytes(range(256))
    assert snapshot(dst) == snapshot(src)
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- reading directories
def _directory_dump(tmp_path: Path) -> Path:
    out = tmp_path / "dir"
    dbcrate.dump_as(numbers_source(tmp_path, 2500), out, "directory", max_row_count=1000)
    return out


CHUNK = "data/t0001/c000001.parquet"


def _symlink(d: Path) -> None:
    target = d.parent / "elsewhere"
    shutil.copy(d / CHUNK, target)
    (d / CHUNK).unlink()
    (d / CHUNK).symlink_to(target)


def _dir_symlink(d: Path) -> None:
    shutil.move(str(d / "data" / "t0001"), str(d.parent / "outside"))
    (d / "data" / "t0001").symlink_to(d.parent / "outside", target_is_directory=True)


@pytest.mark.parametrize(("damage", "error", "words"), [
    (_symlink, NotAnArchive, "symbolic link"),
    (_dir_symlink, NotAnArchive, "symbolic link"),
    (lambda d: os.mkfifo(d / "data" / "fifo"), NotAnArchive, "not a regular file"),
    (lambda d: (d / "data" / "t0001" / "extra.parquet").write_bytes(b"x"), ArchiveCorrupt,
     "not listed"),
    (lambda d: (d / "data" / "t0009").mkdir(), ArchiveCorrupt, "directories not part"),
    (lambda d: (d / CHUNK).unlink(), ArchiveCorrupt, "missing"),
    (lambda d: (d / CHUNK).write_bytes((d / CHUNK).read_bytes() + b"x"), ArchiveCorrupt, "bytes"),
    (lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text() + " "),
     ArchiveCorrupt, "SHA-256"),
    (lambda d: (d / "dbcrate-archive.json").write_text('{"format": "dbcrate-archive", '
                                                       '"format_version": 99}'),
     dbcrate.errors.UnsupportedFormatVersion, "not supported"),
])
def test_directory_kind_is_read_defensively(tmp_path: Path, damage, error, words: str) -> None:
    out = _directory_dump(tmp_path)
    damage(out)
    with pytest.raises(error) as info, dbcrate.open_archive(out) as archive:
        archive.verify()
    assert words in info.value.message


def test_directory_member_changed_in_place_fails_verify(tmp_path: Path) -> None:
    out = _directory_dump(tmp_path)
    data = bytearray((out / CHUNK).read_bytes())
    data[len(data) // 2] ^= 0x01
    (out / CHUNK).write_bytes(bytes(data))
    archive = dbcrate.open_archive(out)  # same size: it opens
    with archive, pytest.raises(ArchiveCorrupt, match="c000001"):
        archive.verify()


def test_directory_kind_is_the_tar_unpacked(tmp_path: Path) -> None:
    src = numbers_source(tmp_path, 2500)
    crate = tmp_path / "a.crate"
    dbcrate.dump(src, crate, chunk_rows=1000)
    out = tmp_path / "dir"
    dbcrate.convert(crate, out, kind="directory")
    import tarfile
    with tarfile.open(crate) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert files == members
    assert all(stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600)
               for p in [out, *out.rglob("*")])


# ---------------------------------------------------------------- registry, detection, API
def test_registry_detection_and_explicit_kinds(tmp_path: Path) -> None:
    assert list(CONTAINER_KINDS) == list(KINDS)
    assert dbcrate.CONTAINER_KINDS is CONTAINER_KINDS
    with pytest.raises(UsageError) as info:
        get_kind("zip")
    assert "tar, directory, sqlite, python" in (info.value.hint or "")
    src = numbers_source(tmp_path, 3)
    for kind in KINDS:
        out = tmp_path / OUTPUT_NAMES[kind]
        dbcrate.dump_as(src, out, kind)
        assert detect_kind(out) == kind
        with dbcrate.open_archive(out, kind=kind) as archive:
            assert type(archive) is CONTAINER_KINDS[kind].reader
            assert isinstance(archive, dbcrate.Archive)
        assert type(dbcrate.Archive(out)) is CONTAINER_KINDS[kind].reader
    with pytest.raises(NotAnArchive):
        dbcrate.open_archive(tmp_path / "out.crate", kind="sqlite")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (a)").connection.close()
    with pytest.raises(NotAnArchive, match="not a dbcrate archive"):
        dbcrate.open_archive(plain)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(NotAnArchive, match="not a dbcrate dump"):
        dbcrate.open_archive(empty)
    with pytest.raises(UsageError):
        dbcrate.open_archive(tmp_path / "out.crate", "x")  # type: ignore[call-overload]


def _cli(*argv: str) -> tuple[int, str, str]:
    """``dbcrate`` in this process (its exit code, stdout, stderr)."""
    from dbcrate.cli import commands as cli

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return (0 if code is None else int(code)), out.getvalue(), err.getvalue()


def test_cli_ls_verify_and_compare_read_every_kind(tmp_path: Path) -> None:
    src = numbers_source(tmp_path, 2500)
    for kind in KINDS:
        out = tmp_path / OUTPUT_NAMES[kind]
        dbcrate.dump_as(src, out, kind, max_row_count=1000)
        code, shown, err = _cli("ls", str(out), "--json")
        assert code == 0, err
        listing = json.loads(shown)
        assert listing["tables"] == [{"name": "numbers", "rows": 2500, "bytes": listing["bytes"],
                                      "chunks": 3, "columns": 3, "status": "ok"}]
        code, shown, err = _cli("verify", str(out), "--json")
        assert code == 0 and json.loads(shown)["rows"] == 2500, (kind, err)
        code, shown, err = _cli("ls", str(out), "--against", src, "--json")
        assert code == 0 and json.loads(shown)["tables"][0]["present"], (kind, err)


@pytest.mark.parametrize("kind", KINDS)
def test_open_archive_for_writing(tmp_path: Path, kind: str) -> None:
    table = Table(name="t", columns=[
        Column("id", LogicalType("int64"), "BIGINT", nullable=False),
        Column("v", LogicalType("float32"), "REAL"),
        Column("d", LogicalType("date"), "DATE"),
    ])
    data = pa.table({"id": pa.array(range(10), pa.int64()),
                     "v": pa.array([0.1 * i if i != 3 else float("nan") for i in range(10)],
                                   pa.float32()),
                     "d": pa.array([i * 1000 - 800_000 for i in range(10)], pa.int32()
                                   ).view(pa.date32())})
    path = tmp_path / OUTPUT_NAMES[kind]
    with dbcrate.open_archive(path, "w", kind=kind, max_row_count=4) as out:
        entry = out.add_table(table, data)
        assert [c.rows for c in entry.chunks] == [4, 4, 2]
        with pytest.raises(UsageError, match="already"):
            out.add_table(table, data)
    with dbcrate.open_archive(path) as archive:
        back = archive.read_table("t")
        assert back.num_rows == 10
        for name in ("id", "d"):
            assert back[name].equals(data[name])
        assert back["v"].to_pylist()[:3] == data["v"].to_pylist()[:3]
    broken = tmp_path / ("broken" + OUTPUT_NAMES[kind])
    with pytest.raises(UsageError, match="schema"), dbcrate.open_archive(broken, "w", kind=kind) as out:
        out.add_table(table, pa.table({"id": [1]}))
    assert not broken.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["directory", "sqlite", "python"])
def test_dump_writer_takes_the_dump_loops_calls(tmp_path: Path, dbs: Databases, kind: str) -> None:
    """DumpWriter gives the dump loop ArchiveWriter's interface over any kind: the members of
    a dump, appended from spool files as dump.py does, make the same archive."""
    src = dbs.new("sqlite")
    create_edge_database("sqlite", src)
    crate = tmp_path / "edge.crate"
    dbcrate.dump(src, crate, chunk_rows=2)  # several chunks per table
    out = tmp_path / OUTPUT_NAMES[kind]
    with dbcrate.open_archive(crate) as arch:
        manifest = copy.deepcopy(arch.manifest)
        tables = [t.schema for t in manifest.tables]
        with open_dump_writer(out, kind, tables=tables, data_format=arch.format.name,
                              mtime=0) as writer:
            for entry in manifest.tables:
                for chunk in entry.chunks:
                    with tempfile.TemporaryFile() as spool:
                        with arch.member_stream(chunk.member) as stream:
                            shutil.copyfileobj(stream, spool)
                        spool.seek(0)
                        writer.add_file(chunk.member, spool, chunk.size)
            writer.commit(manifest)
    assert manifest.data_format == ("parquet" if kind == "directory" else kind)
    with dbcrate.open_archive(out) as archive:
        assert archive.manifest.to_json() == manifest.to_json()
        archive.verify()
    assert_same_archives(crate, out)


# ---------------------------------------------------------------- bounded memory
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child
# would report at least the (large) pytest process's size; VmHWM belongs to the new image
PEAK = """
import sys
import dbcrate
dbcrate.convert(sys.argv[1], sys.argv[2], kind=sys.argv[3], max_row_count=2000)
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def _peak_kib(source: Path, output: Path, kind: str) -> int:
    done = subprocess.run([sys.executable, "-c", PEAK, str(source), str(output), kind],
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def test_conversion_memory_does_not_grow_with_the_table(tmp_path: Path) -> None:
    """200,000 rows (~45 MB of Python values) and 20,000 rows, converted in chunks of 2,000
    rows: the peak resident memory of the two runs differs by far less than the table."""
    peaks = {}
    for rows in (20_000, 200_000):
        src = sqlite_source(tmp_path, [
            "CREATE TABLE big (id INTEGER PRIMARY KEY, label TEXT, x REAL)",
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
            "INSERT INTO big SELECT i, printf('%0150d', i), i / 7.0 FROM n",
        ], f"big{rows}.db")
        crate = tmp_path / f"big{rows}.crate"
        dbcrate.dump(src, crate, chunk_rows=2000)
        py = tmp_path / f"py{rows}"
        peaks[rows] = (_peak_kib(crate, py, "python"),
                       _peak_kib(py, tmp_path / f"big{rows}.sqlite", "sqlite"))
    for small, large in zip(peaks[20_000], peaks[200_000]):
        assert large - small < 25 * 1024, peaks  # KiB; the table itself is ~45 MB


def test_cli_dump_as_every_kind_convert_and_restore(tmp_path: Path) -> None:
    """The command line: dump --as KIND, convert between kinds, restore from each; exact."""
    src = numbers_source(tmp_path, 2_500)
    env = {**os.environ, "NO_COLOR": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dbcrate", *args], capture_output=True,
                              text=True, env=env, timeout=300)

    outputs = {"tar": tmp_path / "n.crate", "directory": tmp_path / "n_dir",
               "sqlite": tmp_path / "n.sqlite", "python": tmp_path / "n_py"}
    for kind, out in outputs.items():
        res = cli("dump", src, str(out), "--as", kind, "--max-row-count", "1000")
        assert res.returncode == 0, res.stderr
        assert detect_kind(out) == kind
        dst = f"sqlite:///{tmp_path / f'{kind}.db'}"
        res = cli("restore", str(out), dst)
        assert res.returncode == 0, res.stderr
        assert snapshot(dst) == snapshot(src)
    assert len(list((outputs["python"] / "data").rglob("*.py"))) == 3
    res = cli("dump", src, str(outputs["python"]), "--as", "python")
    assert res.returncode == OutputError.exit_code and "--overwrite" in res.stderr
    res = cli("convert", str(outputs["python"]), str(tmp_path / "back.crate"), "--format", "jsonl",
              "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["data_format"] == "jsonl"
    res = cli("verify", str(tmp_path / "back.crate"))
    assert res.returncode == 0, res.stderr
    res = cli("convert", str(tmp_path / "back.crate"), str(tmp_path / "x"), "--as", "nosuch")
    assert res.returncode == UsageError.exit_code and "python" in res.stderr
