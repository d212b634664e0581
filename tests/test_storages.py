"""Storages: directories of files dumped beside the data, listed, verified and restored.

Real files on a real filesystem, real databases. The hostile cases craft archives whose index or
tar structure is unsafe (``..``, absolute paths, links, devices, duplicates) and destinations
with planted links; each must be refused before anything is written — no storage file and no
table in the target.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dbcrate
from archive_tools import Member, manifest_of, read_members, tar_bytes, with_manifest
from dbcrate.errors import ArchiveCorrupt, NotAnArchive, StorageConflict, UsageError
from dbcrate.storages.dump import StorageWriter, is_excluded
from dbcrate.storages.index import PackInfo, StorageManifest, StorageRoot, read_index

from conftest import engine_of, run_sql

DBCRATE = [sys.executable, "-m", "dbcrate"]
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DBCRATE, *args], capture_output=True, text=True, env=ENV, cwd=cwd,
                          timeout=300)


def make_tree(root: Path) -> None:
    """Media with nesting, an empty file, an empty directory, odd names, a big random file,
    files to exclude, a symlink and a FIFO (both skipped)."""
    (root / "media/avatars/2024").mkdir(parents=True)
    (root / "media/empty-dir").mkdir()
    (root / "media/cache/x").mkdir(parents=True)
    (root / "media/avatars/2024/ö ü €.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 40)
    (root / "media/avatars/zero").write_bytes(b"")
    (root / "media/readme.txt").write_text("hello\n" * 1000)
    (root / "media/big.bin").write_bytes(os.urandom(3_000_000))
    (root / "media/upload.tmp").write_text("partial")
    (root / "media/cache/x/thumb.jpg").write_bytes(b"thumb")
    os.chmod(root / "media/readme.txt", 0o640)
    os.utime(root / "media/readme.txt", (1_600_000_000, 1_600_000_000.5))
    (root / "media/link").symlink_to("/etc/passwd")
    os.mkfifo(root / "media/fifo")
    (root / "private").mkdir()
    (root / "private/secret.txt").write_text("s")


def tree_state(root: Path) -> dict[str, Any]:
    """Every regular file and directory under ``root``: content hash, permission bits, mtime."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if stat.S_ISDIR(st.st_mode):
            out[rel] = "dir"
        elif stat.S_ISREG(st.st_mode):
            out[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(st.st_mode),
                        int(st.st_mtime))
    return out


def expected_state(src: Path) -> dict[str, Any]:
    state = tree_state(src)
    return {k: v for k, v in state.items()
            if not k.endswith(".tmp") and "cache/" not in k + "/"}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A working directory with a SQLite database whose rows name media files."""
    make_tree(tmp_path)
    run_sql(f"sqlite:///{tmp_path / 'app.db'}",
            "CREATE TABLE doc (id INTEGER PRIMARY KEY, file TEXT)",
            "INSERT INTO doc VALUES (1, 'readme.txt'), (2, 'avatars/zero'), "
            "(3, 'avatars/missing.png'), (4, NULL), (5, '')")
    return tmp_path


def dump_app(app: Path, out: Path, **kwargs: Any) -> dbcrate.DumpResult:
    cwd = os.getcwd()
    os.chdir(app)
    try:
        return dbcrate.dump(f"sqlite:///{app / 'app.db'}", out, storages=["media", "private"],
                            storage_exclude=["*.tmp", "cache/**"], **kwargs)
    finally:
        os.chdir(cwd)


def test_round_trip_files_modes_mtimes_and_exclusions(app: Path, tmp_path: Path) -> None:
    archive = tmp_path / "out.crate"
    result = dump_app(app, archive, file_columns=["doc.file=media"])
    m = result.manifest
    assert m.format_version == 3 and m.storage is not None  # storages and native schema
    assert [r.name for r in m.storage.roots] == ["media", "private"]
    assert any("media/link" in w and "symbolic link" in w for w in result.warnings)
    assert any("media/fifo" in w and "not a regular file" in w for w in result.warnings)
    assert m.storage.file_check is not None
    assert m.storage.file_check["missing"] == 1  # avatars/missing.png
    assert m.storage.file_check["orphans"] == 2  # big.bin and the png
    assert "doc.file: media/avatars/missing.png" in m.storage.file_check["missing_examples"]

    dest = tmp_path / "restored"
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    report = dbcrate.restore(archive, url, storages_to=str(dest))
    assert report.ok and report.storages is not None
    assert report.storages["written"] == m.storage.files
    assert report.storages["file_check"]["missing"] == 1
    assert any("missing" in w for w in report.warnings)
    expected = {"media": "dir", "private": "dir",
                "private/secret.txt": tree_state(app)["private/secret.txt"],
                **{f"media/{k}": v for k, v in expected_state(app / "media").items()}}
    assert tree_state(dest) == expected
    assert (dest / "media/empty-dir").is_dir()
    assert not (dest / "media/link").exists() and not (dest / "media/fifo").exists()
    with engine_of(url).connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM doc").scalar() == 5

    # restoring again changes nothing (identical files are left alone)
    again = dbcrate.restore(archive, f"sqlite:///{tmp_path / 'copy2.db'}", storages_to=str(dest))
    assert again.storages is not None and again.storages["unchanged"] == m.storage.files


def test_many_small_files_across_packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10,000-file tree, with packs kept small so that files spread over many packs."""
    src = tmp_path / "src"
    for i in range(10_000):
        d = src / "media" / f"d{i % 50:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_text(f"file {i}\n" * (i % 7))
    monkeypatch.setattr(sys.modules["dbcrate.dump.run"], "StorageWriter",
                        functools.partial(StorageWriter, pack_bytes=8 * 1024))
    archive = tmp_path / "many.crate"
    run_sql(f"sqlite:///{tmp_path / 'db.sqlite'}", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    result = dbcrate.dump(f"sqlite:///{tmp_path / 'db.sqlite'}", archive,
                          storages=[str(src / "media")], storages_basepath=str(src))
    assert result.manifest.storage is not None
    assert result.manifest.storage.files == 10_000
    assert len(result.manifest.storage.packs) > 5
    with tarfile.open(archive) as tar:
        assert len(tar.getnames()) < 200  # packed, not one member per file
    res = cli("verify", str(archive))
    assert res.returncode == 0, res.stderr
    assert "10,000 storage files" in res.stdout
    with dbcrate.open_archive(archive) as opened:
        assert opened.verify().storage_files == 10_000
    dest = tmp_path / "dest"
    dbcrate.restore(archive, f"sqlite:///{tmp_path / 'copy.sqlite'}", storages_to=str(dest))
    assert tree_state(dest / "media") == tree_state(src / "media")


def test_postgresql_data_and_storages(dbs: Any, app: Path, tmp_path: Path) -> None:
    src = dbs.new("postgresql")
    run_sql(src, "CREATE TABLE doc (id int PRIMARY KEY, file text)",
            "INSERT INTO doc VALUES (1, 'readme.txt')")
    archive = tmp_path / "pg.crate"
    dbcrate.dump(src, archive, storages=[str(app / "media")], storage_exclude=["*.tmp"],
                 file_columns=["doc.file"])
    dest = tmp_path / "dest"
    target = dbs.new("postgresql")
    report = dbcrate.restore(archive, target, storages_to=str(dest))
    assert report.ok
    assert (dest / "media/big.bin").read_bytes() == (app / "media/big.bin").read_bytes()
    with engine_of(target).connect() as c:
        assert c.exec_driver_sql("SELECT file FROM doc").scalar() == "readme.txt"


# ------------------------------------------------------------------------ policies in the target
def test_differing_file_refuses_everything_by_default(app: Path, tmp_path: Path) -> None:
    archive = tmp_path / "out.crate"
    dump_app(app, archive)
    dest = tmp_path / "dest"
    (dest / "media").mkdir(parents=True)
    (dest / "media/readme.txt").write_text("changed locally")
    (dest / "media/mine.txt").write_text("only here")
    target = tmp_path / "t.db"
    res = cli("restore", str(archive), f"sqlite:///{target}", "--storages-to", str(dest))
    assert res.returncode == StorageConflict.exit_code, res.stderr
    assert "differ" in res.stderr and "readme.txt" in res.stderr and "Traceback" not in res.stderr
    assert "--storages merge" in res.stderr
    assert sorted(p.name for p in (dest / "media").iterdir()) == ["mine.txt", "readme.txt"]
    assert not target.exists() or not sa.inspect(engine_of(f"sqlite:///{target}")).get_table_names()

    res = cli("restore", str(archive), f"sqlite:///{target}", "--storages-to", str(dest),
              "--storages", "merge")
    assert res.returncode == 0, res.stderr
    assert (dest / "media/readme.txt").read_text() == (app / "media/readme.txt").read_text()
    assert (dest / "media/mine.txt").exists()

    res = cli("restore", str(archive), f"sqlite:///{tmp_path / 't2.db'}", "--storages-to",
              str(dest), "--storages", "replace")
    assert res.returncode == 0, res.stderr
    assert not (dest / "media/mine.txt").exists()
    assert tree_state(dest / "media") == expected_state(app / "media")
    assert not [p for p in dest.iterdir() if "dbcrate" in p.name]  # no temp roots left


@pytest.mark.parametrize("plant", ["root-link", "deep-link", "file-for-dir", "link-for-file"])
def test_planted_links_in_destination_are_refused(app: Path, tmp_path: Path, plant: str) -> None:
    archive = tmp_path / "out.crate"
    dump_app(app, archive)
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    dest.mkdir()
    if plant == "root-link":
        (dest / "media").symlink_to(outside)
    elif plant == "deep-link":
        (dest / "media").mkdir()
        (dest / "media/avatars").symlink_to(outside)
    elif plant == "file-for-dir":
        (dest / "media").mkdir()
        (dest / "media/avatars").write_text("a file where a directory goes")
    else:
        (dest / "media").mkdir()
        (dest / "media/readme.txt").symlink_to(outside / "target.txt")
    target = tmp_path / "t.db"
    for policy in ("refuse", "merge"):
        res = cli("restore", str(archive), f"sqlite:///{target}", "--storages-to", str(dest),
                  "--storages", policy)
        assert res.returncode == StorageConflict.exit_code, res.stderr
        assert "nothing was written" in res.stderr and "Traceback" not in res.stderr
    assert list(outside.iterdir()) == []
    assert not target.exists() or not sa.inspect(engine_of(f"sqlite:///{target}")).get_table_names()


# ------------------------------------------------------------------------------ hostile archives
def crafted_index(members: list[Member], entries: list[dict[str, Any]],
                  roots: list[dict[str, Any]] | None = None) -> list[Member]:
    """Replace the index by ``entries`` (keeping the manifest's hashes consistent)."""
    raw = b"".join(json.dumps(e).encode() + b"\n" for e in entries)
    index = zstandard.ZstdCompressor().compress(raw)
    doc = manifest_of(members)
    doc["storage"]["index"].update(size=len(index), sha256=hashlib.sha256(index).hexdigest())
    if roots is not None:
        doc["storage"]["roots"] = roots
    replaced = [Member(m.name, index) if m.name == "storage/index.jsonl.zst" else m
                for m in members]
    return with_manifest(replaced, doc)


def file_entry(path: str, data: bytes, offset: int = 0, **extra: Any) -> dict[str, Any]:
    return {"path": path, "type": "file", "mode": 0o644, "mtime": 0, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "pack": 0, "offset": offset,
            "length": len(data), "compressed": False, **extra}


@pytest.fixture
def small_archive(tmp_path: Path) -> tuple[list[Member], bytes]:
    """An archive with one storage ``m`` holding one uncompressed file ``m/a`` = b"x"*10."""
    src = tmp_path / "s"
    (src / "m").mkdir(parents=True)
    (src / "m/a").write_bytes(os.urandom(10))
    run_sql(f"sqlite:///{tmp_path / 'db.sqlite'}", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    archive = tmp_path / "small.crate"
    dbcrate.dump(f"sqlite:///{tmp_path / 'db.sqlite'}", archive, storages=[str(src / "m")],
                 storages_basepath=str(src))
    return read_members(archive), (src / "m/a").read_bytes()


DIR = {"path": "m", "type": "dir", "mode": 0o755, "mtime": 0}
ROOT1 = [{"name": "m", "files": 1, "bytes": 10, "directories": 0}]
ROOT2 = [{"name": "m", "files": 2, "bytes": 20, "directories": 0}]
HOSTILE = {
    "dotdot": ([DIR, file_entry("m/../../escape", b"")], ROOT1),
    "absolute": ([DIR, file_entry("/tmp/escape", b"")], ROOT1),
    "symlink": ([DIR, {"path": "m/l", "type": "symlink", "target": "/etc/passwd"}], ROOT1),
    "device": ([DIR, {"path": "m/d", "type": "chardev", "major": 1, "minor": 3}], ROOT1),
    "duplicate": ([DIR, file_entry("m/a", b""), file_entry("m/a", b"")], ROOT2),
    "out-of-order": ([DIR, file_entry("m/b", b""), file_entry("m/a", b"")], ROOT2),
    "inside-a-file": ([DIR, file_entry("m/a", b""), file_entry("m/a/b", b"")], ROOT2),
    "outside-roots": ([DIR, file_entry("other/a", b"")], ROOT1),
    "beyond-pack": ([DIR, file_entry("m/a", b"", offset=10**9)], ROOT1),
    "backslash": ([DIR, file_entry("m/..\\..\\x", b"")], ROOT1),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_index_is_refused_before_anything_is_written(
    small_archive: tuple[list[Member], bytes], tmp_path: Path, case: str
) -> None:
    members, data = small_archive
    entries, roots = HOSTILE[case]
    entries = [dict(e) for e in entries]
    for e in entries:  # real content where the entry points at the real file
        if e.get("type") == "file" and e["size"] == 0 and case not in ("beyond-pack",):
            e.update(size=10, length=10, sha256=hashlib.sha256(data).hexdigest())
    crafted = tmp_path / f"{case}.crate"
    crafted.write_bytes(tar_bytes(crafted_index(members, entries, roots)))
    dest = tmp_path / "dest" / "deeper"
    dest.mkdir(parents=True)
    target = tmp_path / "t.db"
    res = cli("restore", str(crafted), f"sqlite:///{target}", "--storages-to", str(dest))
    assert res.returncode == ArchiveCorrupt.exit_code, (case, res.stderr)
    assert "Traceback" not in res.stderr and "storage/index.jsonl.zst" in res.stderr
    assert list(dest.iterdir()) == [] and not (tmp_path / "escape").exists()
    assert not target.exists() or not sa.inspect(engine_of(f"sqlite:///{target}")).get_table_names()
    res = cli("verify", str(crafted))
    assert res.returncode == ArchiveCorrupt.exit_code, (case, res.stderr)


def raw_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "device", "fifo", "dotdot", "duplicate"])
def test_hostile_tar_members_are_refused(small_archive: tuple[list[Member], bytes],
                                         tmp_path: Path, kind: str) -> None:
    members, _ = small_archive
    entries = []
    for m in members:
        info = tarfile.TarInfo(m.name)
        info.size = len(m.data)
        entries.append((info, m.data))
    extra = tarfile.TarInfo("storage/evil")
    if kind == "symlink":
        extra.type, extra.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        extra.type, extra.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "device":
        extra.type, extra.devmajor, extra.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "fifo":
        extra.type = tarfile.FIFOTYPE
    elif kind == "dotdot":
        extra = tarfile.TarInfo("../../escape")
    else:
        extra = tarfile.TarInfo("storage/p000000.pack")
    extra_data = b"x" * 3 if extra.isreg() else b""
    extra.size = len(extra_data)
    entries.insert(2, (extra, extra_data))
    crafted = tmp_path / f"{kind}.crate"
    crafted.write_bytes(raw_tar(entries))
    dest = tmp_path / "dest"
    dest.mkdir()
    res = cli("restore", str(crafted), f"sqlite:///{tmp_path / 't.db'}", "--storages-to", str(dest))
    assert res.returncode in (NotAnArchive.exit_code, ArchiveCorrupt.exit_code), res.stderr
    assert "Traceback" not in res.stderr
    assert list(dest.iterdir()) == [] and not (tmp_path / "escape").exists()


def test_bomb_and_flipped_bit_in_a_pack_refused_before_writing(
    small_archive: tuple[list[Member], bytes], tmp_path: Path
) -> None:
    members, data = small_archive
    doc = manifest_of(members)
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * 200_000_000)
    pack = data + bomb
    doc["storage"]["packs"][0].update(size=len(pack), sha256=hashlib.sha256(pack).hexdigest())
    entries = [DIR, file_entry("m/a", data),
               {**file_entry("m/b", b"small"), "offset": 10, "length": len(bomb),
                "compressed": True}]
    crafted_members = [Member(m.name, pack) if m.name == "storage/p000000.pack" else m
                       for m in with_manifest(members, doc)]
    crafted = tmp_path / "bomb.crate"
    crafted.write_bytes(tar_bytes(crafted_index(crafted_members, entries, ROOT2 and [
        {"name": "m", "files": 2, "bytes": 15, "directories": 0}])))
    dest = tmp_path / "dest"
    dest.mkdir()
    res = cli("restore", str(crafted), f"sqlite:///{tmp_path / 't.db'}", "--storages-to", str(dest))
    assert res.returncode == ArchiveCorrupt.exit_code, res.stderr
    assert "m/b" in res.stderr and "larger than its recorded size" in res.stderr
    assert list(dest.iterdir()) == []

    # one flipped bit in a pack: verify and restore name the pack
    good = tmp_path / "good.crate"
    good.write_bytes(tar_bytes(members))
    raw = bytearray(good.read_bytes())
    at = raw.find(data)
    raw[at] ^= 0x01
    flipped = tmp_path / "flipped.crate"
    flipped.write_bytes(bytes(raw))
    res = cli("verify", str(flipped))
    assert res.returncode == ArchiveCorrupt.exit_code and "storage/p000000.pack" in res.stderr
    res = cli("restore", str(flipped), f"sqlite:///{tmp_path / 't.db'}", "--storages-to", str(dest))
    assert res.returncode == ArchiveCorrupt.exit_code and "storage/p000000.pack" in res.stderr
    assert list(dest.iterdir()) == []


# --------------------------------------------------------------------------------------- the CLI
def test_cli_check_plan_ls_names_and_chmod(app: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{app / 'app.db'}"
    common = ["--storage", "media", "--storage-exclude", "*.tmp", "--storage-exclude", "cache/**"]
    res = cli("dump", url, str(tmp_path), *common, "--check", cwd=app)
    assert res.returncode == 0, res.stderr
    assert "would store media" in res.stdout and "4 files" in res.stdout
    assert not list(tmp_path.glob("*.crate"))
    res = cli("dump", url, str(tmp_path), *common, "--print-plan", cwd=app)
    plan = json.loads(res.stdout)
    assert plan["storages"][0]["files"] == 4 and plan["tables"][0]["name"] == "doc"

    out_dir = tmp_path / "backups"
    out_dir.mkdir()
    res = cli("dump", url, str(out_dir), *common, "--chmod", "640", cwd=app)
    assert res.returncode == 0, res.stderr
    (archive,) = out_dir.iterdir()
    assert archive.name.startswith("app_") and archive.name.endswith("_data_storages.crate")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o640
    res = cli("dump", url, str(out_dir), "--no-data", "--storage", "media", cwd=app)
    assert res.returncode == 0, res.stderr
    assert any(p.name.endswith("Z_storages.crate") for p in out_dir.iterdir())
    res = cli("dump", url, str(out_dir), "--storage", "media", "--no-storages", cwd=app)
    assert any(p.name.endswith("Z_data.crate") for p in out_dir.iterdir())

    res = cli("ls", str(archive), "--json")
    listing = json.loads(res.stdout)
    assert listing["storage"]["files"] == 4
    assert {r["directory"] for r in listing["storage"]["top"]} >= {"media/avatars"}
    res = cli("ls", str(archive))
    assert "storages: 4 files" in res.stdout and "media/avatars" in res.stdout

    res = cli("dump", url, str(tmp_path / "x.crate"), "--chmod", "9z", cwd=app)
    assert res.returncode == UsageError.exit_code and "octal" in res.stderr
    res = cli("dump", url, str(app / "media" / "x.crate"), "--storage", "media", cwd=app)
    assert res.returncode == 12 and "inside the storage" in res.stderr
    res = cli("dump", url, str(tmp_path / "y.crate"), "--storage", "nope", cwd=app)
    assert res.returncode == UsageError.exit_code and "not a directory" in res.stderr


def test_no_data_needs_no_database_and_restores_files_only(app: Path, tmp_path: Path) -> None:
    archive = tmp_path / "files.crate"
    unreachable = "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none"
    res = cli("dump", unreachable, str(archive), "--no-data", "--storage", "media", cwd=app)
    assert res.returncode == 0, res.stderr
    assert b"s3cret" not in archive.read_bytes()
    dest = tmp_path / "dest"
    res = cli("restore", str(archive), unreachable, "--no-data", "--storages-to", str(dest))
    assert res.returncode == 0, res.stderr
    assert (dest / "media/readme.txt").exists()
    res = cli("restore", str(archive), f"sqlite:///{tmp_path / 'c.db'}")
    assert res.returncode == 0 and "not restored" in res.stdout


def test_exclusion_patterns() -> None:
    assert is_excluded("a/b/c.tmp", False, ["*.tmp"])
    assert is_excluded("cache", True, ["cache/**"])
    assert is_excluded("cache/x/y.jpg", False, ["cache/**"])
    assert not is_excluded("other/cache.jpg", False, ["cache/**"])
    assert is_excluded("a/node_modules", True, ["node_modules/"])
    assert not is_excluded("a/node_modules", False, ["node_modules/"])


# ------------------------------------------------------------------------------------ fuzzing
PATH_PARTS = st.sampled_from(["m", "a", "b", "..", ".", "", "/", "\\", "\x00", "é", "a/b",
                              "x" * 300, "m/../x", "/etc"])
ENTRY_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**40), st.floats(),
                         st.text(max_size=5), PATH_PARTS, st.lists(st.integers(), max_size=2))


@st.composite
def index_entries(draw: st.DrawFn) -> list[Any]:
    entries: list[Any] = [dict(DIR)]
    for _ in range(draw(st.integers(0, 6))):
        entry: dict[str, Any] = {
            "path": "/".join(draw(st.lists(PATH_PARTS, min_size=1, max_size=3))),
            "type": draw(st.sampled_from(["file", "dir", "symlink", "fifo", None])),
        }
        for key in ("mode", "mtime", "size", "sha256", "pack", "offset", "length", "compressed"):
            if draw(st.booleans()):
                entry[key] = draw(ENTRY_VALUES)
        if draw(st.booleans()):
            entry = {**file_entry(entry["path"], b"x" * 10), **entry}
        entries.append(draw(st.sampled_from([entry, entry["path"], 7, None, [entry]])))
    return entries


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=index_entries())
def test_fuzzed_index_entries_are_valid_or_refused(entries: list[Any]) -> None:
    """Whatever the index holds, reading it yields safe entries or raises ValueError (which
    the archive reader reports as a damaged member, exit 6) — never anything else."""
    storage = StorageManifest(
        roots=[StorageRoot("m", files=sum(1 for e in entries[1:] if isinstance(e, dict)
                                          and e.get("type") == "file"),
                           bytes=10 ** 6, directories=0)],
        packs=[PackInfo("storage/p000000.pack", 100, "0" * 64)], index_size=1,
        index_sha256="0" * 64)
    raw = b"".join(json.dumps(e).encode() + b"\n" for e in entries)
    try:
        for entry in read_index(io.BytesIO(zstandard.ZstdCompressor().compress(raw)), storage,
                                "fuzz"):
            parts = entry.parts
            assert parts[0] == "m" and ".." not in parts and "" not in parts
            assert not entry.path.startswith("/") and "\\" not in entry.path
            assert entry.type in ("file", "dir")
            with tempfile.NamedTemporaryFile() as probe:  # extraction can set it
                os.utime(probe.name, (entry.mtime, entry.mtime))
    except ValueError:
        pass


def test_out_of_inodes_mid_extraction_is_reported_not_a_traceback(app: Path,
                                                                   tmp_path: Path) -> None:
    """A destination that runs out of inodes halfway (the free-space preflight passes): exit 12,
    how many files were written, no temp file left; a rerun with room and --storages merge
    completes."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    archive = tmp_path / "out.crate"
    dump_app(app, archive)
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,nr_inodes=6", "tmpfs",
                          str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        res = cli("restore", str(archive), f"sqlite:///{tmp_path / 't.db'}", "--storages-to",
                  str(mnt))
        assert res.returncode == 12, res.stderr
        assert "files were written before" in res.stderr and "Traceback" not in res.stderr
        assert not [p for p in mnt.rglob("*") if "dbcrate-tmp" in p.name]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
    dest = tmp_path / "roomy"
    res = cli("restore", str(archive), f"sqlite:///{tmp_path / 't2.db'}", "--storages-to",
              str(dest), "--storages", "merge")
    assert res.returncode == 0, res.stderr


def test_names_that_differ_only_in_case_or_normalization(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``a.txt``/``A.txt`` and a composed/decomposed ``é`` are distinct here (restored both);
    on a filesystem that folds names they would be one file: the restore is refused, naming
    both, with nothing written (the fold is simulated: this kernel has no casefolding fs)."""
    import dbcrate.storages.restore as storage_restore

    src = tmp_path / "s" / "m"
    src.mkdir(parents=True)
    (src / "a.txt").write_text("lower")
    (src / "A.txt").write_text("upper")
    (src / "caf\u00e9").write_text("composed")
    (src / "cafe\u0301").write_text("decomposed")
    run_sql(f"sqlite:///{tmp_path / 'db.sqlite'}", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    archive = tmp_path / "names.crate"
    dbcrate.dump(f"sqlite:///{tmp_path / 'db.sqlite'}", archive, storages=[str(src)],
                 storages_basepath=str(src.parent))
    assert storage_restore._folds_names(tmp_path) is False
    assert not [p for p in tmp_path.iterdir() if "probe" in p.name]
    dest = tmp_path / "dest"
    dbcrate.restore(archive, f"sqlite:///{tmp_path / 'c1.db'}", storages_to=str(dest))
    assert sorted(p.name for p in (dest / "m").iterdir()) == sorted(
        ["a.txt", "A.txt", "caf\u00e9", "cafe\u0301"])

    monkeypatch.setattr(storage_restore, "_folds_names", lambda _dest: True)
    folded = tmp_path / "folded"
    target = tmp_path / "c2.db"
    with pytest.raises(StorageConflict) as info:
        dbcrate.restore(archive, f"sqlite:///{target}", storages_to=str(folded))
    assert "'m/A.txt' and 'm/a.txt'" in info.value.message
    assert "caf" in info.value.message and "nothing was written" in info.value.message
    assert not folded.exists()
    assert not target.exists() or not sa.inspect(engine_of(f"sqlite:///{target}")).get_table_names()
