"""The order a restore starts its work in, and the checks before it: on several sessions the
ready task with the most work behind it starts first (its longest chain of loads, index builds
and foreign keys); the preflight checks the chunks on several threads and still reports the
first bad chunk of the archive."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dbcrate
from dbcrate.errors import ArchiveCorrupt
from dbcrate.model.logical import LogicalType
from dbcrate.model.manifest import TableEntry
from dbcrate.model.schema import Column, Table
from dbcrate.restore import run as restore_run
from dbcrate.restore.plan import AddForeignKey, BuildIndex, LoadTable, Scheduled, Source
from dbcrate.restore.schedule import by_critical_path, task_cost
from dbcrate.restore.taskgraph import TaskGraph

from conftest import Databases, rows, run_sql


def _source(name: str, rows: int, size: int = 0) -> Source:
    table = Table(name=name, columns=[Column("id", LogicalType("int32"), "")])
    return Source(TableEntry(table), table, (), (rows, size))


def _tables(count: int) -> list[str]:
    return [f"t{i}" for i in range(count)]


@st.composite
def _graphs(draw: st.DrawFn) -> tuple[list[Source], list[Scheduled]]:
    """Loads, index steps after their load, foreign keys after both tables' loads and steps:
    the shapes the recreate schedules make, with random sizes."""
    names = _tables(draw(st.integers(1, 6)))
    sources = [_source(n, draw(st.integers(0, 5_000_000)), draw(st.integers(0, 1 << 30)))
               for n in names]
    work: list[Scheduled] = []
    load: dict[str, int] = {}
    steps: dict[str, list[int]] = {}
    for name in names:
        work.append(Scheduled(LoadTable(name, False), (1.0, 0.0), exclusive=frozenset({name})))
        load[name] = len(work) - 1
        for number in range(draw(st.integers(0, 3))):
            work.append(Scheduled(BuildIndex(name, number, ()), (0.0, 0.0),
                                  after=(load[name],), shared=frozenset({name})))
            steps.setdefault(name, []).append(len(work) - 1)
    for number in range(draw(st.integers(0, 4))):
        child, parent = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        after = (load[child], *steps.get(child, []), load[parent], *steps.get(parent, []))
        work.append(Scheduled(AddForeignKey(child, number, parent, "fk"), (0.0, 0.0),
                              after=tuple(dict.fromkeys(after)),
                              exclusive=frozenset({child, parent})))
    return sources, work


@settings(max_examples=200, deadline=None)
@given(_graphs())
def test_each_priority_is_the_longest_chain_of_work_from_its_task(
        graph: tuple[list[Source], list[Scheduled]]) -> None:
    """A task's priority is its own estimated work plus the largest priority of the tasks that
    wait for it; nothing else of the plan changes."""
    sources, work = graph
    ranked = by_critical_path(work, sources)
    tables = {s.name: s for s in sources}
    assert [(s.task, s.after, s.shared, s.exclusive) for s in ranked] == \
        [(s.task, s.after, s.shared, s.exclusive) for s in work]
    for number, scheduled in enumerate(ranked):
        behind = [ranked[n].priority[0] for n, s in enumerate(ranked) if number in s.after]
        assert scheduled.priority == (task_cost(work[number], tables) + max(behind, default=0.0),)
        assert all(scheduled.priority[0] >= b for b in behind)


def test_a_small_parent_that_a_big_tables_key_waits_for_loads_before_a_bigger_table() -> None:
    """``big`` (3,000,000 rows) has a foreign key to ``parent`` (1,000,000 rows); ``other``
    (1,500,000 rows) weighs more than ``parent`` alone but has less work behind it. The
    largest load first (the order before) started ``other`` before ``parent``, leaving
    ``parent``'s key and the foreign key that waits for it to the end; by the longest chain
    ``parent`` starts first."""
    sources = [_source("big", 3_000_000), _source("parent", 1_000_000),
               _source("other", 1_500_000)]
    work = [Scheduled(LoadTable(s.name, False), (1.0, 100.0 * s.expected[0]),  # (as before)
                      exclusive=frozenset({s.name})) for s in sources if s.expected]
    work += [Scheduled(BuildIndex(s.name, 0, ()), (0.0, 0.0), after=(n,),
                       shared=frozenset({s.name})) for n, s in enumerate(sources)]
    work.append(Scheduled(AddForeignKey("big", 0, "parent", "fk"), (0.0, 0.0),
                          after=(0, 1, 3, 4), exclusive=frozenset({"big", "parent"})))

    def started(plan: list[Scheduled]) -> list[str]:
        order: list[str] = []
        graph = TaskGraph()
        nodes: list[Any] = []
        for scheduled in plan:
            label = f"{type(scheduled.task).__name__} {scheduled.task.table}"
            nodes.append(graph.add(lambda label=label: order.append(label),  # type: ignore[misc]
                                   priority=scheduled.priority,
                                   after=[nodes[i] for i in scheduled.after],
                                   shared=set(scheduled.shared),
                                   exclusive=set(scheduled.exclusive)))
        list(graph.run(workers=1))
        return order

    before = started(work)
    assert before.index("LoadTable other") < before.index("LoadTable parent")
    now = started(by_critical_path(work, sources))
    assert now[0] == "LoadTable big"
    assert now.index("LoadTable parent") < now.index("LoadTable other")
    assert now.index("BuildIndex big") < now.index("LoadTable other")


@pytest.mark.postgresql
@pytest.mark.parametrize("ddl", ["portable", "native"])
def test_a_restore_on_several_sessions_is_planned_by_the_longest_chain(
        ddl: str, dbs: Databases, tmp_path: Path) -> None:
    """On two sessions each task of the plan carries its rank (no task ranks below one that
    waits for it, and a table's load ranks above its index steps and foreign keys), and the
    restore gives back every row, key and index; on one session the plan keeps its order
    (every load first, in the plan's order)."""
    src = dbs.new("postgresql")
    run_sql(src, "CREATE TABLE parent (id int PRIMARY KEY, v text)",
            "CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent (id), w text)",
            "CREATE INDEX child_p ON child (p)",
            "INSERT INTO parent SELECT i, md5(i::text) FROM generate_series(1, 500) i",
            "INSERT INTO child SELECT i, mod(i, 500) + 1, md5(i::text) "
            "FROM generate_series(1, 40000) i")
    archive = tmp_path / "a.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new("postgresql")
    planned = restore_run.plan(archive, dst, dbcrate.RestoreOptions(jobs=2, ddl=ddl))
    assert all(len(s.priority) == 1 for s in planned.tasks)
    for scheduled in planned.tasks:
        for before in scheduled.after:
            assert planned.tasks[before].priority > scheduled.priority
    one = restore_run.plan(archive, dst, dbcrate.RestoreOptions(jobs=1, ddl=ddl))
    assert all(len(s.priority) == 2 for s in one.tasks)
    dbcrate.restore(archive, dst, jobs=2, ddl=ddl).raise_for_failures()
    assert rows(dst, "SELECT count(*), sum(p) FROM child") == [(40000, 40000 * 250 + 20000)]
    assert rows(dst, "SELECT conname FROM pg_constraint WHERE conrelid = 'child'::regclass "
                     "ORDER BY 1") == [("child_p_fkey",), ("child_pkey",)]
    assert rows(dst, "SELECT indexname FROM pg_indexes WHERE tablename = 'child' "
                     "ORDER BY 1") == [("child_p",), ("child_pkey",)]


def test_the_preflight_checks_chunks_side_by_side_and_names_the_first_bad_one(
        tmp_path: Path) -> None:
    """Two damaged chunks: whether one thread or several check them, the restore is refused
    naming the first in the archive's order, and nothing is written into the target."""
    src = tmp_path / "src.db"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"value {i}") for i in range(6000)])
    con.commit()
    con.close()
    archive = tmp_path / "a"
    dbcrate.dump(f"sqlite:///{src}", archive, container="directory", chunk_rows=1000)
    chunks = dbcrate.open_archive(archive).manifest.table("t").chunks
    assert len(chunks) == 6
    for chunk in (chunks[1], chunks[4]):
        member = archive / chunk.member
        data = bytearray(member.read_bytes())
        data[len(data) // 2] ^= 0x10
        member.write_bytes(bytes(data))
    for jobs in (1, 2, 4):
        target = tmp_path / f"t{jobs}.db"
        with pytest.raises(ArchiveCorrupt) as refused:
            dbcrate.restore(archive, f"sqlite:///{target}", jobs=jobs)
        assert chunks[1].member in str(refused.value) and chunks[4].member not in str(refused.value)
        assert not target.exists() or not sqlite3.connect(target).execute(
            "SELECT name FROM sqlite_master WHERE name = 't'").fetchall()
