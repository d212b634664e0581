"""Hostile and damaged inputs: every one is refused with the exact error class and exit code.

A good archive of Chinook is written once; the bad inputs are crafted from it with ``tarfile``
(members kept in order: dbcrate-archive.json, data/..., manifest.json, manifest.sha256; the
manifest digest is recomputed whenever manifest.json is changed, so that each case reaches the
check it is meant to test). For each input the library must raise the exact class from
dbcrate.errors, and ``dbcrate ls/verify/restore`` must exit with its code, without a traceback,
and without creating any table in the restore target.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.cli import commands as dbcrate_cli
from dbcrate.errors import (
    ArchiveCorrupt,
    DbcrateError,
    NotAnArchive,
    UnsupportedFormatVersion,
)

from conftest import DATASETS, Databases, run_sql

CHINOOK = DATASETS / "chinook" / "Chinook_Sqlite.sqlite"
MARKER = "dbcrate-archive.json"
MANIFEST = "manifest.json"
DIGEST = "manifest.sha256"
ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)


# ------------------------------------------------------------------------------ helpers
@dataclass
class Member:
    info: tarfile.TarInfo
    data: bytes


@dataclass
class Good:
    path: Path
    members: list[Member]

    def get(self, name: str) -> Member:
        return next(m for m in self.members if m.info.name == name)

    def copy_members(self) -> list[Member]:
        return [Member(_copy_info(m.info), m.data) for m in self.members]

    def offsets(self) -> dict[str, tuple[int, int]]:
        """member name -> (offset_data, size) in the good archive file."""
        with tarfile.open(self.path, "r:") as tar:
            return {i.name: (i.offset_data, i.size) for i in tar.getmembers()}


def _copy_info(info: tarfile.TarInfo) -> tarfile.TarInfo:
    new = tarfile.TarInfo(info.name)
    for attr in ("size", "mode", "mtime", "type", "uid", "gid", "uname", "gname", "linkname"):
        setattr(new, attr, getattr(info, attr))
    return new


def regular(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = 1_700_000_000
    info.type = tarfile.REGTYPE
    return Member(info, data)


def write_tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = _copy_info(m.info)
            if info.isreg():
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                info.size = 0
                tar.addfile(info)
    return path


def with_manifest(members: list[Member], change: Callable[[dict[str, Any]], None]) -> list[Member]:
    """Apply ``change`` to the parsed manifest and recompute manifest.sha256."""
    out = []
    for m in members:
        if m.info.name == MANIFEST:
            doc = json.loads(m.data)
            change(doc)
            raw = json.dumps(doc, indent=1, ensure_ascii=False).encode()
            m = Member(m.info, raw)
        out.append(m)
    raw = next(m.data for m in out if m.info.name == MANIFEST)
    digest = (hashlib.sha256(raw).hexdigest() + "\n").encode()
    return [Member(m.info, digest) if m.info.name == DIGEST else m for m in out]


def with_marker(members: list[Member], marker: dict[str, Any]) -> list[Member]:
    return [Member(m.info, json.dumps(marker).encode()) if m.info.name == MARKER else m
            for m in members]


def flip_bit(src: Path, dst: Path, offset: int, bit: int = 3) -> Path:
    data = bytearray(src.read_bytes())
    data[offset] ^= 1 << bit
    dst.write_bytes(bytes(data))
    return dst


def sqlite_tables(path: Path) -> set[str]:
    if not path.exists():
        return set()
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    finally:
        con.close()


@dataclass
class Run:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"dbcrate {' '.join(self.argv)} -> exit {self.rc}\n"
                f"stdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-3000:]}")


def cli_many(*argvs: list[str], stdin: bytes | None = None) -> list[Run]:
    """Run several ``dbcrate`` commands concurrently, each as a real subprocess."""
    procs = [subprocess.Popen([sys.executable, "-m", "dbcrate", *argv], env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for argv in argvs]
    runs = []
    for argv, proc in zip(argvs, procs):
        out, err = proc.communicate(stdin or b"", timeout=120)
        runs.append(Run(argv, proc.returncode, out.decode("utf-8", "replace"),
                        err.decode("utf-8", "replace")))
    return runs


def cli(*argv: str) -> Run:
    """Run ``dbcrate`` in this process through dbcrate.cli.commands.main, capturing SystemExit.

    Any exception other than SystemExit escaping main() is a bug and fails the test as is.
    """
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            dbcrate_cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return Run(list(argv), 0 if code is None else code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _wide_console() -> Iterator[None]:
    """The CLI's rich consoles were made at import: widen them so messages never wrap."""
    saved = (dbcrate_cli.err._width, dbcrate_cli.out._width)
    dbcrate_cli.err._width = dbcrate_cli.out._width = 10_000
    yield
    dbcrate_cli.err._width, dbcrate_cli.out._width = saved


def assert_refused(run: Run, code: int, *fragments: str) -> None:
    assert "Traceback" not in run.stderr, run.describe()
    assert "internal error" not in run.stderr, run.describe()
    assert run.rc == code, run.describe()
    flat = " ".join(run.stderr.split())
    assert flat.startswith("error:"), run.describe()
    for fragment in fragments:
        assert fragment in flat, f"{fragment!r} not named\n{run.describe()}"


def library_error(path: Path, target: Path | None = None) -> DbcrateError | None:
    """The error of open_archive + verify, and check that restore raises the same class."""
    found: DbcrateError | None = None
    try:
        with dbcrate.open_archive(path) as a:
            a.verify()
    except DbcrateError as exc:
        found = exc
    if target is not None:
        try:
            report = dbcrate.restore(path, f"sqlite:///{target}")
        except DbcrateError as exc:
            assert found is not None and type(exc) is type(found), (exc, found)
        else:
            assert found is None, (
                f"verify raises {type(found).__name__} ({found}), but restore did not raise: it "
                f"returned ok={report.ok}, wrote tables {sorted(sqlite_tables(target))}, "
                f"failures {[(t.name, t.error) for t in report.tables if t.status == 'failed']}")
    return found


def expect_refused(path: Path, tmp: Path, exc_type: type[DbcrateError], *fragments: str,
                   ls_too: bool = True, member: str | None = None,
                   subprocess_too: bool = False) -> None:
    """Library: the exact class (open + verify, and restore). CLI: ls, verify and restore exit
    with its code, name the problem, create no table; with ``subprocess_too`` also as real
    processes."""
    procs: list[Run] = []
    sub_target = tmp / "sub_target.db"
    lib_target = tmp / "lib_target.db"
    exc = library_error(path, lib_target)
    assert exc is not None, f"{path.name}: accepted as a good archive"
    assert type(exc) is exc_type, f"{type(exc).__name__}: {exc}"
    assert sqlite_tables(lib_target) == set()
    if member is not None:
        assert getattr(exc, "member", None) == member
    code = exc_type.exit_code
    cli_target = tmp / "cli_target.db"
    argvs = [["verify", str(path)], ["restore", str(path), f"sqlite:///{cli_target}"]]
    if ls_too:
        argvs.append(["ls", str(path)])
    for argv in argvs:
        assert_refused(cli(*argv), code, *fragments)
    assert sqlite_tables(cli_target) == set()
    if subprocess_too:
        procs = cli_many(["verify", str(path)],
                         ["restore", str(path), f"sqlite:///{sub_target}"])
        for run in procs:
            assert_refused(run, code, *fragments)
        assert sqlite_tables(sub_target) == set()


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Good:
    if not CHINOOK.exists():
        pytest.skip(f"dataset missing: {CHINOOK}")
    base = tmp_path_factory.mktemp("good")
    src = base / "chinook.db"
    shutil.copy(CHINOOK, src)
    path = base / "good.crate"
    dbcrate.dump(f"sqlite:///{src}", path)
    with tarfile.open(path, "r:") as tar:
        members = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            assert handle is not None
            members.append(Member(_copy_info(info), handle.read()))
    names = [m.info.name for m in members]
    assert names[0] == MARKER and names[-2:] == [MANIFEST, DIGEST]
    assert all(n.startswith("data/") for n in names[1:-2])
    return Good(path, members)


# --------------------------------------------------------------------------- controls
def test_control_good_archive_and_faithful_rebuild(good: Good, tmp_path: Path) -> None:
    """The good archive and an unchanged rebuild both pass: the crafted cases test one change."""
    rebuilt = write_tar(tmp_path / "rebuilt.crate", good.copy_members())
    manifest_rebuilt = write_tar(tmp_path / "manifest.crate",
                                 with_manifest(good.copy_members(), lambda d: None))
    for path in (good.path, rebuilt, manifest_rebuilt):
        assert library_error(path, tmp_path / f"{path.stem}.db") is None
        assert len(sqlite_tables(tmp_path / f"{path.stem}.db")) == 11
    for run in cli_many(["verify", str(rebuilt)], ["verify", str(manifest_rebuilt)]):
        assert run.rc == 0, run.describe()


# ----------------------------------------------------------------------- not an archive
def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.crate"
    path.write_bytes(b"")
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive", subprocess_too=True)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.crate"
    path.write_bytes(random.Random(1234).randbytes(64 * 1024))
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive", subprocess_too=True)


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "zeros.crate"
    path.write_bytes(bytes(10240))
    expect_refused(path, tmp_path, NotAnArchive)


def test_zip_file(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(MARKER, json.dumps({"format": "dbcrate-archive", "format_version": 1}))
        z.writestr(MANIFEST, "{}")
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive", subprocess_too=True)


def test_gzipped_archive(good: Good, tmp_path: Path) -> None:
    path = tmp_path / "good.crate.gz"
    path.write_bytes(gzip.compress(good.path.read_bytes()))
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive")


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "adir.crate"
    path.mkdir()
    expect_refused(path, tmp_path, NotAnArchive, "directory", subprocess_too=True)


def test_pg_dump_custom_format(dbs: Databases, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump not installed")
    url = dbs.new("postgresql")
    run_sql(url, "CREATE TABLE t (id integer PRIMARY KEY, v text)",
            "INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    u = sa.engine.make_url(url)
    path = tmp_path / "pg.dump"
    subprocess.run(["pg_dump", "-Fc", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432),
                    "-U", u.username or "postgres", "-d", u.database, "-f", str(path)],
                   check=True, capture_output=True)
    assert path.read_bytes().startswith(b"PGDMP")
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive", subprocess_too=True)


def test_plain_tar_without_marker(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "plain.tar", [regular("hello.txt", b"hello\n"),
                                               regular("data/x.csv", b"a,b\n1,2\n")])
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive", subprocess_too=True)


def test_empty_tar(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "empty.tar", [])
    expect_refused(path, tmp_path, NotAnArchive)


def test_marker_not_first(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    members = members[1:2] + members[:1] + members[2:]
    path = write_tar(tmp_path / "late-marker.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, "not a dbcrate archive")


def test_marker_of_another_format(good: Good, tmp_path: Path) -> None:
    path = write_tar(tmp_path / "other.crate",
                     with_marker(good.copy_members(), {"format": "other", "format_version": 1}))
    expect_refused(path, tmp_path, NotAnArchive)


def test_marker_not_json(good: Good, tmp_path: Path) -> None:
    members = [Member(m.info, b"\xff{not json") if m.info.name == MARKER else m
               for m in good.copy_members()]
    path = write_tar(tmp_path / "badmarker.crate", members)
    expect_refused(path, tmp_path, NotAnArchive)


# ------------------------------------------------------------------------ format version
def test_format_version_99(good: Good, tmp_path: Path) -> None:
    path = write_tar(tmp_path / "v99.crate", with_marker(
        good.copy_members(), {"format": "dbcrate-archive", "format_version": 99}))
    expect_refused(path, tmp_path, UnsupportedFormatVersion, "99", subprocess_too=True)


def test_format_version_99_everywhere(good: Good, tmp_path: Path) -> None:
    """A consistent archive from a 'future' dbcrate: marker and manifest both say 99."""
    members = with_manifest(good.copy_members(), lambda d: d.update(format_version=99))
    members = with_marker(members, {"format": "dbcrate-archive", "format_version": 99})
    path = write_tar(tmp_path / "future.crate", members)
    expect_refused(path, tmp_path, UnsupportedFormatVersion, "99")


def test_format_version_99_is_checked_before_anything_else(tmp_path: Path) -> None:
    """Only the marker, then members a newer format might have: the version wins."""
    marker = regular(MARKER, json.dumps({"format": "dbcrate-archive",
                                         "format_version": 99}).encode())
    path = write_tar(tmp_path / "v99-only.crate",
                     [marker, regular("blobs/0001.bin", b"\x00" * 100)])
    expect_refused(path, tmp_path, UnsupportedFormatVersion, "99")


def test_manifest_format_version_99(good: Good, tmp_path: Path) -> None:
    members = with_manifest(good.copy_members(), lambda d: d.update(format_version=99))
    path = write_tar(tmp_path / "mv99.crate", members)
    expect_refused(path, tmp_path, UnsupportedFormatVersion, "99")


@pytest.mark.parametrize("marker", [
    {"format": "dbcrate-archive"},
    {"format": "dbcrate-archive", "format_version": None},
    {"format": "dbcrate-archive", "format_version": "1"},
    {"format": "dbcrate-archive", "format_version": 0},
    {"format": "dbcrate-archive", "format_version": True},
    {"format": "dbcrate-archive", "format_version": 1.5},
], ids=["missing", "null", "string", "zero", "bool", "float"])
def test_format_version_missing_or_invalid(marker: dict[str, Any], good: Good,
                                           tmp_path: Path) -> None:
    path = write_tar(tmp_path / "nov.crate", with_marker(good.copy_members(), marker))
    expect_refused(path, tmp_path, NotAnArchive, "format version", subprocess_too=True)


# ---------------------------------------------------------------------------- truncation
def _truncation_points(good: Good) -> dict[str, int]:
    off = good.offsets()
    marker_at, _ = off[MARKER]
    manifest_at, manifest_size = off[MANIFEST]
    digest_at, digest_size = off[DIGEST]
    first_data = next(n for n in off if n.startswith("data/"))
    return {
        "first-byte": 1,
        "in-first-header": 300,
        "in-marker": marker_at + 10,
        "in-first-data": off[first_data][0] + off[first_data][1] // 2,
        "middle": good.path.stat().st_size // 2,
        "before-manifest": manifest_at - 512,
        "in-manifest": manifest_at + manifest_size // 2,
        "in-digest": digest_at + 20,
        "last-byte-of-content": digest_at + digest_size - 1,
    }


@pytest.mark.parametrize("where", ["first-byte", "in-first-header", "in-marker", "in-first-data",
                                   "middle", "before-manifest", "in-manifest", "in-digest",
                                   "last-byte-of-content"])
def test_truncated(where: str, good: Good, tmp_path: Path) -> None:
    cut = _truncation_points(good)[where]
    path = tmp_path / "cut.crate"
    path.write_bytes(good.path.read_bytes()[:cut])
    exc = library_error(path, tmp_path / "lib.db")
    assert exc is not None, f"archive cut at {cut} ({where}) was accepted"
    assert type(exc) in (ArchiveCorrupt, NotAnArchive), f"{type(exc).__name__}: {exc}"
    assert sqlite_tables(tmp_path / "lib.db") == set()
    target = tmp_path / "cli.db"
    argvs = [["verify", str(path)], ["ls", str(path)], ["restore", str(path), f"sqlite:///{target}"]]
    runs = [cli(*argv) for argv in argvs]
    if where in ("middle", "last-byte-of-content"):
        runs += cli_many(argvs[0], argvs[2])
    for run in runs:
        assert_refused(run, type(exc).exit_code)
    assert sqlite_tables(target) == set()


def test_truncated_on_standard_input(good: Good, tmp_path: Path) -> None:
    data = good.path.read_bytes()
    target = tmp_path / "t.db"
    (run,) = cli_many(["restore", "-", f"sqlite:///{target}"], stdin=data[: len(data) // 2])
    assert_refused(run, ArchiveCorrupt.exit_code, "standard input")
    assert sqlite_tables(target) == set()


# ---------------------------------------------------------------------------- bit flips
@pytest.mark.parametrize("which", ["first", "last"])
def test_flipped_bit_in_data_member(which: str, good: Good, tmp_path: Path) -> None:
    data_members = [n for n in good.offsets() if n.startswith("data/")]
    name = data_members[0] if which == "first" else data_members[-1]
    at, size = good.offsets()[name]
    path = flip_bit(good.path, tmp_path / "flip.crate", at + size // 2)

    # ls reads only the manifest: it still works
    ls = cli("ls", str(path))
    assert ls.rc == 0, ls.describe()

    with dbcrate.open_archive(path) as a, pytest.raises(ArchiveCorrupt) as info:
        a.verify()
    assert type(info.value) is ArchiveCorrupt
    assert info.value.member == name
    assert name in str(info.value)

    lib_target = tmp_path / "lib.db"
    with pytest.raises(ArchiveCorrupt) as info:
        dbcrate.restore(path, f"sqlite:///{lib_target}")
    assert type(info.value) is ArchiveCorrupt and info.value.member == name
    assert sqlite_tables(lib_target) == set()

    target = tmp_path / "cli.db"
    dry = tmp_path / "dry.db"
    verify, restore, dry_run = cli_many(
        ["verify", str(path)], ["restore", str(path), f"sqlite:///{target}"],
        ["restore", str(path), f"sqlite:///{dry}", "--dry-run"])
    for run in (verify, restore, dry_run):
        assert_refused(run, 6, name)
    assert sqlite_tables(target) == set(), "a corrupt archive created tables in the target"
    assert sqlite_tables(dry) == set()


def test_flipped_bit_in_data_member_postgresql_target(good: Good, dbs: Databases,
                                                      tmp_path: Path) -> None:
    name = [n for n in good.offsets() if n.startswith("data/")][-1]
    at, size = good.offsets()[name]
    path = flip_bit(good.path, tmp_path / "flip.crate", at + size // 3)
    url = dbs.new("postgresql")
    (run,) = cli_many(["restore", str(path), url])
    assert_refused(run, 6, name)
    eng = sa.create_engine(url)
    with eng.connect() as c:
        assert sa.inspect(c).get_table_names() == []
    eng.dispose()


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_flipped_bit_in_manifest(where: str, good: Good, tmp_path: Path) -> None:
    at, size = good.offsets()[MANIFEST]
    offset = {"start": at + 2, "middle": at + size // 2, "end": at + size - 3}[where]
    path = flip_bit(good.path, tmp_path / "mflip.crate", offset, bit=1)
    expect_refused(path, tmp_path, ArchiveCorrupt, MANIFEST, member=MANIFEST, subprocess_too=True)


def test_flipped_bit_in_manifest_digest(good: Good, tmp_path: Path) -> None:
    at, _ = good.offsets()[DIGEST]
    path = flip_bit(good.path, tmp_path / "dflip.crate", at + 5, bit=0)
    expect_refused(path, tmp_path, ArchiveCorrupt, MANIFEST)


def test_flipped_bit_in_a_member_header(good: Good, tmp_path: Path) -> None:
    name = [n for n in good.offsets() if n.startswith("data/")][3]
    at, _ = good.offsets()[name]
    path = flip_bit(good.path, tmp_path / "hflip.crate", at - 512 + 5)  # in the name field
    exc = library_error(path, tmp_path / "lib.db")
    assert exc is not None
    assert type(exc) in (ArchiveCorrupt, NotAnArchive)
    expect_refused(path, tmp_path, type(exc))


# ----------------------------------------------------------------------- member list
def test_duplicated_member(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    dup = members[1]
    members.insert(2, Member(_copy_info(dup.info), dup.data))
    path = write_tar(tmp_path / "dup.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, dup.info.name, "twice", subprocess_too=True)


def test_duplicated_member_with_different_content(good: Good, tmp_path: Path) -> None:
    """The second copy would shadow the first in tarfile: it must be refused, not picked."""
    members = good.copy_members()
    first = members[1]
    other = members[2]
    shadow = Member(_copy_info(first.info), other.data)
    members.insert(-2, shadow)
    path = write_tar(tmp_path / "shadow.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, first.info.name)


@pytest.mark.parametrize("name", [MANIFEST, MARKER])
def test_duplicated_special_member(name: str, good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    m = good.get(name)
    members.insert(len(members) - 2, Member(_copy_info(m.info), m.data))
    path = write_tar(tmp_path / "dup2.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, name)


@pytest.mark.parametrize("extra", ["notes.txt", "data/t0099/c000000.parquet"])
def test_extra_unlisted_member(extra: str, good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    members.insert(len(members) - 2, regular(extra, b"unlisted\n"))
    path = write_tar(tmp_path / "extra.crate", members)
    expect_refused(path, tmp_path, ArchiveCorrupt, extra, subprocess_too=True)


def test_missing_data_member(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    gone = members.pop(3)
    path = write_tar(tmp_path / "missing.crate", members)
    expect_refused(path, tmp_path, ArchiveCorrupt, gone.info.name, member=gone.info.name)


def test_missing_manifest(good: Good, tmp_path: Path) -> None:
    members = [m for m in good.copy_members() if m.info.name not in (MANIFEST, DIGEST)]
    path = write_tar(tmp_path / "nomanifest.crate", members)
    expect_refused(path, tmp_path, ArchiveCorrupt, "manifest")


def test_missing_manifest_digest(good: Good, tmp_path: Path) -> None:
    members = [m for m in good.copy_members() if m.info.name != DIGEST]
    path = write_tar(tmp_path / "nodigest.crate", members)
    expect_refused(path, tmp_path, ArchiveCorrupt)


def _link(name: str, target: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = 0o777
    return Member(info, b"")


def test_symlink_member(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    members.insert(2, _link("data/link.parquet", "/etc/passwd", tarfile.SYMTYPE))
    path = write_tar(tmp_path / "symlink.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, "data/link.parquet", "not a regular file", subprocess_too=True)


def test_symlink_in_place_of_a_data_member(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    name = members[1].info.name
    members[1] = _link(name, "/etc/passwd", tarfile.SYMTYPE)
    path = write_tar(tmp_path / "symlink2.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, name)


def test_hardlink_member(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    name = members[1].info.name
    members.insert(2, _link("data/hard.parquet", name, tarfile.LNKTYPE))
    path = write_tar(tmp_path / "hardlink.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, "data/hard.parquet")


def test_directory_member(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    info = tarfile.TarInfo("data/")
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    members.insert(1, Member(info, b""))
    path = write_tar(tmp_path / "dirmember.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, "data")


# --------------------------------------------------------------- tampered manifest contents
def test_manifest_member_path_traversal(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    old = members[1].info.name
    evil = "../../evil.parquet"

    def change(doc: dict[str, Any]) -> None:
        for t in doc["tables"]:
            for c in t["chunks"]:
                if c["member"] == old:
                    c["member"] = evil

    members = with_manifest(members, change)
    members[1].info.name = evil
    path = write_tar(tmp_path / "traversal.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, "evil.parquet")
    assert not (tmp_path.parent / "evil.parquet").exists()


def test_manifest_wrong_chunk_size(good: Good, tmp_path: Path) -> None:
    name = good.members[1].info.name

    def change(doc: dict[str, Any]) -> None:
        for t in doc["tables"]:
            for c in t["chunks"]:
                if c["member"] == name:
                    c["size"] += 1
                    t["bytes"] += 1

    path = write_tar(tmp_path / "size.crate", with_manifest(good.copy_members(), change))
    expect_refused(path, tmp_path, ArchiveCorrupt, name, member=name)


def test_manifest_wrong_chunk_sha256(good: Good, tmp_path: Path) -> None:
    name = good.members[-3].info.name

    def change(doc: dict[str, Any]) -> None:
        for t in doc["tables"]:
            for c in t["chunks"]:
                if c["member"] == name:
                    c["sha256"] = "0" * 64

    path = write_tar(tmp_path / "sha.crate", with_manifest(good.copy_members(), change))
    expect_refused(path, tmp_path, ArchiveCorrupt, name, ls_too=False, member=name)


def test_manifest_wrong_row_count(good: Good, tmp_path: Path) -> None:
    """Row count raised consistently in chunk and table: decoding must notice."""
    name = good.members[1].info.name

    def change(doc: dict[str, Any]) -> None:
        for t in doc["tables"]:
            for c in t["chunks"]:
                if c["member"] == name:
                    c["rows"] += 5
                    t["rows"] += 5

    path = write_tar(tmp_path / "rows.crate", with_manifest(good.copy_members(), change))
    expect_refused(path, tmp_path, ArchiveCorrupt, name, ls_too=False, member=name)


def test_manifest_not_json(good: Good, tmp_path: Path) -> None:
    members = good.copy_members()
    for m in members:
        if m.info.name == MANIFEST:
            m.data = b"{ this is not json"
        if m.info.name == DIGEST:
            m.data = (hashlib.sha256(b"{ this is not json").hexdigest() + "\n").encode()
    path = write_tar(tmp_path / "badjson.crate", members)
    expect_refused(path, tmp_path, NotAnArchive, MANIFEST)


def test_manifest_duplicate_table(good: Good, tmp_path: Path) -> None:
    path = write_tar(tmp_path / "duptable.crate", with_manifest(
        good.copy_members(), lambda d: d["tables"].append(dict(d["tables"][0], chunks=[], rows=0, bytes=0))))
    expect_refused(path, tmp_path, NotAnArchive, "twice")


# ------------------------------------------------------------------------ hostile names
HOSTILE = 'x"; DROP TABLE canary; --'


@pytest.fixture(scope="module")
def hostile_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A SQLite database with a table named HOSTILE and a `canary` table, and its archive."""
    base = tmp_path_factory.mktemp("hostile")
    db = base / "hostile.db"
    con = sqlite3.connect(db)
    quoted = '"' + HOSTILE.replace('"', '""') + '"'
    con.execute(f"CREATE TABLE {quoted} (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    con.executemany(f"INSERT INTO {quoted} VALUES (?, ?)",
                    [(1, "one"), (2, "it's \"quoted\"; DROP TABLE canary; --")])
    con.execute("CREATE TABLE canary (id INTEGER PRIMARY KEY, note TEXT)")
    con.execute("INSERT INTO canary VALUES (1, 'source canary')")
    con.commit()
    con.close()
    crate = base / "hostile.crate"
    dbcrate.dump(f"sqlite:///{db}", crate)
    assert sqlite_tables(db) == {HOSTILE, "canary"}  # dumping did not run the name as SQL
    return db, crate


def _rows(url: str, table: str) -> list[tuple[Any, ...]]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            q = c.dialect.identifier_preparer.quote_identifier
            return sorted(tuple(r) for r in c.exec_driver_sql(f"SELECT * FROM {q(table)}").all())
    finally:
        eng.dispose()


def _tables(url: str) -> set[str]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return set(sa.inspect(c).get_table_names())
    finally:
        eng.dispose()


def test_hostile_name_is_listed_exactly(hostile_source: tuple[Path, Path]) -> None:
    _, crate = hostile_source
    with dbcrate.open_archive(crate) as a:
        assert {t.name for t in a.tables} == {HOSTILE, "canary"}
        a.verify()
    run = cli("ls", str(crate), "--json")
    assert run.rc == 0, run.describe()
    assert {t["name"] for t in json.loads(run.stdout)["tables"]} == {HOSTILE, "canary"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_hostile_table_name_round_trips(kind: str, hostile_source: tuple[Path, Path],
                                        dbs: Databases) -> None:
    db, crate = hostile_source
    source = f"sqlite:///{db}"

    # 1. the whole archive into an empty database
    url = dbs.new(kind)
    report = dbcrate.restore(crate, url)
    assert report.ok, report.to_dict()
    assert _tables(url) == {HOSTILE, "canary"}
    assert _rows(url, HOSTILE) == _rows(source, HOSTILE)
    assert _rows(url, "canary") == [(1, "source canary")]

    # 2. only the hostile table, into a database whose own canary must survive
    url2 = dbs.new(kind)
    run_sql(url2, "CREATE TABLE canary (id integer PRIMARY KEY, note text)",
            "INSERT INTO canary VALUES (7, 'target canary')")
    report = dbcrate.restore(crate, url2, exclude=["canary"])
    assert report.ok, report.to_dict()
    assert _tables(url2) == {HOSTILE, "canary"}
    assert _rows(url2, HOSTILE) == _rows(source, HOSTILE)
    assert _rows(url2, "canary") == [(7, "target canary")]

    # 3. again with --clean through the CLI: the hostile name goes through DROP TABLE too
    run = cli("restore", str(crate), url2, "-T", "canary", "--clean")
    assert run.rc == 0, run.describe()
    assert _tables(url2) == {HOSTILE, "canary"}
    assert _rows(url2, HOSTILE) == _rows(source, HOSTILE)
    assert _rows(url2, "canary") == [(7, "target canary")]


def test_hostile_name_from_a_crafted_manifest(good: Good, tmp_path: Path) -> None:
    """A manifest (digest recomputed) renaming a table to HOSTILE: restored under that exact
    name into a SQLite target whose canary survives."""
    def change(doc: dict[str, Any]) -> None:
        for t in doc["tables"]:
            if t["name"] == "Genre":
                t["name"] = HOSTILE
                t["schema"]["name"] = HOSTILE

    path = write_tar(tmp_path / "renamed.crate", with_manifest(good.copy_members(), change))
    target = tmp_path / "t.db"
    url = f"sqlite:///{target}"
    run_sql(url, "CREATE TABLE canary (id integer)", "INSERT INTO canary VALUES (1)")
    run = cli("restore", str(path), url, "-t", HOSTILE)
    assert run.rc == 0, run.describe()
    assert sqlite_tables(target) == {HOSTILE, "canary"}
    assert len(_rows(url, HOSTILE)) == 25
    assert _rows(url, "canary") == [(1,)]


# ------------------------------------------------------------- BI-06: member floods (count)
def _flood(tmp_path: Path, count: int) -> Path:
    """A tar that starts like a dbcrate archive and then holds ``count`` empty members."""
    marker = json.dumps({"format": "dbcrate-archive", "format_version": 1}).encode()
    path = tmp_path / "flood.crate"
    with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("dbcrate-archive.json")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker))
        for i in range(count):
            tar.addfile(tarfile.TarInfo(f"data/t0001/c{i:06d}.parquet"), io.BytesIO(b""))
    return path


def test_member_count_limit_is_checked_while_scanning(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """More members than the limit: refused while the tar is scanned, before the manifest is
    looked for (the limit, 2,000,000 by default, lowered here to keep the test fast)."""
    import dbcrate.containers.tar

    monkeypatch.setattr(dbcrate.containers.tar, "MAX_MEMBERS", 1_000)
    flood = _flood(tmp_path, 1_001)
    with pytest.raises(NotAnArchive, match="more than 1000 members"):
        dbcrate.open_archive(flood)
    with dbcrate.open_archive(_good_with_members(tmp_path)) as a:  # under the limit: fine
        assert a.tables


def _good_with_members(tmp_path: Path) -> Path:
    src = f"sqlite:///{tmp_path / 'few.db'}"
    run_sql(src, "CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    out = tmp_path / "few.crate"
    dbcrate.dump(src, out)
    return out


def test_member_flood_is_refused_in_bounded_time(tmp_path: Path) -> None:
    """100,000 empty members without a manifest: a clear refusal (exit 6, no manifest) in
    bounded time, no traceback."""
    flood = _flood(tmp_path, 100_000)
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "dbcrate", "verify", str(flood)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 6, res.stderr
    assert "no manifest" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - started < 60
