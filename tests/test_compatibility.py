"""Fixture archives of every released format version keep opening, verifying and restoring."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import dbcrate

from conftest import CHINOOK, ENGINES, Databases
from content import snapshot

FIXTURES = Path(__file__).parent / "fixtures"
ARCHIVES = sorted(FIXTURES.glob("format-v*/*.crate"))


def test_every_format_version_has_a_fixture() -> None:
    from dbcrate.model.manifest import FORMAT_VERSION

    versions = {int(p.parent.name.removeprefix("format-v")) for p in ARCHIVES}
    assert versions == set(range(1, FORMAT_VERSION + 1))


@pytest.mark.parametrize("archive", ARCHIVES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("target", ENGINES)
def test_fixture_restores_exactly(archive: Path, target: str, dbs: Databases,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    key = archive.with_suffix(".key")  # format 6: sealed, its test identity beside it
    if key.exists():
        monkeypatch.setenv("DBCRATE_IDENTITY", str(key))
    with dbcrate.open_archive(archive) as a:
        a.verify()
        assert a.manifest.rows == 15607
        # format 4: tables in two schemas, which engines without schemas hold in one
        schemas = sorted({t.schema.schema or "public" for t in a.manifest.tables})
    if schemas != ["public"]:
        assert schemas == ["music", "public"]
    dst = dbs.new(target)
    files = archive.with_suffix(".files.json")
    report = dbcrate.restore(archive, dst,
                             storages_to=str(dbs.tmp_path / "files") if files.exists() else None)
    assert report.ok, report.to_dict()
    assert snapshot(dst, schemas=schemas if target == "postgresql" else None) == \
        snapshot(f"sqlite:///{CHINOOK / 'Chinook_Sqlite.sqlite'}")
    if files.exists():  # format 2: the storage files come back with content, mode and mtime
        restored = {
            p.relative_to(dbs.tmp_path / "files").as_posix():
                [hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode & 0o777,
                 int(p.stat().st_mtime)]
            for p in sorted((dbs.tmp_path / "files").rglob("*")) if p.is_file()
        }
        assert restored == json.loads(files.read_text())
        assert (dbs.tmp_path / "files" / "media/docs/empty").is_dir()
