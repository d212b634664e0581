"""A native PostgreSQL restore runs its pre-data (and ``--clean``'s drops) in as many
transactions as the target's lock table needs (:mod:`dbcrate.restore.native_run`): each part
journaled, a failure saying what the parts before it kept, a ``--resume`` skipping them, and
the copy the same database as the source whatever the parts. (4,000 tables on the default
lock table, which failed at the 3,074th in one transaction: bench/many_tables.py, PERFORMANCE.md.)
The lock table is the server's; these tests make the parts small by the budget per object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

import dbcrate
from dbcrate.restore import native_run
from dbcrate.restore.native import group_mark
from test_native_restore_pg import EVERY_KIND, _psql, same_database

from conftest import Databases, run_cli

#: tables beside EVERY_KIND's objects, so that the pre-data has some parts of ten
EXTRA = "".join(f"CREATE TABLE public.extra{i:02d} (id integer PRIMARY KEY, v text);\n"
                f"INSERT INTO public.extra{i:02d} VALUES ({i}, 'v{i}');\n" for i in range(35))


@pytest.fixture
def source(dbs: Databases, tmp_path: Path) -> tuple[str, Path]:
    url = dbs.new("postgresql")
    _psql(url, (EVERY_KIND + EXTRA).encode())
    archive = tmp_path / "parts.crate"
    dbcrate.dump(url, archive)
    return url, archive


def _count_parts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record (objects, drops) of each transaction of the prologue."""
    seen: list[tuple[int, int]] = []
    real = native_run._run_part

    def counted(ctx: Any, piece: Any, marks: Any, drops: Any, conn: Any) -> None:
        seen.append((len(piece), len(drops)))
        real(ctx, piece, marks, drops, conn)

    monkeypatch.setattr(native_run, "_run_part", counted)
    return seen


def test_a_failed_part_keeps_the_parts_before_it_and_resume_finishes(
        source: tuple[str, Path], dbs: Databases, monkeypatch: pytest.MonkeyPatch) -> None:
    url, archive = source
    monkeypatch.setattr(native_run, "LOCKS_PER_CREATE", 1 << 40)  # parts of MIN_PER_TRANSACTION
    code, out, _ = run_cli("plan", str(archive), dbs.new("postgresql"), "--json")
    assert code == 0
    pre = json.loads(out)["plan"]["native"]
    parts = -(-len(pre["pre_data"]) // native_run.MIN_PER_TRANSACTION)
    assert parts >= 4 and pre["pre_data_transactions"] == parts
    copy = dbs.new("postgresql")
    seen = _count_parts(monkeypatch)
    real = native_run._run_part

    def lost_at_the_third(ctx: Any, piece: Any, marks: Any, drops: Any, conn: Any) -> None:
        if len(seen) == 2:  # (seen counts the parts run: two committed)
            raise psycopg.OperationalError("the connection to the server was lost")
        real(ctx, piece, marks, drops, conn)

    monkeypatch.setattr(native_run, "_run_part", lost_at_the_third)
    code, _, err = run_cli("restore", str(archive), copy, "--no-progress")
    assert code != 0 and "Traceback" not in err
    kept = 2 * native_run.MIN_PER_TRANSACTION
    assert f"{kept:,} of the {len(pre['pre_data']):,} pre-data objects were created and kept" \
        in " ".join(err.split()), err
    assert "--resume" in err
    monkeypatch.setattr(native_run, "_run_part", real)
    seen = _count_parts(monkeypatch)
    code, _, err = run_cli("restore", str(archive), copy, "--resume", "--no-progress")
    assert code == 0, err
    assert len(seen) == parts - 2  # the two committed parts are not run again
    same_database(url, copy)


def test_clean_drops_in_parts_and_the_pre_data_in_one(source: tuple[str, Path],
                                                      dbs: Databases,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, archive = source
    copy = dbs.new("postgresql")
    dbcrate.restore(archive, copy)
    monkeypatch.setattr(native_run, "LOCKS_PER_DROP", 1 << 40)
    seen = _count_parts(monkeypatch)
    report = dbcrate.restore(archive, copy, clean=True)
    assert report.ok and not report.warnings, report.warnings
    drops = sum(d for _, d in seen)
    assert len(seen) == -(-drops // native_run.MIN_PER_TRANSACTION) > 2
    # every part of the drops alone but the last, which goes with the (one) pre-data part
    assert all(objects == 0 for objects, _ in seen[:-1]) and seen[-1][0] > 0
    same_database(url, copy)


def test_the_marks_of_the_parts_read_back() -> None:
    marks = frozenset({native_run.part_mark(0), native_run.part_mark(1),
                       native_run.size_mark(37), native_run.PRE_DATA, group_mark(5000),
                       -(1 << 30) - 12345})  # (a steps mark)
    assert native_run.recorded_parts(marks) == (37, frozenset({0, 1}))
    assert native_run.recorded_parts(frozenset({native_run.PRE_DATA})) == (None, frozenset())
    assert native_run.objects_per_transaction(6400, native_run.LOCKS_PER_CREATE) == 400
    assert native_run.objects_per_transaction(None, 16) == 0
    assert native_run.objects_per_transaction(64, 16) == native_run.MIN_PER_TRANSACTION
    assert native_run.parts([1, 2, 3], 0) == [[1, 2, 3]]
    assert native_run.parts([], 2) == [[]]
    assert native_run.parts([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
