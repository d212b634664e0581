"""``dbcrate copy`` (issue 19): a database into another through a spool, with the dump's
selection and the restore's checks, modes, report and ``--resume``. The spine: Pagila (a schema
this project did not write: views, triggers, partitions, domains) copied PostgreSQL to
PostgreSQL is the same database by ``pg_dump``; Chinook copied to the other engines has the
same rows; a failed copy keeps its spool and ``--resume`` finishes it without the source."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import dbcrate
from dbcrate.errors import NotPortable
from dbcrate.options import DumpOptions, RestoreOptions
from test_native_restore_pg import PAGILA, _psql, same_database

from conftest import Databases, require, rows, run_cli, run_sql, tables
from content import snapshot


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for the spools of this test, so that what is left there can be seen."""
    import tempfile

    spools = tmp_path / "tmpdir"
    spools.mkdir()
    monkeypatch.setenv("TMPDIR", str(spools))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    return spools


def test_pagila_copy_gives_back_the_same_database(dbs: Databases, private_tmp: Path) -> None:
    require("postgresql")
    import gzip

    source = dbs.new("postgresql")
    _psql(source, (PAGILA / "pagila-schema.sql").read_bytes())
    _psql(source, gzip.decompress((PAGILA / "pagila-data.sql.gz").read_bytes()))
    target = dbs.new("postgresql")
    code, out, err = run_cli("copy", source, target, "-j", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["spool"] is None and result["dump"]["tables"] >= 22
    assert result["restore"]["warnings"] == []
    same_database(source, target)
    assert list(private_tmp.iterdir()) == []  # the spool is gone


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "postgresql"])
def test_chinook_from_postgresql_into_every_engine(kind: str, chinook_sources, dbs: Databases,
                                                   private_tmp: Path) -> None:
    source = chinook_sources("postgresql")
    target = dbs.new(kind)
    result = dbcrate.copy(source, target)
    assert result.report.ok and result.spool is None
    assert result.dump is not None and len(result.dump.manifest.tables) == 11
    assert snapshot(source) == snapshot(target)
    assert list(private_tmp.iterdir()) == []


def test_the_selection_applies(chinook_sources, dbs: Databases, private_tmp: Path) -> None:
    source = chinook_sources("mysql")
    target = dbs.new("sqlite")
    code, out, err = run_cli("copy", source, target, "-t", "Album", "-t", "Artist",
                             "--no-progress")
    assert code == 0, err
    assert "read 2 tables" in out
    assert tables(target) - {"dbcrate_journal"} == {"Album", "Artist"}
    assert snapshot(source, ["Album", "Artist"]) == snapshot(target, ["Album", "Artist"])


def test_dry_run_changes_nothing(chinook_sources, dbs: Databases, private_tmp: Path) -> None:
    target = dbs.new("sqlite")
    code, _, err = run_cli("copy", chinook_sources("sqlite"), target, "--dry-run")
    assert code == 0, err
    assert tables(target) == set()
    assert list(private_tmp.iterdir()) == []


def test_a_value_the_target_cannot_hold_is_refused_before_writing(dbs: Databases,
                                                                 private_tmp: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE m (id int PRIMARY KEY, at timestamp)",
            "INSERT INTO m VALUES (1, '2020-01-01'), (2, 'infinity')")
    target = dbs.new("mysql")
    with pytest.raises(NotPortable) as refused:
        dbcrate.copy(source, target)
    assert "m.at" in str(refused.value)
    assert tables(target) == set()
    # the snapshot is kept for a rerun that leaves the table out, and the hint says where
    kept = [p for p in private_tmp.iterdir()]
    assert len(kept) == 1 and str(kept[0]) in (refused.value.hint or "")
    result = dbcrate.copy(source, target,
                          restore_options=RestoreOptions(exclude=["m"], resume=True),
                          spool=str(kept[0]))
    assert result.report.ok and result.dump is None  # restored from the spool
    assert "m" not in tables(target)


def test_a_failed_copy_keeps_its_spool_and_resume_finishes_it(dbs: Databases, tmp_path: Path,
                                                             private_tmp: Path) -> None:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "CREATE TABLE b (id int PRIMARY KEY, v text)",
            "INSERT INTO a SELECT i, 'a' || i FROM generate_series(1, 500) i",
            "INSERT INTO b SELECT i, 'b' || i FROM generate_series(1, 500) i")
    target = dbs.new("postgresql")
    run_sql(target, "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "CREATE TABLE b (id int PRIMARY KEY, v text)", "INSERT INTO b VALUES (7, 'mine')")
    spool = tmp_path / "shop.spool"
    code, _, err = run_cli("copy", source, target, "--mode", "into-existing", "--spool",
                           str(spool), "--no-progress")
    assert code == 10, err  # b failed on its existing key; a is committed
    assert "b" in err and f"--spool {spool} --resume" in " ".join(err.split())
    assert rows(target, "SELECT count(*) FROM a") == [(500,)]
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700

    run_sql(target, "DELETE FROM b")
    # the source is not read again: a source that does not exist is fine
    gone = source.rsplit("/", 1)[0] + "/dbcrate_no_such_database"
    code, out, err = run_cli("copy", gone, target, "--mode", "into-existing", "--spool",
                             str(spool), "--resume", "--no-progress")
    assert code == 0, err
    assert "read " not in out  # nothing dumped
    assert snapshot(source, ["a", "b"]) == snapshot(target, ["a", "b"])
    assert spool.is_dir()  # a --spool given is the user's to remove
    # without --resume, a spool that holds a read is not restored again in silence
    code, _, err = run_cli("copy", source, target, "--spool", str(spool), "--no-progress")
    assert code == 2 and "--resume" in err
    assert list(private_tmp.iterdir()) == []


def test_a_directory_that_is_not_a_spool_is_refused(dbs: Databases, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    code, _, err = run_cli("copy", "sqlite:///" + str(tmp_path / "x.db"), dbs.new("sqlite"),
                           "--spool", str(mine))
    assert code == 2 and "is not a copy spool" in " ".join(err.split())
    assert [p.name for p in mine.iterdir()] == ["keep.txt"]


def test_the_dump_options_choose_what_is_read(chinook_sources, dbs: Databases,
                                              private_tmp: Path) -> None:
    target = dbs.new("postgresql")
    result = dbcrate.copy(chinook_sources("postgresql"), target,
                          DumpOptions(include=["genre"], schema_only=True))
    assert result.report.ok
    assert rows(target, "SELECT count(*) FROM genre") == [(0,)]


def test_the_spool_keeps_copy_text_in_raw_zstd_blocks(dbs: Databases, tmp_path: Path,
                                                      private_tmp: Path) -> None:
    """Between two PostgreSQL databases the spool holds the source's COPY text in zstd frames
    (the archive format's rule: the zstd tool reads them back) whose blocks are stored, not
    compressed: the spool is read back at once, and zstd's fast mode cost the copy more CPU
    than the few percent of bytes it saved. Text that compresses 50-fold is kept whole."""
    import shutil
    import subprocess

    import zstandard

    from dbcrate.transfer import copy

    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "INSERT INTO a SELECT i, repeat('ab', 200) || i FROM generate_series(1, 3000) i")
    target = dbs.new("postgresql")
    spool = tmp_path / "a.spool"
    copy(source, target, spool=str(spool)).report.raise_for_failures()
    archive = spool / "archive"
    assert dbcrate.open_archive(archive).manifest.data_format == "pgcopy"
    text = b""
    for chunk in dbcrate.open_archive(archive).manifest.table("a").chunks:
        member = archive / chunk.member
        piece = subprocess.run(["zstd", "-dc", str(member)], check=True,
                               capture_output=True).stdout if shutil.which("zstd") else \
            zstandard.ZstdDecompressor().stream_reader(member.read_bytes()).read()
        assert member.stat().st_size >= len(piece) > 0
        text += piece
    lines = text.decode().splitlines()
    assert len(lines) == 3000 and lines[0] == "1\t" + "ab" * 200 + "1"
    assert snapshot(source, ["a"]) == snapshot(target, ["a"])
