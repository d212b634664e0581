"""The last seed behaviours (issue 17), library side: the dump script (diskette's make_script),
the storage-exclude switch and relative storage paths (diskette), archives read and written
through file objects (python-icat), and dumps edited by hand then restored with accept_edits
(Lino's data migrations). Real SQLite and PostgreSQL; no mocks.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.cli.dump_cmd import dump as dump_command
from dbcrate.crypto.keys import Encryption
from dbcrate.dump.script import FLAGS, NO_FLAG, make_script, option_arguments
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, UsageError
from dbcrate.model.logical import LogicalType
from dbcrate.model.schema import Column, Table
from dbcrate.options import DumpOptions
from dbcrate.storages.dump import resolve_storages, storage_patterns, survey

from conftest import Databases, require, rows, run_sql

BIN = Path(sys.executable).parent
MEMBER = "data/t0001/c000000.py"


def _source(tmp_path: Path, n: int = 5) -> str:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    run_sql(url, "CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT, x REAL)",
            "CREATE TABLE other (k TEXT PRIMARY KEY)",
            *[f"INSERT INTO t VALUES ({i}, 'row {i}', {i}.5)" for i in range(1, n + 1)],
            "INSERT INTO other VALUES ('a')")
    return url


def _content(path: Path) -> dict[str, object]:
    with dbcrate.open_archive(path) as a:
        m = a.manifest
        return {"format": m.data_format, "schema_version": m.schema_version,
                "tables": [(t.name, t.rows, len(t.chunks), t.schema.to_dict(),
                            a.read_table(t.name).to_pylist()) for t in a.tables],
                "storage": None if m.storage is None else
                (m.storage.files, sorted(r.name for r in m.storage.roots))}


def _run_script(script: str, tmp_path: Path, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "dump.sh"
    path.write_text(script)
    environ = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    done = subprocess.run(["sh", str(path)], env=environ, capture_output=True, text=True,
                          cwd="/", timeout=120)
    assert done.returncode == 0, done.stderr


# --- 1. make_script ------------------------------------------------------------------------


def test_script_makes_the_same_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = _source(tmp_path)
    (tmp_path / "media" / "cache").mkdir(parents=True)
    (tmp_path / "media" / "a.txt").write_text("a")
    (tmp_path / "media" / "cache" / "c.bin").write_text("c")
    options = DumpOptions(include=["t*"], data_format="jsonl", chunk_rows=2,
                          storages=["media"], storage_exclude=["cache/**"],
                          schema_version="v 7; $(touch pwned)", archive_mode=0o640)
    dbcrate.dump(url, "first.crate", options)
    script = make_script(url, "second.crate", options)
    assert script.startswith("#!/bin/sh\n") and "\nset -eu\n" in script
    assert "'v 7; $(touch pwned)'" in script  # quoted: the shell runs nothing of it
    _run_script(script, tmp_path)  # run from / : the script changes directory itself
    assert not (tmp_path / "pwned").exists() and not Path("/pwned").exists()
    first, second = _content(tmp_path / "first.crate"), _content(tmp_path / "second.crate")
    assert first == second
    assert first["storage"] == (1, ["media"])  # cache/** left out in both
    assert [t[0] for t in first["tables"]] == ["t"] and first["tables"][0][2] == 3  # type: ignore[index]
    assert (tmp_path / "second.crate").stat().st_mode & 0o777 == 0o640


def test_script_never_holds_the_password(tmp_path: Path, dbs: Databases) -> None:
    require("postgresql")
    url = dbs.new("postgresql")
    run_sql(url, "CREATE TABLE items (id int PRIMARY KEY, name text)",
            "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 50) g")
    role, secret = f"seed_{uuid.uuid4().hex[:8]}", "S3cr@t:/pw"
    run_sql(url, f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'",
            f"GRANT SELECT ON items TO {role}")
    try:
        rest = url.split("@", 1)[1]
        with_password = f"postgresql+psycopg://{role}:S3cr%40t%3A%2Fpw@{rest}"
        options = DumpOptions(jobs=2, no_native_schema=True)
        dbcrate.dump(with_password, tmp_path / "first.crate", options)
        script = make_script(with_password, tmp_path / "second.crate", options)
        assert "S3cr" not in script and "PGPASSWORD" in script
        assert f"postgresql+psycopg://{role}@" in script
        # the documented way: libpq reads PGPASSWORD (this server trusts local connections,
        # so this shows the script runs as documented, not that the password is checked)
        _run_script(script, tmp_path, {"PGPASSWORD": secret})
        assert _content(tmp_path / "first.crate") == _content(tmp_path / "second.crate")
    finally:
        run_sql(url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_script_spells_every_option_with_a_real_flag() -> None:
    names = {f.name for f in dataclasses.fields(DumpOptions)}
    assert names == set(FLAGS) | set(NO_FLAG)  # a new option must be given a flag here
    known = {opt for p in dump_command.params for opt in p.opts}
    # --ignore-storage-exclude is added to the CLI alongside this module
    assert set(FLAGS.values()) - known <= {"--ignore-storage-exclude"}
    options = DumpOptions(include=["a", "b"], exclude=["c"], data_format="csv",
                          compression_level=9, chunk_rows=7, schema_only=True,
                          schema_version="1", jobs=3, hooks="hooks.py", storages=["m"],
                          storage_exclude=["*.tmp"], ignore_storage_exclude=True,
                          storages_basepath="/srv", no_data=True, no_storages=True,
                          file_columns=["t.c=m"], archive_mode=0o644, container="directory",
                          overwrite=True, tolerate=True, no_native_schema=True,
                          schemas=["sales"], exclude_schemas=["tmp*"],
                          encryption=Encryption(("age1" + "q" * 58,)))
    args = option_arguments(options)
    assert set(FLAGS.values()) <= set(args)
    assert args[args.index("--chmod") + 1] == "644"
    assert args.count("--table") == 2
    assert option_arguments(DumpOptions()) == []
    # the python kind's own default chunk size is no option worth spelling
    assert option_arguments(DumpOptions(container="python", chunk_rows=50_000)) == ["--as", "python"]


def test_script_refuses_what_no_flag_can_say() -> None:
    with pytest.raises(UsageError, match="chunk_bytes"):
        make_script("sqlite:///x.db", "x.crate", DumpOptions(chunk_bytes=1024))
    with pytest.raises(UsageError, match="hooks"):
        make_script("sqlite:///x.db", "x.crate", DumpOptions(hooks=object()))


# --- 2. storages ---------------------------------------------------------------------------


def test_ignore_storage_exclude_collects_every_file(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "cache").mkdir(parents=True)
    for name in ("a.jpg", "b.tmp", "cache/c.jpg"):
        (media / name).write_text(name)
    excluding = DumpOptions(storages=[str(media)], storage_exclude=["*.tmp", "cache/**"])
    ignoring = dataclasses.replace(excluding, ignore_storage_exclude=True)
    assert storage_patterns(excluding) == ["*.tmp", "cache/**"]
    assert storage_patterns(ignoring) == []
    specs = resolve_storages([str(media)], None)
    assert survey(specs, storage_patterns(excluding))[0]["files"] == 1
    assert survey(specs, storage_patterns(ignoring))[0]["files"] == 3


def test_relative_storage_paths_resolve_against_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    (work / "media").mkdir(parents=True)
    (tmp_path / "media").mkdir()  # a decoy beside the base path: never the one taken
    monkeypatch.chdir(work)
    [plain] = resolve_storages(["media"], None)
    assert (plain.path, plain.name) == (work / "media", "media")
    [based] = resolve_storages(["media"], str(tmp_path))
    assert (based.path, based.name) == (work / "media", "work/media")
    [relative_base] = resolve_storages(["./media"], "..")  # the base path is cwd-relative too
    assert (relative_base.path, relative_base.name) == (work / "media", "work/media")
    with pytest.raises(UsageError, match="outside the base path"):
        resolve_storages(["media"], str(tmp_path / "elsewhere"))


# --- 3. open_archive with file objects -----------------------------------------------------


def _table() -> tuple[Table, pa.Table]:
    schema = Table(name="t", columns=[Column("id", LogicalType("int64"), "BIGINT", nullable=False),
                                      Column("s", LogicalType("string"), "TEXT")])
    return schema, pa.table({"id": pa.array([1, 2, 3], pa.int64()),
                             "s": pa.array(["a", None, "ç"], pa.string())})


def test_file_objects_round_trip(tmp_path: Path) -> None:
    schema, data = _table()
    sink = io.BytesIO()
    with dbcrate.open_archive(sink, "w") as out:
        out.add_table(schema, data)
    assert not sink.closed and sink.tell() > 0
    source = io.BytesIO(sink.getvalue())
    with dbcrate.open_archive(source) as archive:
        assert archive.kind == "tar" and archive.read_table("t").equals(data)
        archive.verify()
    assert not source.closed
    # a real file, written "wb" and read "rb", the same bytes as the path's reader reads
    with open(tmp_path / "a.crate", "wb") as handle:
        with dbcrate.open_archive(handle, "w") as out:
            out.add_table(schema, data)
        assert not handle.closed
    with open(tmp_path / "a.crate", "rb") as handle, dbcrate.open_archive(handle) as archive:
        assert archive.path == str(tmp_path / "a.crate")
        assert archive.read_table("t").equals(data)
    with dbcrate.open_archive(tmp_path / "a.crate") as archive:
        assert archive.read_table("t").equals(data)


def test_a_dump_read_through_a_file_object(tmp_path: Path) -> None:
    url = _source(tmp_path)
    dbcrate.dump(url, tmp_path / "d.crate")
    with open(tmp_path / "d.crate", "rb") as handle, dbcrate.open_archive(handle) as archive:
        assert [(t.name, t.rows) for t in archive.tables] == [("other", 1), ("t", 5)]
        assert archive.read_table("t").column("label").to_pylist()[0] == "row 1"


def test_a_tar_is_written_into_a_pipe() -> None:
    schema, data = _table()
    read_fd, write_fd = os.pipe()
    received = io.BytesIO()
    reader = threading.Thread(target=lambda: shutil.copyfileobj(os.fdopen(read_fd, "rb"),
                                                                received))
    reader.start()
    with os.fdopen(write_fd, "wb") as pipe:
        assert not pipe.seekable()
        with dbcrate.open_archive(pipe, "w") as out:
            out.add_table(schema, data)
    reader.join(10)
    with dbcrate.open_archive(io.BytesIO(received.getvalue())) as archive:
        assert archive.read_table("t").equals(data)


def test_file_objects_keep_every_check(tmp_path: Path) -> None:
    schema, data = _table()
    sink = io.BytesIO()
    with dbcrate.open_archive(sink, "w") as out:
        out.add_table(schema, data)
    good = sink.getvalue()
    # cut in the middle of what the tar holds: tar pads a file to 10,240 bytes with zeros, and
    # a cut in that padding loses nothing (this archive's members end at byte 4,673)
    cut = good[:len(good.rstrip(b"\0")) // 2]
    for broken in (cut, b"not a tar at all" * 100, b""):
        (tmp_path / "x.crate").write_bytes(broken)
        with pytest.raises((NotAnArchive, ArchiveCorrupt)) as by_path:
            dbcrate.open_archive(tmp_path / "x.crate")
        with pytest.raises((NotAnArchive, ArchiveCorrupt)) as by_object:
            dbcrate.open_archive(io.BytesIO(broken))
        assert type(by_object.value) is type(by_path.value)
    # one member's bytes changed: refused by its SHA-256, like a file
    member = good.index(b"PAR1") + 8
    flipped = good[:member] + bytes([good[member] ^ 0xFF]) + good[member + 1:]
    with dbcrate.open_archive(io.BytesIO(flipped)) as archive, \
            pytest.raises(ArchiveCorrupt, match="SHA-256"):
        archive.verify()


def test_file_objects_are_for_the_tar_kind_only(tmp_path: Path) -> None:
    for kind in ("directory", "sqlite", "python"):
        with pytest.raises(UsageError, match="file object"):
            dbcrate.open_archive(io.BytesIO(), "w", kind=kind)
        with pytest.raises(UsageError, match="file object"):
            dbcrate.open_archive(io.BytesIO(b"x"), kind=kind)
    with pytest.raises(UsageError, match="not open for writing"):
        dbcrate.open_archive(io.BufferedReader(io.BytesIO(b"")), "w")  # type: ignore[arg-type]


# --- 4. accept_edits -----------------------------------------------------------------------


def _python_dump(tmp_path: Path, n: int = 5) -> tuple[str, Path]:
    url = _source(tmp_path, n)
    dbcrate.dump_as(url, tmp_path / "py", "python", include=["t"])
    return url, tmp_path / "py"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_edited_python_dump_is_restored_with_accept_edits(tmp_path: Path) -> None:
    _url, dump = _python_dump(tmp_path)
    module = dump / MEMBER
    _edit(module, "'row 2'", "'migrated 2'")               # a value changed
    _edit(module, "    (5, 'row 5', 5.5),\n", "")           # a row removed
    _edit(module, "\n]", "\n    (6, 'added', None),\n    (7, 'also', -0.0),\n]")  # two added
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with pytest.raises(ArchiveCorrupt, match=f"{MEMBER} has .* bytes, the manifest says"):
        dbcrate.restore(dump, target)
    with dbcrate.open_archive(dump, accept_edits=True) as archive:
        [edit] = archive.edited
        assert (edit.member, edit.table, edit.before.rows, edit.after.rows) == (MEMBER, "t", 5, 6)
        assert edit.describe() == (f"edited by hand: {MEMBER} (table t): accepted "
                                   "(accept_edits=True); 6 rows, the dump had 5")
        assert archive.table("t").rows == 6 and archive.manifest.rows == 6
        archive.verify()  # the accepted edit is what is checked from now on
        report = dbcrate.restore(archive, target)
    assert report.ok and {t.name: t.rows for t in report.tables} == {"t": 6}
    assert rows(target, "SELECT id, label, x FROM t ORDER BY id") == [
        (1, "row 1", 1.5), (2, "migrated 2", 2.5), (3, "row 3", 3.5), (4, "row 4", 4.5),
        (6, "added", None), (7, "also", -0.0)]
    # the files on disk were not touched: without accept_edits still refused
    with pytest.raises(ArchiveCorrupt), dbcrate.open_archive(dump) as archive:
        archive.verify()


def test_restore_accept_edits_by_path_and_on_the_command_line(tmp_path: Path) -> None:
    _url, dump = _python_dump(tmp_path)
    _edit(dump / MEMBER, "'row 2'", "'migrated 2'")
    target = f"sqlite:///{tmp_path / 'api.db'}"
    report = dbcrate.restore(dump, target, accept_edits=True)
    assert report.ok and rows(target, "SELECT label FROM t WHERE id = 2") == [("migrated 2",)]
    assert [w for w in report.warnings if w.startswith("edited by hand")] == [
        f"edited by hand: {MEMBER} (table t): accepted (accept_edits=True)"], report.warnings
    with dbcrate.open_archive(dump, accept_edits=True) as archive, \
            pytest.raises(UsageError, match="open already"):
        dbcrate.restore(archive, f"sqlite:///{tmp_path / 'open.db'}", accept_edits=True)
    cli_target = f"sqlite:///{tmp_path / 'cli.db'}"
    said = subprocess.run([sys.executable, "-m", "dbcrate", "restore", str(dump), cli_target],
                          capture_output=True, text=True)
    assert said.returncode == ArchiveCorrupt.exit_code and "Traceback" not in said.stderr
    said = subprocess.run([sys.executable, "-m", "dbcrate", "restore", "--accept-edits",
                           str(dump), cli_target], capture_output=True, text=True)
    assert said.returncode == 0, said.stderr
    # the command line speaks of its flag where the library speaks of its argument
    assert f"edited by hand: {MEMBER} (table t): accepted (--accept-edits)" in \
        said.stdout + said.stderr
    assert rows(cli_target, "SELECT label FROM t WHERE id = 2") == [("migrated 2",)]


def test_dump_ignoring_the_storage_excludes_stores_every_file(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "cache").mkdir(parents=True)
    for name in ("a.jpg", "b.tmp", "cache/c.jpg"):
        (media / name).write_text(name)
    url = _source(tmp_path, 2)
    for ignore, files in ((False, 1), (True, 3)):
        out = tmp_path / f"s{ignore}.crate"
        dbcrate.dump(url, out, storages=[str(media)], storage_exclude=["*.tmp", "cache/**"],
                     ignore_storage_exclude=ignore)
        storage = dbcrate.open_archive(out).manifest.storage
        assert storage is not None and storage.files == files


def test_accept_edits_still_never_runs_an_edited_module(tmp_path: Path) -> None:
    _url, dump = _python_dump(tmp_path)
    marker = tmp_path / "ran"
    _edit(dump / MEMBER, "'row 1'", f"__import__('os').system('touch {marker}')")
    with pytest.raises(ArchiveCorrupt, match="a function call") as info:
        dbcrate.open_archive(dump, accept_edits=True)
    assert MEMBER in info.value.message and "line " in info.value.message
    assert not marker.exists()


def test_an_unedited_dump_opens_the_same_with_accept_edits(tmp_path: Path) -> None:
    _url, dump = _python_dump(tmp_path)
    with dbcrate.open_archive(dump) as plain, \
            dbcrate.open_archive(dump, accept_edits=True) as accepting:
        assert list(accepting.edited) == [] and list(plain.edited) == []
        assert accepting.manifest.to_json() == plain.manifest.to_json()


def test_an_edited_directory_member_is_accepted(tmp_path: Path) -> None:
    url = _source(tmp_path)
    dump = tmp_path / "dir"
    dbcrate.dump_as(url, dump, "directory", data_format="jsonl", include=["t"])
    member = dump / "data" / "t0001" / "c000000.jsonl"
    text = zstandard.ZstdDecompressor().decompressobj().decompress(member.read_bytes()).decode()
    edited = text.replace('"row 3"', '"edited 3"')
    assert edited != text
    member.write_bytes(zstandard.ZstdCompressor().compress(edited.encode()))
    with pytest.raises(ArchiveCorrupt):
        dbcrate.open_archive(dump)  # its size changed: refused at open
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with dbcrate.open_archive(dump, accept_edits=True) as archive:
        assert [e.member for e in archive.edited] == ["data/t0001/c000000.jsonl"]
        dbcrate.restore(archive, target)
    assert rows(target, "SELECT label FROM t WHERE id = 3") == [("edited 3",)]


def test_accept_edits_is_refused_for_tar_and_sqlite(tmp_path: Path) -> None:
    url = _source(tmp_path)
    dbcrate.dump(url, tmp_path / "a.crate")
    dbcrate.dump_as(url, tmp_path / "a.sqlite", "sqlite")
    for path in (tmp_path / "a.crate", tmp_path / "a.sqlite"):
        with pytest.raises(UsageError, match="python and directory kinds"):
            dbcrate.open_archive(path, accept_edits=True)


values = st.tuples(st.integers(-2**63, 2**63 - 1),
                   st.none() | st.text(max_size=12),
                   st.none() | st.floats(allow_nan=False, width=64))


@settings(max_examples=30, deadline=None)
@given(st.lists(values, min_size=0, max_size=8, unique_by=lambda r: r[0]))
def test_edited_rows_are_read_back_exactly(tmp_path_factory: pytest.TempPathFactory,
                                           new_rows: list[tuple[int, str | None, float | None]]
                                           ) -> None:
    tmp_path = tmp_path_factory.mktemp("edit")
    url = f"sqlite:///{tmp_path / 'src.db'}"
    run_sql(url, "CREATE TABLE t (id BIGINT PRIMARY KEY, label TEXT, x REAL)",
            "INSERT INTO t VALUES (1, 'one', 1.0)")
    dump = tmp_path / "py"
    dbcrate.dump_as(url, dump, "python")
    module = dump / MEMBER
    head = module.read_text().split("ROWS = [")[0]
    def float_literal(x: float | None) -> str:  # the python kind's spelling of infinities
        return repr(x) if x is None or math.isfinite(x) else repr("Infinity" if x > 0 else "-Infinity")

    body = "".join(f"    ({i!r}, {s!r}, {float_literal(x)}),\n" for i, s, x in new_rows)
    module.write_text(f"{head}ROWS = [\n{body}]\n")
    with dbcrate.open_archive(dump, accept_edits=True) as archive:
        got = archive.read_table("t").to_pylist()
        assert archive.table("t").rows == len(new_rows)
    assert [(r["id"], r["label"], r["x"]) for r in got] == new_rows
