"""``dbcrate prune`` (issue 18): old archives of a directory removed, the newest kept, and
nothing that is not a dbcrate archive touched. The bucket side is in test_object_store.py."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import dbcrate
from dbcrate.errors import UsageError
from dbcrate.stores.prune import parse_duration, prune

from conftest import CHINOOK, run_cli

DAY = 86400


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    """Five archives aged 0, 1, 2, 10 and 40 days, a file named like one that is not one, a
    link to an archive and a sub-directory holding an archive."""
    source = f"sqlite:///{CHINOOK / 'Chinook_Sqlite.sqlite'}"
    first = tmp_path / "first.crate"
    dbcrate.dump(source, first, include=["Genre"])
    folder = tmp_path / "backups"
    folder.mkdir()
    now = time.time()
    for age in (0, 1, 2, 10, 40):
        path = folder / f"shop_{age:02d}d.crate"
        shutil.copy(first, path)
        os.utime(path, (now - age * DAY, now - age * DAY))
    (folder / "notes.crate").write_text("not an archive\n" * 100)
    os.utime(folder / "notes.crate", (now - 90 * DAY, now - 90 * DAY))
    (folder / "link.crate").symlink_to(folder / "shop_40d.crate")
    (folder / "old").mkdir()
    shutil.copy(first, folder / "old" / "x.crate")
    return folder


def _left(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_keep_last_keeps_the_newest(backups: Path) -> None:
    code, out, err = run_cli("prune", str(backups), "--keep-last", "2")
    assert code == 0, err
    assert _left(backups) == {"shop_00d.crate", "shop_01d.crate", "notes.crate", "link.crate",
                              "old"}
    assert "removed  shop_40d.crate" in out and "left alone (not a dbcrate archive)  notes.crate" \
        in out
    assert "removed 3, kept 2 of 5 archives" in out


def test_older_than_and_both_rules(backups: Path) -> None:
    result = prune(str(backups), older_than="5d")
    assert sorted(e.name for e in result.removed) == ["shop_10d.crate", "shop_40d.crate"]
    result = prune(str(backups), keep_last=1, older_than="12h")  # each rule protects
    assert [e.name for e in result.removed] == ["shop_01d.crate", "shop_02d.crate"]
    assert [e.name for e in result.kept] == ["shop_00d.crate"]


def test_dry_run_removes_nothing_and_says_what_it_would(backups: Path) -> None:
    before = _left(backups)
    code, out, err = run_cli("prune", str(backups), "--keep-last", "0", "--dry-run", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["dry_run"] is True and len(data["removed"]) == 5 and data["kept"] == []
    assert data["not_archives"] == ["notes.crate"]
    assert _left(backups) == before


def test_the_pattern_chooses(backups: Path) -> None:
    (backups / "other_x.crate").write_bytes((backups / "shop_00d.crate").read_bytes())
    result = prune(str(backups), keep_last=0, pattern="shop_*.crate")
    assert len(result.removed) == 5 and (backups / "other_x.crate").exists()


def test_bad_input_is_said(backups: Path) -> None:
    code, _, err = run_cli("prune", str(backups))
    assert code == 2 and "--keep-last" in err
    code, _, err = run_cli("prune", str(backups), "--older-than", "3 days")
    assert code == 2 and "not a duration" in err
    code, _, err = run_cli("prune", str(backups / "missing"), "--keep-last", "1")
    assert code == 2 and "not a directory" in err
    with pytest.raises(UsageError):
        parse_duration("10y")
    assert parse_duration("2w").days == 14
