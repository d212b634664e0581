"""Chunks encoded in place (dbcrate.containers.chunkfile): a directory dump's readers write each
data member straight into the archive's temp directory and the runner only renames it; the
members are the same, hashed as written, private, nothing left behind; a copy's spool is not
fsynced."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

import dbcrate
from dbcrate.containers import directory as directory_module
from dbcrate.containers.chunkfile import PENDING_DIR, ChunkFile
from dbcrate.options import DumpOptions


def _source(tmp_path: Path) -> str:
    path = tmp_path / "src.db"
    conn = sqlite3.connect(path)
    for name in ("a", "b", "c"):
        conn.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, label TEXT, x REAL)")
        conn.execute(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     f"WHERE i < 2500) INSERT INTO {name} SELECT i, '{name} ' || i, i / 7.0 "
                     "FROM n")
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("a", "b", "c")}
    finally:
        conn.close()


@pytest.mark.parametrize("data_format", ["parquet", "arrow", "csv", "jsonl", "xml", "yaml"])
def test_directory_dump_members_are_encoded_in_place(data_format: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = _source(tmp_path)
    copied: list[str] = []  # members that went through the runner's copy
    real_add = directory_module.DirectoryWriter.add_file

    def add_file(self: Any, name: str, source: Any, size: int) -> str:
        copied.append(name)
        return str(real_add(self, name, source, size))

    monkeypatch.setattr(directory_module.DirectoryWriter, "add_file", add_file)
    out = tmp_path / "out_dir"
    dbcrate.dump(src, out, DumpOptions(container="directory", data_format=data_format,
                                       chunk_rows=700, jobs=2))
    assert not [m for m in copied if m.startswith("data/")], copied
    assert not (out / PENDING_DIR).exists()
    with dbcrate.open_archive(out) as archive:
        archive.verify()
        chunks = [c for t in archive.manifest.tables for c in t.chunks]
    assert len(chunks) == 12  # 4 chunks of each table: several per reader
    for chunk in chunks:
        member = out / chunk.member
        data = member.read_bytes()
        assert hashlib.sha256(data).hexdigest() == chunk.sha256 and len(data) == chunk.size
        assert stat.S_IMODE(member.stat().st_mode) == 0o600
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    assert dbcrate.restore(out, dst).ok
    assert _rows(dst) == _rows(src)


def test_a_chunk_not_adopted_is_removed(tmp_path: Path) -> None:
    chunk = ChunkFile(tmp_path)
    chunk.write(b"half a chunk")
    assert chunk.path.exists() and stat.S_IMODE(chunk.path.stat().st_mode) == 0o600
    chunk.close()  # a failed task's chunk
    assert list(tmp_path.iterdir()) == []


def test_an_adopted_chunk_keeps_its_bytes_and_digest(tmp_path: Path) -> None:
    chunk = ChunkFile(tmp_path)
    for block in (b"abc", bytearray(b"def"), memoryview(b"ghi" * 1000)):
        chunk.write(block)
    chunk.finish()
    expected = b"abcdef" + b"ghi" * 1000
    assert chunk.count == chunk.tell() == len(expected)
    target = tmp_path / "member"
    assert chunk.adopt(target) == hashlib.sha256(expected).hexdigest()
    chunk.close()
    assert target.read_bytes() == expected and not chunk.path.exists()


def test_adopting_onto_an_existing_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").write_bytes(b"other")
    chunk = ChunkFile(tmp_path)
    chunk.write(b"rows")
    chunk.finish()
    with pytest.raises(ValueError, match="exists already"):
        chunk.adopt(tmp_path / "taken")
    chunk.close()
    assert (tmp_path / "taken").read_bytes() == b"other"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.parametrize("durable", [True, False])
def test_only_a_durable_chunk_is_fsynced(durable: bool, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    chunk = ChunkFile(tmp_path, durable=durable)
    chunk.write(b"rows")
    chunk.finish()
    assert synced == ([str(chunk.path)] if durable else [])
    chunk.close()


def test_a_copy_spool_is_not_fsynced_and_the_copy_is_exact(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    src = _source(tmp_path)
    spool = tmp_path / "spool"
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # (the directories are, for the renames)
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    dst = f"sqlite:///{tmp_path / 'dst.db'}"
    result = dbcrate.copy(src, dst, DumpOptions(chunk_rows=700), spool=str(spool))
    assert result.report.ok
    assert _rows(dst) == _rows(src)
    assert [p for p in synced if p.startswith(str(spool))] == []
    with dbcrate.open_archive(spool / "archive") as archive:  # kept (--spool given): it reads
        archive.verify()
