"""The dump plan is data (docs/ARCHITECTURE.md, "Plans are data"): frozen, its tasks cover
every table and every key range exactly once, it prints as JSON, and running it writes what
:func:`dbcrate.dump` writes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import dbcrate
from dbcrate.dump.plan import DumpPlan, DumpTask, plan_dump
from dbcrate.dump.run import plan, plan_in_snapshot, run_plan
from dbcrate.dump.source import open_snapshot
from dbcrate.options import DumpOptions
from dbcrate.progress import drain

from conftest import run_sql


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """Three tables: one with rows, one empty, one without a primary key."""
    path = tmp_path / "src.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    con.execute("CREATE TABLE empty (id INTEGER PRIMARY KEY)")
    con.execute("CREATE TABLE note (body TEXT, n REAL)")
    con.executemany("INSERT INTO customer VALUES (?, ?)", [(i, f"c{i}") for i in range(1, 1201)])
    con.executemany("INSERT INTO note VALUES (?, ?)", [(f"n{i}", i / 3) for i in range(50)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@pytest.fixture
def pg_db(dbs: Any) -> str:
    """A PostgreSQL database whose big table is split into key ranges with ``jobs > 1``."""
    url: str = dbs.new("postgresql")
    run_sql(url,
            "CREATE TABLE big (id int PRIMARY KEY, v text)",
            "INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 3000) g",
            "CREATE TABLE small (id int PRIMARY KEY, v text)",
            "INSERT INTO small VALUES (1, 'a'), (2, 'b')",
            "ANALYZE")
    return url


def _content(path: Path) -> list[tuple[str, str, list[tuple[str, int, str]]]]:
    """The archive's tables: name, status, and every chunk's member name, rows and SHA-256."""
    with dbcrate.open_archive(path) as archive:
        return [(t.name, t.status, [(c.member, c.rows, c.sha256) for c in t.chunks])
                for t in archive.tables]


def _run_plan(url: str, output: Path, options: DumpOptions) -> DumpPlan:
    with open_snapshot(url) as snapshot:
        planned = plan_in_snapshot(snapshot, options)
        result = drain(run_plan(planned, snapshot, output, options))
    assert result.path == str(output)
    return planned


def _check_coverage(planned: DumpPlan, key_counts: dict[str, tuple[int, int]]) -> None:
    """Every table has its tasks, numbered as in the manifest, its parts 0..n-1 once each, and
    a split table's key ranges are contiguous from its smallest key past its largest."""
    by_table: dict[str, list[DumpTask]] = {}
    for task in planned.tasks:
        by_table.setdefault(task.table.name, []).append(task)
    assert list(by_table) == [t.name for t in planned.tables]  # in plan order, each once
    for number, table in enumerate(planned.tables, start=1):
        tasks = by_table[table.name]
        assert {t.number for t in tasks} == {number}
        assert [t.part for t in tasks] == list(range(len(tasks)))
        assert {t.parts for t in tasks} == {len(tasks)}
        if len(tasks) == 1:
            assert tasks[0].key_range is None
            continue
        ranges = [t.key_range for t in tasks]
        assert all(r is not None for r in ranges)
        bounds = [r for r in ranges if r is not None]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # no gap, no overlap
        lo, hi = key_counts[table.name]
        assert bounds[0][0] <= lo and bounds[-1][1] > hi


def test_the_plan_is_frozen(sqlite_db: str) -> None:
    planned = plan(sqlite_db)
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.tables = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.jobs = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.tasks[0].key_range = (0, 1)  # type: ignore[misc]
    assert isinstance(planned.tables, tuple) and isinstance(planned.tasks, tuple)


def test_the_options_are_resolved_into_the_plan(sqlite_db: str) -> None:
    options = DumpOptions(chunk_rows=100, chunk_bytes=1 << 20, batch_rows=64, jobs=4,
                          data_format="jsonl", compression_level=5, exclude=["empty"])
    planned = plan(sqlite_db, options)
    assert [t.name for t in planned.tables] == ["customer", "note"]
    assert (planned.chunk_rows, planned.chunk_bytes, planned.batch_rows) == (100, 1 << 20, 64)
    assert (planned.data_format, planned.compression_level) == ("jsonl", 5)
    assert planned.jobs == 1  # SQLite cannot share its snapshot between connections
    assert planned.estimated_rows["customer"] == 1200
    assert planned.tables[0].column_names == ["id", "name"]
    assert not plan(sqlite_db, DumpOptions(schema_only=True)).tasks


def test_sqlite_tasks_cover_every_table_once(sqlite_db: str) -> None:
    planned = plan(sqlite_db, DumpOptions(jobs=3, chunk_rows=100))
    assert len(planned.tasks) == 3  # SQLite reads each table whole
    _check_coverage(planned, {})


def test_to_dict_is_json_and_names_every_table(sqlite_db: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.txt").write_text("a")
    planned = plan(sqlite_db, DumpOptions(storages=[str(media)], storages_basepath=str(tmp_path)))
    data = json.loads(json.dumps(planned.to_dict()))
    # the fields docs/CLI.md documents
    assert set(data) == {"source", "storages", "schemas", "tables", "settings", "tasks"}
    assert data["schemas"] == []  # SQLite has none
    assert data["settings"]["jobs"] == 1 and data["settings"]["data_format"] == "parquet"
    assert data["tasks"] == planned.tasks_dict()
    assert [t["name"] for t in data["tables"]] == ["customer", "empty", "note"]
    assert data["tables"][0] == {"name": "customer", "columns": 2, "estimated_rows": 1200,
                                 "skipped_objects": []}
    assert data["source"]["engine"] == "sqlite"
    assert [s["name"] for s in data["storages"]] == ["media"]
    tasks = json.loads(json.dumps(planned.tasks_dict()))
    assert [t["table"] for t in tasks] == ["customer", "empty", "note"]


def test_running_the_plan_writes_what_dump_writes(sqlite_db: str, tmp_path: Path) -> None:
    options = DumpOptions(chunk_rows=500, batch_rows=128)
    planned = _run_plan(sqlite_db, tmp_path / "plan.crate", options)
    dbcrate.dump(sqlite_db, tmp_path / "dump.crate", options)
    content = _content(tmp_path / "plan.crate")
    assert content == _content(tmp_path / "dump.crate")
    chunks = {name: chunks for name, _status, chunks in content}
    assert [c[1] for c in chunks["customer"]] == [500, 500, 200]
    assert chunks["empty"] == []
    assert [t.name for t in planned.tables] == [name for name, _s, _c in content]


def test_postgresql_key_ranges_cover_every_row_once(pg_db: str, tmp_path: Path) -> None:
    options = DumpOptions(jobs=3, chunk_rows=500)
    with open_snapshot(pg_db) as snapshot:
        planned = plan_dump(snapshot.conn, snapshot.dialect, snapshot.url, options)
        snapshot.end()
    assert planned.jobs == 3
    assert next(t.parts for t in planned.tasks if t.table.name == "big") == 6
    _check_coverage(planned, {"big": (1, 3000), "small": (1, 2)})

    planned = _run_plan(pg_db, tmp_path / "plan.crate", options)
    dbcrate.dump(pg_db, tmp_path / "dump.crate", options)
    content = _content(tmp_path / "plan.crate")
    assert content == _content(tmp_path / "dump.crate")
    assert sum(rows for _m, rows, _sha in dict((n, c) for n, _s, c in content)["big"]) == 3000


def test_postgresql_empty_database(dbs: Any, tmp_path: Path) -> None:
    """No table, no task: one job, and the dump is an archive of no table."""
    url = dbs.new("postgresql")
    planned = plan(url, DumpOptions(jobs=4))
    assert (planned.tables, planned.tasks, planned.jobs) == ((), (), 1)
    result = dbcrate.dump(url, tmp_path / "empty.crate", jobs=4)
    assert result.manifest.tables == []


@pytest.mark.postgresql
def test_an_output_of_tables_in_any_order_reads_the_biggest_first(dbs: Any) -> None:
    """A directory (a ``copy``'s spool) keeps no order of tables: its tasks are read biggest
    table first, as a restore loads them, a split table's parts together and in key order;
    a tar (one stream) reads them in plan order."""
    from dbcrate.dump.run import reading_order

    src = dbs.new("postgresql")
    run_sql(src, "CREATE TABLE a_small (id int PRIMARY KEY)",
            "CREATE TABLE m_big (id int PRIMARY KEY, v text)",
            "CREATE TABLE z_mid (id int PRIMARY KEY, v text)",
            "INSERT INTO a_small SELECT generate_series(1, 10)",
            "INSERT INTO m_big SELECT i, repeat('x', 200) FROM generate_series(1, 30000) i",
            "INSERT INTO z_mid SELECT i, 'v' FROM generate_series(1, 3000) i",
            "ANALYZE")
    planned = plan(src, DumpOptions(jobs=2, chunk_rows=10000))
    names = [(t.table.name, t.part) for t in planned.tasks]
    assert [n for n, _ in names] == ["a_small", "m_big", "m_big", "m_big", "z_mid"]
    assert reading_order(planned, False) == list(range(len(names)))
    one_job = plan(src, DumpOptions(jobs=1, chunk_rows=10000))  # (one session loads in order)
    assert reading_order(one_job, True) == list(range(len(one_job.tasks)))
    assert [names[i] for i in reading_order(planned, True)] == [
        ("m_big", 0), ("m_big", 1), ("m_big", 2), ("z_mid", 0), ("a_small", 0)]
