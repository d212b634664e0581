"""Where ``dbcrate dump`` writes, and how it fails when it cannot (docs/CLI.md, "Where dump
writes"), driven as a real subprocess on real files, pipes and filesystems.

- an automatically named archive (``dump URL DIR/``) never replaces an existing file: a name
  taken in the same second gets ``-2``, ``-3``, ...; concurrent processes all keep their
  archive; an explicit name keeps its behaviour (replaced when the new archive is complete);
- standard output that is full (``> /dev/full``) or closed (``| head -c 10``): exit 12, one
  message, nothing printed at interpreter exit;
- a full disk under every container kind: exit 12, the tar kind's message, nothing left;
- ``OUTPUT/`` that does not exist: a directory (0700) is made, like ``pg_dump -Fd``, and the
  file kinds put their automatically named archive inside it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import dbcrate
from dbcrate import atomic
from dbcrate.atomic import AutoName, rename_noreplace
from dbcrate.containers.convert import dump_as
from dbcrate.errors import OutputError
from test_faults import small_fs  # noqa: F401  (a real 2 MiB tmpfs, mounted as root)

ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)
DBCRATE = [sys.executable, "-m", "dbcrate"]
SUFFIX = {"tar": ".crate", "sqlite": ".sqlite"}


def make_db(path: Path, who: str, blob_bytes: int = 0, rows: int = 3) -> str:
    """A SQLite database whose table ``t`` says ``who`` it is (and, with ``blob_bytes``,
    carries that many incompressible bytes per row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT NOT NULL, pad BLOB)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)",
                    [(i, who, os.urandom(blob_bytes)) for i in range(rows)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def dump(*args: str, stdout: int | object = subprocess.PIPE,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DBCRATE, "dump", *args, "--no-progress"], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=ENV, timeout=timeout)


def who_is_in(archive: Path, tmp: Path) -> set[str]:
    """Restore ``archive`` into a new SQLite database; the ``who`` values it holds."""
    target = tmp / f"restored-{time.monotonic_ns()}.db"
    report = dbcrate.restore(archive, f"sqlite:///{target}")
    assert report.ok, report
    con = sqlite3.connect(target)
    try:
        return {w for (w,) in con.execute("SELECT who FROM t")}
    finally:
        con.close()


def plant_earlier_backups(directory: Path, source: Path, suffix: str, seconds: int = 90) -> list[Path]:
    """Hard links of ``source`` under every name a dump of a database called ``app`` would
    pick in the next ``seconds`` seconds (and the last one): "earlier backups" made in the same
    second as the next dump."""
    now = dt.datetime.now(dt.UTC)
    planted = []
    for k in range(-1, seconds):
        stamp = (now + dt.timedelta(seconds=k)).strftime("%Y%m%dT%H%M%SZ")
        name = directory / f"app_{stamp}_data{suffix}"
        if not name.exists():
            os.link(source, name)
            planted.append(name)
    return planted


def clean_failure(res: subprocess.CompletedProcess[str], code: int) -> None:
    """Exit ``code``, an ``error:`` line (and maybe a ``hint:``), nothing else on stderr."""
    assert res.returncode == code, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), res.stderr
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), res.stderr
    assert len([line for line in lines if line.startswith("error: ")]) == 1, res.stderr
    for bad in ("Traceback", "Exception ignored", "internal error"):
        assert bad not in res.stderr, res.stderr


# ----------------------------------------------------------------- 1: automatic names
@pytest.mark.parametrize("kind", ["tar", "sqlite"])
def test_taken_automatic_name_is_not_replaced(kind: str, tmp_path: Path) -> None:
    """Two databases both called app.db, dumped into one directory in the same second: the
    second dump finds the name taken (by the first one's archive, planted under every name of
    the next 90 seconds), writes ``...-2`` and says so; every archive keeps its own content."""
    url_a = make_db(tmp_path / "a" / "app.db", "a")
    url_b = make_db(tmp_path / "b" / "app.db", "b")
    out = tmp_path / "out"
    out.mkdir()
    first = dump(url_a, f"{out}/", "--as", kind, "--json")
    assert first.returncode == 0, first.stderr
    payload_a = json.loads(first.stdout)
    archive_a = Path(payload_a["archive"])
    assert archive_a.parent == out and archive_a.name.endswith(f"_data{SUFFIX[kind]}")
    assert payload_a["name_taken"] is None
    planted = plant_earlier_backups(out, archive_a, SUFFIX[kind])

    second = dump(url_b, str(out), "--as", kind, "--json")
    assert second.returncode == 0, second.stderr
    payload_b = json.loads(second.stdout)
    archive_b = Path(payload_b["archive"])
    assert archive_b.name.endswith(f"_data-2{SUFFIX[kind]}"), archive_b
    assert payload_b["name_taken"] == str(archive_b.parent / archive_b.name.replace("-2.", "."))
    assert Path(payload_b["name_taken"]) in {archive_a, *planted}
    # every earlier backup is still the first dump, byte for byte (the same inode, even)
    inode = archive_a.stat().st_ino
    assert all(p.stat().st_ino == inode for p in [archive_a, *planted])
    assert who_is_in(archive_a, tmp_path) == {"a"}
    assert who_is_in(archive_b, tmp_path) == {"b"}

    third = dump(url_b, f"{out}/", "--as", kind)  # the human line names the file written
    assert third.returncode == 0, third.stderr
    assert "exists already: not replaced" in third.stdout, third.stdout
    (written,) = [w for w in third.stdout.split() if w.startswith(str(out))]
    assert Path(written).name.endswith(f"_data-2{SUFFIX[kind]}") or \
        Path(written).name.endswith(f"_data-3{SUFFIX[kind]}"), third.stdout
    assert Path(written).is_file() and who_is_in(Path(written), tmp_path) == {"b"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temp or staging left"


@pytest.mark.parametrize("planted", [False, True], ids=["free", "first-name-taken"])
@pytest.mark.parametrize("kind", ["tar", "sqlite"])
def test_concurrent_dumps_keep_every_archive(kind: str, planted: bool, tmp_path: Path) -> None:
    """Four processes started together, each dumping another database called app.db into one
    directory, leave four archives, each restoring to its own rows. With the first name of
    every second taken, all four race for the same numbered names."""
    urls = [make_db(tmp_path / f"src{n}" / "app.db", f"db{n}") for n in range(4)]
    out = tmp_path / "out"
    out.mkdir()
    decoys: list[Path] = []
    if planted:
        decoy_source = tmp_path / "decoy"
        decoy_source.write_bytes(b"an earlier backup")
        decoys = plant_earlier_backups(out, decoy_source, SUFFIX[kind])
    # start them together just after a second begins: they pick their names in one second
    time.sleep(1 - time.time() % 1)
    procs = [subprocess.Popen([*DBCRATE, "dump", url, f"{out}/", "--as", kind, "--json",
                               "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for url in urls]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    written = [Path(json.loads(stdout)["archive"]) for stdout, _ in results]
    assert len(set(written)) == 4, written
    assert {who for w in written for who in who_is_in(w, tmp_path)} == {f"db{n}" for n in range(4)}
    for n, w in enumerate(written):
        assert who_is_in(w, tmp_path) == {f"db{n}"}
    assert all(d.read_bytes() == b"an earlier backup" for d in decoys)
    assert sorted(out.iterdir()) == sorted([*written, *decoys])
    if planted:
        assert all("-" in w.name.rsplit("_data", 1)[1] for w in written), written


@pytest.mark.parametrize("fallback", [False, True], ids=["renameat2", "link-or-mkdir"])
def test_rename_noreplace_never_replaces(fallback: bool, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Files and directories, with renameat2(RENAME_NOREPLACE) and with the fallback (a hard
    link for a file, a claiming mkdir for a directory): a taken name raises FileExistsError and
    leaves both sides as they were; a free name is taken."""
    if fallback:
        monkeypatch.setattr(atomic, "RENAMEAT2", None)
    else:
        assert atomic.RENAMEAT2 is not None, "this Linux C library has renameat2"
    src_file, dst_file = tmp_path / "new.crate", tmp_path / "old.crate"
    src_file.write_bytes(b"new")
    dst_file.write_bytes(b"old")
    src_dir, dst_dir = tmp_path / "newdir", tmp_path / "olddir"
    src_dir.mkdir()
    (src_dir / "f").write_bytes(b"new")
    dst_dir.mkdir()  # empty: a plain rename() would replace it
    for src, dst in ((src_file, dst_file), (src_dir, dst_dir)):
        with pytest.raises(FileExistsError):
            rename_noreplace(src, dst)
        assert src.exists()
    assert dst_file.read_bytes() == b"old" and list(dst_dir.iterdir()) == []
    rename_noreplace(src_file, tmp_path / "free.crate")
    rename_noreplace(src_dir, tmp_path / "freedir")
    assert (tmp_path / "free.crate").read_bytes() == b"new" and not src_file.exists()
    assert (tmp_path / "freedir" / "f").read_bytes() == b"new" and not src_dir.exists()


@pytest.mark.parametrize("fallback", [False, True], ids=["renameat2", "link-or-mkdir"])
@pytest.mark.parametrize("kind", ["tar", "sqlite", "directory", "python"])
def test_library_auto_name_race_in_threads(kind: str, fallback: bool, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The library side, for every kind: three threads dump three databases to one
    ``AutoName`` whose first name is taken; all three archives exist, under -2, -3 and -4."""
    if fallback:
        monkeypatch.setattr(atomic, "RENAMEAT2", None)
    suffix = SUFFIX.get(kind, "")
    first = tmp_path / f"app_20240101T000000Z_data{suffix}"
    if kind in ("directory", "python"):
        first.mkdir()
        (first / "keep").write_bytes(b"someone's file")
    else:
        first.write_bytes(b"an earlier backup")
    urls = [make_db(tmp_path / f"s{n}" / "app.db", f"db{n}") for n in range(3)]
    names = [AutoName(first, suffix) for _ in urls]
    errors: list[BaseException] = []

    def run(url: str, name: AutoName) -> None:
        try:
            dump_as(url, name, kind)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(urls, names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(n.path.name for n in names) == sorted(
        f"app_20240101T000000Z_data-{k}{suffix}" for k in (2, 3, 4))
    assert all(n.moved for n in names)
    for n, name in enumerate(names):
        assert who_is_in(name.path, tmp_path) == {f"db{n}"}
    if first.is_dir():
        assert [p.name for p in first.iterdir()] == ["keep"]
    else:
        assert first.read_bytes() == b"an earlier backup"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left"


@pytest.mark.parametrize("kind", ["tar", "sqlite"])
def test_explicit_name_is_still_replaced(kind: str, tmp_path: Path) -> None:
    """An explicit file name keeps its behaviour: the old file is replaced once the new
    archive is complete (no -2)."""
    target = tmp_path / f"backup{SUFFIX[kind]}"
    assert dump(make_db(tmp_path / "a" / "app.db", "a"), str(target), "--as", kind).returncode == 0
    res = dump(make_db(tmp_path / "b" / "app.db", "b"), str(target), "--as", kind, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["archive"] == str(target)
    assert "name_taken" not in json.loads(res.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", target.name]
    assert who_is_in(target, tmp_path) == {"b"}


# ------------------------------------------------------------- 2: standard output fails
@pytest.fixture(scope="module")
def big_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """~4 MB of incompressible rows: more than a pipe buffer, more than the 2 MiB tmpfs."""
    return make_db(tmp_path_factory.mktemp("big") / "big.db", "big", blob_bytes=2000, rows=2000)


@pytest.mark.parametrize("size", ["small", "big"])
def test_dump_to_a_full_stdout(size: str, big_url: str, tmp_path: Path) -> None:
    """``dump URL - > /dev/full``: exit 12, one message naming the cause, nothing printed at
    interpreter exit (the small archive fails at the final flush, the big one mid-stream)."""
    url = big_url if size == "big" else make_db(tmp_path / "app.db", "a")
    with open("/dev/full", "wb") as full:
        res = dump(url, "-", stdout=full)
    clean_failure(res, OutputError.exit_code)
    assert "No space left on device" in res.stderr


def test_dump_into_a_closed_pipe(big_url: str, tmp_path: Path) -> None:
    """``dump URL - | head -c 10``: the reader goes away; exit 12 (documented), one message."""
    script = (f"{' '.join(DBCRATE)} dump {big_url} - --no-progress 2>err | head -c 10 >/dev/null;"
              " echo ${PIPESTATUS[0]}; cat err >&2")
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=ENV,
                         timeout=120, cwd=tmp_path)
    assert res.stdout.strip() == str(OutputError.exit_code), res.stderr
    clean_failure(subprocess.CompletedProcess([], OutputError.exit_code, "", res.stderr),
                  OutputError.exit_code)
    assert "Broken pipe" in res.stderr


def test_listing_to_a_full_stdout(tmp_path: Path) -> None:
    """The same boundary for a command that prints: ``ls ARCHIVE > /dev/full`` is exit 12."""
    archive = tmp_path / "a.crate"
    dbcrate.dump(make_db(tmp_path / "app.db", "a"), archive)
    with open("/dev/full", "wb") as full:
        res = subprocess.run([*DBCRATE, "ls", str(archive)], stdout=full,
                             stderr=subprocess.PIPE, text=True, env=ENV, timeout=60)
    clean_failure(res, OutputError.exit_code)
    assert "cannot write standard output" in res.stderr


# ------------------------------------------------------------------- 2b: a full disk
@pytest.mark.parametrize("kind", ["tar", "directory", "sqlite", "python"])
def test_full_disk_for_every_kind(kind: str, big_url: str, small_fs: Path) -> None:  # noqa: F811
    """A 4 MB dump onto a 2 MiB tmpfs, named and (file kinds) automatically named: exit 12
    with the cause, no "internal error", and nothing left on the filesystem."""
    targets = [str(small_fs / "out")] + ([f"{small_fs}/"] if kind in SUFFIX else [])
    for target in targets:
        res = dump(big_url, target, "--as", kind)
        clean_failure(res, OutputError.exit_code)
        cause = "database or disk is full" if kind == "sqlite" else "No space left on device"
        assert cause in res.stderr, res.stderr
        assert list(small_fs.iterdir()) == [], list(small_fs.iterdir())


@pytest.mark.parametrize("kind", ["directory", "python"])
def test_full_disk_converting_into_a_directory(big_url: str, small_fs: Path,  # noqa: F811
                                               tmp_path: Path, kind: str) -> None:
    """``convert --as directory|python`` re-encoding chunks onto a full disk: the writer's
    OSError is the same clean exit 12."""
    source = tmp_path / "big.crate"
    dbcrate.dump(big_url, source)
    fmt = ["--format", "jsonl"] if kind == "directory" else []
    res = subprocess.run([*DBCRATE, "convert", str(source), str(small_fs / "out"), "--as",
                          kind, *fmt, "--no-progress"],
                         capture_output=True, text=True, env=ENV, timeout=120)
    clean_failure(res, OutputError.exit_code)
    assert "No space left on device" in res.stderr
    assert list(small_fs.iterdir()) == []


# -------------------------------------------------------------- 3: OUTPUT/ that is new
@pytest.mark.parametrize("kind", ["tar", "sqlite"])
def test_new_directory_with_trailing_slash_holds_the_archive(kind: str, tmp_path: Path) -> None:
    """``dump URL newdir/`` makes newdir (0700) and puts the automatically named archive in
    it; ``dump URL newfile`` (no slash) still writes that file."""
    url = make_db(tmp_path / "src" / "app.db", "a")
    res = dump(url, f"{tmp_path}/newdir/", "--as", kind, "--json")
    assert res.returncode == 0, res.stderr
    newdir = tmp_path / "newdir"
    assert newdir.is_dir() and stat.S_IMODE(newdir.stat().st_mode) == 0o700
    (archive,) = newdir.iterdir()
    assert archive.name.startswith("app_") and archive.name.endswith(f"_data{SUFFIX[kind]}")
    assert json.loads(res.stdout)["archive"] == str(archive)
    assert who_is_in(archive, tmp_path) == {"a"}

    res = dump(url, str(tmp_path / "newfile"), "--as", kind)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "newfile").is_file() and who_is_in(tmp_path / "newfile", tmp_path) == {"a"}


@pytest.mark.parametrize("kind", ["directory", "python"])
@pytest.mark.parametrize("slash", ["/", ""], ids=["slash", "no-slash"])
def test_directory_kinds_make_the_dump_directory(kind: str, slash: str, tmp_path: Path) -> None:
    """A directory kind's OUTPUT is the dump directory itself, with or without the slash
    (created 0700, like pg_dump -Fd)."""
    url = make_db(tmp_path / "src" / "app.db", "a")
    res = dump(url, f"{tmp_path}/newdir{slash}", "--as", kind)
    assert res.returncode == 0, res.stderr
    newdir = tmp_path / "newdir"
    assert newdir.is_dir() and stat.S_IMODE(newdir.stat().st_mode) == 0o700
    assert (newdir / "manifest.json").is_file()
    assert who_is_in(newdir, tmp_path) == {"a"}


def test_trailing_slash_refusals_and_cleanup(tmp_path: Path) -> None:
    """A missing parent and an existing file named with a slash are refused (exit 12, nothing
    created or changed); a dump that fails removes the directory it made; the library refuses a
    file path ending with a slash instead of writing a file of that name."""
    url = make_db(tmp_path / "src" / "app.db", "a")
    res = dump(url, f"{tmp_path}/missing/newdir/")
    clean_failure(res, OutputError.exit_code)
    assert "missing does not exist" in res.stderr and not (tmp_path / "missing").exists()

    existing = tmp_path / "old.crate"
    existing.write_bytes(b"keep me")
    res = dump(url, f"{existing}/")
    clean_failure(res, OutputError.exit_code)
    assert "is not a directory" in res.stderr and existing.read_bytes() == b"keep me"

    res = dump(url, f"{tmp_path}/newdir/", "-t", "no_such_table")
    assert res.returncode == 7, res.stderr
    assert not (tmp_path / "newdir").exists()

    for kind in ("tar", "sqlite"):
        with pytest.raises(OutputError, match="ends with /"):
            dump_as(url, f"{tmp_path}/libdir/", kind)
        assert not (tmp_path / "libdir").exists()
