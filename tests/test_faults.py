"""Faults on real files, filesystems and servers (catalogue FT-01, FT-03, FT-05, FT-06, FT-07).

- the dump process killed with SIGKILL at many points: nothing ever appears at the final name
  unless the archive is complete, an older archive there stays byte-identical, and what is
  left behind is an identifiable 0600 temp file ``.NAME.dbcrate-tmp-XXXXXXXXXXXX``;
- the disk filling up, on a real 2 MiB tmpfs (when this process may mount one) and through
  failure seams in dbcrate.containers.tar (ENOSPC at the Nth write, at the Nth fsync, at the rename);
- the server connection killed mid-dump (``pg_terminate_backend``, MariaDB ``KILL``): a clear
  error, no archive; killed mid-restore: every table fully restored or absent, the report says
  which, and ``--resume`` completes it;
- consistency under load: money moves between accounts and parents get children while the
  dump runs (-j 1 and -j 2); the restored copy conserves the total and has no orphans.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.containers import tar as container
from dbcrate.errors import OutputError

from conftest import MY_ADMIN, PG_ADMIN, Databases, engine_of, run_sql
from content import snapshot

ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)
DBCRATE = [sys.executable, "-m", "dbcrate"]


def temp_pattern(final: str) -> re.Pattern[str]:
    """The documented name of the writer's temp file for the archive ``final``."""
    return re.compile(r"^\." + re.escape(final) + r"\.dbcrate-tmp-[0-9a-f]{12}$")


def others(directory: Path, *keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def verifies(path: Path) -> bool:
    with dbcrate.open_archive(path) as a:
        a.verify()
    return True


def sqlite_source(path: Path, tables: int = 3, rows: int = 400, text_bytes: int = 16,
                  seed: int = 1) -> str:
    """A SQLite database of ``tables`` tables with incompressible text (size ~ rows*text_bytes)."""
    rnd = random.Random(seed)
    con = sqlite3.connect(path)
    for t in range(tables):
        con.execute(f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY, v TEXT NOT NULL, x REAL)")
        con.executemany(f"INSERT INTO t{t} VALUES (?, ?, ?)",
                        [(i, rnd.randbytes(text_bytes).hex(), rnd.random()) for i in range(rows)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- shared sources
@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    d = Databases(tmp_path_factory.mktemp("faultdbs"))
    yield d
    d.drop_all()


@pytest.fixture(scope="module")
def pg_big(holder: Databases) -> str:
    """PostgreSQL: one table of 300,000 rows (a dump with --chunk-rows 20000 takes ~1.5 s and
    writes 15 data members)."""
    url = holder.new("postgresql")
    run_sql(url, "CREATE TABLE big (id integer PRIMARY KEY, v text NOT NULL, n double precision)",
            "INSERT INTO big SELECT g, md5(g::text), g * 1.5 FROM generate_series(1, 300000) g",
            "ANALYZE big")
    return url


@pytest.fixture(scope="module")
def my_big(holder: Databases) -> str:
    url = holder.new("mysql")
    run_sql(url, "CREATE TABLE big (id integer PRIMARY KEY, v varchar(40) NOT NULL, n double)",
            "INSERT INTO big SELECT seq, md5(seq), seq * 1.5 FROM seq_1_to_300000")
    return url


@pytest.fixture(scope="module")
def old_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a small, valid archive of another database: 'the previous backup'."""
    base = tmp_path_factory.mktemp("old")
    src = sqlite_source(base / "old.db", tables=1, rows=10)
    dbcrate.dump(src, base / "old.crate")
    return (base / "old.crate").read_bytes()


def dump_cmd(url: str, out: Path, *extra: str) -> list[str]:
    return [*DBCRATE, "dump", url, str(out), "--chunk-rows", "20000", "--no-progress", *extra]


# ------------------------------------------------------------------------ FT-01: SIGKILL
def test_dump_killed_with_sigkill_at_many_points(pg_big: str, old_archive: bytes,
                                                  tmp_path: Path) -> None:
    """8 kill points from 0.05 s to the full duration, each into an empty directory and over a
    previous archive. The final name holds either nothing / the previous archive byte for byte,
    or (the dump finished first) a complete archive; leftovers are only 0600 temp files of the
    documented pattern; a later dump into the same directory still works."""
    # a reference run, watched: when does the temp file appear, when the final name?
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    # zstd level 19 makes the dump slow enough (several seconds) that the kill points fall
    # while it writes, however fast the rest of dbcrate gets
    slow = ("--compress-level", "19")
    t0 = time.monotonic()
    proc = subprocess.Popen(dump_cmd(pg_big, ref_dir / "out.crate", *slow), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t_open = t_done = None
    while proc.poll() is None:
        names = others(ref_dir)
        now = time.monotonic() - t0
        if t_open is None and any(n.startswith(".out.crate.dbcrate-tmp-") for n in names):
            t_open = now
        if t_done is None and "out.crate" in names:
            t_done = now
        time.sleep(0.005)
    full = time.monotonic() - t0
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    assert others(ref_dir) == ["out.crate"]
    assert t_open is not None, "the temp file was never seen"
    t_done = t_done or full
    # 8 kill points: two before the archive is opened, five while it is written, one at the end
    delays = [0.05, t_open / 2] + [t_open + (t_done - t_open) * k / 6 for k in range(1, 6)] + [full]
    pattern = temp_pattern("out.crate")
    outcomes: list[tuple[float, str, int, int]] = []
    for i, delay in enumerate(delays):
        for previous in (False, True):
            d = tmp_path / f"k{i}{'p' if previous else 'e'}"
            d.mkdir()
            final = d / "out.crate"
            if previous:
                final.write_bytes(old_archive)
            proc = subprocess.Popen(dump_cmd(pg_big, final, *slow), env=ENV,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
            rc = proc.returncode
            assert rc in (0, -signal.SIGKILL), (delay, rc, err)
            replaced = final.exists() and (not previous or final.read_bytes() != old_archive)
            if replaced:
                # the dump got past its rename (it may have been killed while exiting): the new
                # archive must be complete
                assert verifies(final), f"incomplete archive at the final name (kill at {delay:.2f}s)"
            else:
                assert rc != 0, "the dump succeeded but wrote nothing"
                if previous:
                    assert final.read_bytes() == old_archive
                else:
                    assert not final.exists()
            leftovers = others(d, "out.crate")
            for name in leftovers:
                assert pattern.match(name), f"unexpected file {name} after a kill at {delay:.2f}s"
                assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
            assert len(leftovers) <= 1
            outcomes.append((delay, "previous" if previous else "empty",
                             rc if not replaced else 100 + rc, len(leftovers)))
    killed = [o for o in outcomes if o[2] == -signal.SIGKILL]
    assert len(killed) >= 10, outcomes
    # the kills did land while the temp file was being written
    assert sum(o[3] for o in outcomes) >= 4, outcomes
    print("\nSIGKILL outcomes (delay s, start, rc (+100: archive complete), temp files left):")
    for o in outcomes:
        print(f"  {o[0]:6.3f}  {o[1]:8s}  {o[2]:3d}  {o[3]}")

    # a later dump into a directory holding the leftover of a killed one works, and leaves the
    # leftover alone (dbcrate does not clean other runs' temp files: they are identifiable)
    d = next(tmp_path / f"k{i}e" for i, o in enumerate(outcomes[::2]) if o[3])
    before = others(d)
    again = subprocess.run(dump_cmd(pg_big, d / "out.crate"), env=ENV, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert verifies(d / "out.crate")
    assert others(d, "out.crate") == [n for n in before if n != "out.crate"]


# ----------------------------------------------------------------------- FT-03: disk full
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root; the failure seams below cover ENOSPC")
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False, capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_a_real_filesystem(pg_big: str, old_archive: bytes, small_fs: Path,
                                        tmp_path: Path) -> None:
    """An 8 MB archive into a 2 MiB filesystem: exit 12 naming the cause, no file at the final
    name, no temp file, an older archive intact; after that a dump that fits succeeds."""
    final = small_fs / "out.crate"
    res = subprocess.run(dump_cmd(pg_big, final), env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == OutputError.exit_code, res.stderr
    assert "Traceback" not in res.stderr
    assert "no space left on device" in res.stderr.lower(), res.stderr
    assert str(final) in " ".join(res.stderr.split())
    assert others(small_fs) == []

    final.write_bytes(old_archive)
    res = subprocess.run(dump_cmd(pg_big, final), env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == OutputError.exit_code, res.stderr
    assert "no space left on device" in res.stderr.lower(), res.stderr
    assert final.read_bytes() == old_archive
    assert others(small_fs) == ["out.crate"]

    # the next run, with something that fits, succeeds and replaces the old archive
    small = sqlite_source(tmp_path / "fits.db", tables=2, rows=50)
    res = subprocess.run(dump_cmd(small, final), env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert verifies(final)
    assert others(small_fs) == ["out.crate"]


def test_disk_full_randomized_passes(old_archive: bytes, small_fs: Path, tmp_path: Path) -> None:
    """borg-style: 10 passes, each with the filesystem pre-filled to a random level and a ~1 MB
    dump; each pass either writes a complete archive or fails with OutputError leaving only
    what was there before."""
    src = sqlite_source(tmp_path / "mid.db", tables=3, rows=3000, text_bytes=48)
    rnd = random.Random(20240611)
    results = []
    for n in range(10):
        filler = small_fs / "filler"
        filler.write_bytes(b"\0" * rnd.randrange(0, 1_900_000))
        final = small_fs / "out.crate"
        if n % 2:
            final.write_bytes(old_archive)
        try:
            dbcrate.dump(src, final)
        except OutputError as exc:
            assert "No space left on device" in exc.message
            expected = ["filler", "out.crate"] if n % 2 else ["filler"]
            assert others(small_fs) == expected
            if n % 2:
                assert final.read_bytes() == old_archive
            results.append("ENOSPC")
        else:
            assert verifies(final)
            assert others(small_fs) == ["filler", "out.crate"]
            results.append("ok")
        for p in small_fs.iterdir():
            p.unlink()
    assert "ENOSPC" in results and "ok" in results, results


# ------------------------------------------------------------------ FT-01/03: failure seams
class _FailingRaw(io.RawIOBase):
    """A raw file whose Nth ``write`` raises (what the kernel reports for a full disk)."""

    def __init__(self, raw: io.FileIO, fail: Callable[[], OSError | None]) -> None:
        self._inner = raw
        self._fail = fail

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        exc = self._fail()
        if exc is not None:
            raise exc
        return self._inner.write(b)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._inner.seek(pos, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def fileno(self) -> int:
        return self._inner.fileno()

    def close(self) -> None:
        self._inner.close()
        super().close()


class _FailingBuffered:
    """The writer's buffered file, whose Nth ``write`` call raises."""

    def __init__(self, inner: Any, fail: Callable[[], OSError | None]) -> None:
        self._inner = inner
        self._fail = fail

    def write(self, b: Any) -> int:
        exc = self._fail()
        if exc is not None:
            raise exc
        return self._inner.write(b)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Fault:
    """Counts calls and answers with an OSError at call number ``at`` (and, if ``persistent``,
    at every later call)."""

    def __init__(self, at: int, code: int = errno.ENOSPC, persistent: bool = True) -> None:
        self.at, self.code, self.persistent = at, code, persistent
        self.calls = 0
        self.fired = False

    def __call__(self) -> OSError | None:
        self.calls += 1
        if self.calls == self.at or (self.persistent and self.calls > self.at):
            self.fired = True
            return OSError(self.code, os.strerror(self.code))
        return None


def _is_temp(fd: int) -> bool:
    return ".dbcrate-tmp-" in os.readlink(f"/proc/self/fd/{fd}")


def install_write_fault(monkeypatch: pytest.MonkeyPatch, level: str, fault: Fault) -> None:
    real_fdopen = os.fdopen

    def fdopen(fd: int, mode: str = "r", buffering: int = -1, *args: Any, **kwargs: Any) -> Any:
        if not _is_temp(fd):
            return real_fdopen(fd, mode, buffering, *args, **kwargs)
        if level == "raw":
            return io.BufferedWriter(_FailingRaw(io.FileIO(fd, "wb"), fault),
                                     buffer_size=max(buffering, io.DEFAULT_BUFFER_SIZE))
        return _FailingBuffered(real_fdopen(fd, mode, buffering, *args, **kwargs), fault)

    monkeypatch.setattr(container.os, "fdopen", fdopen)


@pytest.fixture(scope="module")
def seam_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """3 tables x 400 rows; with chunk_rows=100 the archive has 12 data members (~60 KB)."""
    return sqlite_source(tmp_path_factory.mktemp("seam") / "seam.db")


@pytest.fixture(scope="module")
def seam_source_big(tmp_path_factory: pytest.TempPathFactory) -> str:
    """~4 MB of archive: several flushes of the writer's 1 MiB buffer reach the raw file."""
    return sqlite_source(tmp_path_factory.mktemp("seambig") / "big.db", tables=3, rows=20000,
                         text_bytes=64)


def _count(monkeypatch: pytest.MonkeyPatch, level: str, src: str, out: Path) -> int:
    counter = Fault(at=10**9)
    with monkeypatch.context() as m:
        install_write_fault(m, level, counter)
        dbcrate.dump(src, out, chunk_rows=100 if level == "buffered" else 5000)
    return counter.calls


def _writes_in_constructor(monkeypatch: pytest.MonkeyPatch, directory: Path) -> int:
    """How many buffered writes ArchiveWriter.__init__ makes (the marker member)."""
    counter = Fault(at=10**9)
    with monkeypatch.context() as m:
        install_write_fault(m, "buffered", counter)
        writer = container.ArchiveWriter(directory / "probe.crate", 0)
        writer.abort()
    return counter.calls


def _assert_failed_cleanly(exc: OutputError, directory: Path, final: Path, old: bytes | None,
                           words: str = "No space left on device") -> None:
    assert exc.exit_code == 12
    assert words in exc.message, exc.message
    if old is None:
        assert others(directory) == [], f"left behind: {others(directory)}"
    else:
        assert others(directory) == [final.name], f"left behind: {others(directory)}"
        assert final.read_bytes() == old


@pytest.mark.parametrize("level", ["raw", "buffered"])
def test_enospc_at_every_write(level: str, request: pytest.FixtureRequest, old_archive: bytes,
                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SQLite's FAULTSIM loop: ENOSPC at write N for N = first, ... until the dump completes
    without a fault; at the buffered level (every write call of the tar writer) and at the raw
    level (what reaches the kernel). Half the runs have a previous archive at the final name.
    The buffered writes made inside ArchiveWriter's constructor are the next test's (a bug)."""
    src = request.getfixturevalue("seam_source" if level == "buffered" else "seam_source_big")
    chunk_rows = 100 if level == "buffered" else 5000
    total = _count(monkeypatch, level, src, tmp_path / "count.crate")
    first = 1 if level == "raw" else _writes_in_constructor(monkeypatch, tmp_path) + 1
    (tmp_path / "count.crate").unlink()
    assert total - first >= 3, (first, total)
    failures: list[str] = []
    for n in range(first, total + 2):
        d = tmp_path / f"n{n}"
        d.mkdir()
        final = d / "out.crate"
        old = old_archive if n % 2 else None
        if old is not None:
            final.write_bytes(old)
        fault = Fault(at=n)
        with monkeypatch.context() as m:
            install_write_fault(m, level, fault)
            try:
                dbcrate.dump(src, final, chunk_rows=chunk_rows)
            except OutputError as exc:
                try:
                    _assert_failed_cleanly(exc, d, final, old)
                except AssertionError as why:
                    failures.append(f"N={n}: {why}")
                continue
        assert n > total and not fault.fired, f"N={n}: the fault fired but the dump succeeded"
        assert verifies(final)
        shutil.rmtree(d)
    assert failures == [], "\n".join(failures)


def test_failure_inside_the_writer_constructor_removes_the_temp_file(
        seam_source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A write failing while the constructor writes the marker member (the writes before the
    first data member) must clean up like any later failure."""
    count = _writes_in_constructor(monkeypatch, tmp_path)
    assert count >= 1
    failures = []
    for n in range(1, count + 1):
        d = tmp_path / f"n{n}"
        d.mkdir()
        final = d / "out.crate"
        with monkeypatch.context() as m:
            install_write_fault(m, "buffered", Fault(at=n))
            with pytest.raises(OutputError) as info:
                dbcrate.dump(seam_source, final, chunk_rows=100)
        try:
            _assert_failed_cleanly(info.value, d, final, None)
        except AssertionError as why:
            failures.append(f"N={n}: {why}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "transient"])
def test_enospc_at_the_file_fsync(persistent: bool, seam_source: str, old_archive: bytes,
                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """fsync of the temp file fails: the rename never happens, the temp file is removed."""
    final = tmp_path / "out.crate"
    final.write_bytes(old_archive)
    real = os.fsync
    fault = Fault(at=1, persistent=persistent)

    def fsync(fd: int) -> None:
        exc = fault() if _is_temp(fd) else None
        if exc is not None:
            raise exc
        real(fd)

    monkeypatch.setattr(container.os, "fsync", fsync)
    with pytest.raises(OutputError) as info:
        dbcrate.dump(seam_source, final, chunk_rows=100)
    _assert_failed_cleanly(info.value, tmp_path, final, old_archive)


def test_failed_rename_keeps_the_old_archive(seam_source: str, old_archive: bytes,
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    final = tmp_path / "out.crate"
    final.write_bytes(old_archive)

    def replace(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(container.os, "replace", replace)
    with pytest.raises(OutputError) as info:
        dbcrate.dump(seam_source, final, chunk_rows=100)
    _assert_failed_cleanly(info.value, tmp_path, final, old_archive, words="Input/output error")


def test_failed_directory_fsync_after_the_rename(seam_source: str, old_archive: bytes,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """The rename already happened: the final name holds the new, complete archive; the error
    (exit 12) says its durability is not guaranteed. Never a partial file, never a temp file."""
    final = tmp_path / "out.crate"
    final.write_bytes(old_archive)
    real = os.fsync
    calls = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(container.os, "fsync", fsync)
    with pytest.raises(OutputError) as info:
        dbcrate.dump(seam_source, final, chunk_rows=100)
    assert "Input/output error" in info.value.message
    assert others(tmp_path) == ["out.crate"]
    assert final.read_bytes() != old_archive
    assert verifies(final)


def test_fsync_and_rename_order(seam_source: str, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    """FT-02: created O_EXCL beside the final name, then fsync(file) -> rename -> fsync(dir)."""
    events: list[str] = []
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def op(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        fd = real_open(path, flags, mode, **kw)
        if ".dbcrate-tmp-" in str(path):
            assert flags & os.O_EXCL and flags & os.O_NOFOLLOW
            assert Path(path).parent == tmp_path
            events.append("create")
        return fd

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append("fsync-dir" if os.path.isdir(target) else "fsync-file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(container.os, "open", op)
    monkeypatch.setattr(container.os, "fsync", fsync)
    monkeypatch.setattr(container.os, "replace", replace)
    dbcrate.dump(seam_source, tmp_path / "out.crate", chunk_rows=100)
    assert events == ["create", "fsync-file", "rename", "fsync-dir"]


# ---------------------------------------------------------- FT-05: connection killed mid-dump
def _kill_when_seen(kind: str, database: str, like: str, proc: subprocess.Popen[bytes],
                    timeout: float = 60) -> str | None:
    """Poll the server until a session of ``database`` runs a statement LIKE ``like``, then kill
    it; returns the statement killed (None if the process ended first)."""
    admin = sa.create_engine(PG_ADMIN if kind == "postgresql" else MY_ADMIN,
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if kind == "postgresql":
                    row = c.execute(sa.text(
                        "SELECT pid, query FROM pg_stat_activity WHERE datname = :d AND "
                        "query LIKE :q AND pid <> pg_backend_pid()"), {"d": database, "q": like}).first()
                    if row:
                        c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": row[0]})
                        return str(row[1])
                else:
                    row = c.execute(sa.text(
                        "SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE DB = :d AND "
                        "INFO LIKE :q AND ID <> CONNECTION_ID()"), {"d": database, "q": like}).first()
                    if row:
                        c.exec_driver_sql(f"KILL {int(row[0])}")
                        return str(row[1])
                time.sleep(0.01)
    finally:
        admin.dispose()
    return None


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_connection_killed_mid_dump(kind: str, request: pytest.FixtureRequest, old_archive: bytes,
                                    tmp_path: Path) -> None:
    url = request.getfixturevalue("pg_big" if kind == "postgresql" else "my_big")
    database = sa.engine.make_url(url).database
    # the rows' read: its columns are quoted (not the plan's "SELECT count(*) FROM `big`", which
    # the server may be asked while the schema is read)
    like = "COPY %big%" if kind == "postgresql" else "SELECT `%FROM `big`%"
    final = tmp_path / "out.crate"
    final.write_bytes(old_archive)
    proc = subprocess.Popen(dump_cmd(url, final), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    killed = _kill_when_seen(kind, database, like, proc)
    _, err = proc.communicate(timeout=120)
    stderr = err.decode("utf-8", "replace")
    assert killed is not None, "the dump ended before its read statement was seen"
    # no archive: the previous one is intact, no temp file left
    assert final.read_bytes() == old_archive
    assert others(tmp_path) == ["out.crate"]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "internal error" not in stderr, stderr
    assert proc.returncode == 13, stderr
    assert "big" in stderr


# ------------------------------------------------------- FT-06: connection killed mid-restore
def _abc_source(kind: str, url: str, rows: int) -> None:
    gen = ("generate_series(1, {n}) g" if kind == "postgresql" else "seq_1_to_{n}").format(n=rows)
    col = "g" if kind == "postgresql" else "seq"
    md5 = f"md5({col}::text)" if kind == "postgresql" else f"md5({col})"
    run_sql(url,
            "CREATE TABLE a (id integer PRIMARY KEY, v varchar(40) NOT NULL)",
            "CREATE TABLE b (id integer PRIMARY KEY, v varchar(40) NOT NULL)",
            "CREATE TABLE c (id integer PRIMARY KEY, a_id integer REFERENCES a(id), v varchar(40))",
            f"INSERT INTO a SELECT {col}, {md5} FROM {gen}",
            f"INSERT INTO b SELECT {col}, {md5} FROM {gen}",
            f"INSERT INTO c SELECT {col}, {col}, {md5} FROM {gen}")


def _tables(url: str) -> set[str]:
    eng = engine_of(url)
    try:
        return set(sa.inspect(eng).get_table_names())
    finally:
        eng.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_connection_killed_mid_restore_then_resume(kind: str, dbs: Databases, tmp_path: Path) -> None:
    """The loading session of table b is killed: a and c are restored, b is absent, the report
    (--json, exit 10) says so; --resume then completes the restore exactly."""
    src = dbs.new(kind)
    _abc_source(kind, src, 80_000)
    archive = tmp_path / "abc.crate"
    dbcrate.dump(src, archive, chunk_rows=20_000)
    dst = dbs.new(kind)
    database = sa.engine.make_url(dst).database
    like = 'COPY "public"."b"%' if kind == "postgresql" else "LOAD DATA%INTO TABLE `b`%"
    cmd = [*DBCRATE, "restore", str(archive), dst, "--json", "--no-progress"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = _kill_when_seen(kind, database, like, proc)
    out, err = proc.communicate(timeout=120)
    stderr = err.decode("utf-8", "replace")
    assert killed is not None, "the restore ended before table b was being loaded"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert proc.returncode == 10, stderr
    report = json.loads(out)
    status = {t["name"]: t["status"] for t in report["tables"]}
    assert status["b"] == "failed", report
    assert report["ok"] is False
    failed = next(t for t in report["tables"] if t["name"] == "b")
    assert failed["rows"] == 0 and failed["error"]

    # the target holds exactly what the report says: restored tables complete, failed ones
    # absent - or, where the native schema created every table before the rows (PostgreSQL,
    # as pg_restore does), present and empty
    present = _tables(dst) - {"dbcrate_journal"}
    source = snapshot(src, ["a", "b", "c"])
    for name, st in status.items():
        if st == "restored":
            assert name in present
            assert snapshot(dst, [name]) == {name: source[name]}, name
        else:
            assert st == "failed"
            error = next(t["error"] for t in report["tables"] if t["name"] == name)
            if "stays empty" in error:
                assert snapshot(dst, [name])[name][0] == 0, name  # no row
            else:
                assert name not in present, f"failed table {name} is in the target"

    again = subprocess.run([*cmd, "--resume"], env=ENV, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = {t["name"]: t for t in json.loads(again.stdout)["tables"]}
    for name, st in status.items():
        if st == "restored":
            assert "committed by an earlier run (resume)" in resumed[name]["warnings"]
    assert snapshot(dst, ["a", "b", "c"]) == source
    assert "dbcrate_journal" not in _tables(dst)


# -------------------------------------------------------------- FT-07: consistency under load
ACCOUNTS = 2000
BALANCE = 1000
PARENTS = 3000
WRITERS = 2


def _load_schema(kind: str, url: str) -> None:
    auto = "SERIAL" if kind == "postgresql" else "INTEGER AUTO_INCREMENT"
    run_sql(url,
            "CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL)",
            f"CREATE TABLE parent (id {auto} PRIMARY KEY, writer integer NOT NULL, note varchar(40))",
            f"CREATE TABLE child (id {auto} PRIMARY KEY, parent_id integer NOT NULL "
            "REFERENCES parent(id), note varchar(40))")
    accounts = ", ".join(f"({i}, {BALANCE})" for i in range(1, ACCOUNTS + 1))
    parents = ", ".join(f"({i}, {i % WRITERS}, 'seed')" for i in range(1, PARENTS + 1))
    children = ", ".join(f"({i}, {i}, 'seed')" for i in range(1, PARENTS + 1))
    run_sql(url, f"INSERT INTO accounts VALUES {accounts}",
            f"INSERT INTO parent (id, writer, note) VALUES {parents}",
            f"INSERT INTO child (id, parent_id, note) VALUES {children}")
    if kind == "postgresql":
        run_sql(url, f"SELECT setval('parent_id_seq', {PARENTS})",
                f"SELECT setval('child_id_seq', {PARENTS})", "ANALYZE")
    else:
        run_sql(url, "ANALYZE TABLE accounts, parent, child")


class Writers:
    """Threads that, each in one transaction, move money between two accounts, insert a parent
    with its child and (every third time) delete one of their own parents with its children."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url = url
        self.seconds = seconds
        self.commits = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.engine = sa.create_engine(url, pool_size=WRITERS + 1)
        self.threads = [threading.Thread(target=self._run, args=(w,), daemon=True)
                        for w in range(WRITERS)]

    def _one(self, conn: sa.Connection, w: int, rnd: random.Random) -> None:
        a, b = sorted(rnd.sample(range(1, ACCOUNTS + 1), 2))
        amount = rnd.randint(1, 50)
        if rnd.random() < 0.5:
            amount = -amount
        conn.execute(sa.text("UPDATE accounts SET balance = balance - :m WHERE id = :a"),
                     {"m": amount, "a": a})
        conn.execute(sa.text("UPDATE accounts SET balance = balance + :m WHERE id = :b"),
                     {"m": amount, "b": b})
        pid = conn.execute(sa.text("INSERT INTO parent (writer, note) VALUES (:w, 'load')"),
                           {"w": w}).lastrowid if conn.dialect.name != "postgresql" else \
            conn.execute(sa.text("INSERT INTO parent (writer, note) VALUES (:w, 'load') RETURNING id"),
                         {"w": w}).scalar()
        conn.execute(sa.text("INSERT INTO child (parent_id, note) VALUES (:p, 'load')"), {"p": pid})
        if rnd.random() < 0.34:
            victim = conn.execute(sa.text(
                "SELECT min(id) FROM parent WHERE writer = :w"), {"w": w}).scalar()
            if victim is not None:
                conn.execute(sa.text("DELETE FROM child WHERE parent_id = :p"), {"p": victim})
                conn.execute(sa.text("DELETE FROM parent WHERE id = :p"), {"p": victim})

    def _run(self, w: int) -> None:
        rnd = random.Random(w)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and not self._stop.is_set():
            try:
                with self.engine.begin() as conn:
                    self._one(conn, w, rnd)
                with self._lock:
                    self.commits += 1
            except sa.exc.DBAPIError as exc:  # deadlock / lock wait: rolled back, retried
                with self._lock:
                    self.errors.append(str(exc.orig).splitlines()[0])
                    if len(self.errors) > 200:
                        return

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(timeout=30)
        self.engine.dispose()


def _invariants(url: str) -> dict[str, Any]:
    eng = engine_of(url)
    try:
        with eng.connect() as c:
            return {
                "accounts": c.exec_driver_sql("SELECT count(*) FROM accounts").scalar(),
                "total": int(c.exec_driver_sql("SELECT sum(balance) FROM accounts").scalar()),
                "orphans": c.exec_driver_sql(
                    "SELECT count(*) FROM child c WHERE NOT EXISTS "
                    "(SELECT 1 FROM parent p WHERE p.id = c.parent_id)").scalar(),
                "childless": c.exec_driver_sql(
                    "SELECT count(*) FROM parent p WHERE NOT EXISTS "
                    "(SELECT 1 FROM child c WHERE c.parent_id = p.id)").scalar(),
                "parents": c.exec_driver_sql("SELECT count(*) FROM parent").scalar(),
            }
    finally:
        eng.dispose()


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_consistent_dump_under_concurrent_writes(kind: str, jobs: int, dbs: Databases,
                                                 tmp_path: Path) -> None:
    src = dbs.new(kind)
    _load_schema(kind, src)
    archive = tmp_path / "load.crate"
    with Writers(src, seconds=3.0) as writers:
        time.sleep(0.4)
        before = writers.commits
        # small chunks: with -j 2 the tables are split into key ranges read on two connections
        dbcrate.dump(src, archive, jobs=jobs, chunk_rows=500)
        during = writers.commits - before
    assert writers.commits > 20, writers.errors[:5]
    assert during > 0, "no writer committed while the dump ran: the test proves nothing"
    with dbcrate.open_archive(archive) as a:
        chunks = {t.name: len(t.chunks) for t in a.tables}
    if jobs > 1:  # key ranges of every table, read on two connections in one snapshot
        assert min(chunks.values()) > 1, chunks

    dst = dbs.new(kind)
    report = dbcrate.restore(archive, dst)
    assert report.ok, report.to_dict()
    assert not report.warnings, report.warnings
    got = _invariants(dst)
    assert got["accounts"] == ACCOUNTS
    assert got["total"] == ACCOUNTS * BALANCE, got
    assert got["orphans"] == 0, got
    assert got["childless"] == 0, got
    # the live database kept the invariants too (the writers were correct)
    live = _invariants(src)
    assert live["total"] == ACCOUNTS * BALANCE and live["orphans"] == 0, live
