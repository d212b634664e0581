"""The spine: Chinook dumped from each engine and restored into each engine (9 pairs),
compared with an independent content check; then dump -> restore -> dump gives identical data."""

from __future__ import annotations

from pathlib import Path

import pytest

import dbcrate

from conftest import ENGINES, Databases
from content import snapshot


@pytest.mark.parametrize("target", ENGINES)
@pytest.mark.parametrize("source", ENGINES)
def test_chinook_all_pairs(source: str, target: str, chinook_sources, dbs: Databases,
                           tmp_path: Path) -> None:
    src = chinook_sources(source)
    archive = tmp_path / "chinook.crate"
    result = dbcrate.dump(src, archive)
    assert result.manifest.rows > 15000
    assert len(result.manifest.tables) == 11
    dst = dbs.new(target)
    report = dbcrate.restore(archive, dst)
    assert report.ok, report.to_dict()
    assert snapshot(src) == snapshot(dst)

    # dump the copy again: the archive data must be identical table by table
    again = tmp_path / "again.crate"
    dbcrate.dump(dst, again)
    with dbcrate.open_archive(archive) as a, dbcrate.open_archive(again) as b:
        assert [t.name for t in a.tables] == [t.name for t in b.tables]
        for entry in a.tables:
            assert a.read_table(entry.name).num_rows == b.read_table(entry.name).num_rows
            if source == target:
                assert a.read_table(entry.name).equals(b.read_table(entry.name)), entry.name


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_parallel_dump_and_restore(kind: str, chinook_sources, dbs: Databases,
                                   tmp_path: Path) -> None:
    """-j 3 with small chunks: big tables are split by key ranges, read in one snapshot on
    three connections, and loaded on three connections; the content is the same."""
    src = chinook_sources(kind)
    serial, parallel = tmp_path / "serial.crate", tmp_path / "parallel.crate"
    dbcrate.dump(src, serial)
    dbcrate.dump(src, parallel, jobs=3, chunk_rows=1000)
    with dbcrate.open_archive(serial) as a, dbcrate.open_archive(parallel) as b:
        assert a.manifest.rows == b.manifest.rows
        split = [t for t in b.tables if len(t.chunks) > 1]
        assert split, "no table was split into several chunks"
        for entry in a.tables:
            ta = a.read_table(entry.name)
            tb = b.read_table(entry.name)
            keys = [(k, "ascending") for k in entry.schema.primary_key]
            assert ta.sort_by(keys).equals(tb.sort_by(keys)), entry.name
    dst = dbs.new(kind)
    report = dbcrate.restore(parallel, dst, jobs=3)
    assert report.ok, report.to_dict()
    assert snapshot(src) == snapshot(dst)
