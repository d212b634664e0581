"""The restore plan is frozen data: options resolved into it, tasks as values that one runner
executes, printed by ``plan --json`` and ``restore --dry-run --json``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import dbcrate
from dbcrate.restore import run as restore_run
from dbcrate.restore.execute import PERFORMERS
from dbcrate.restore.plan import (
    AddForeignKey,
    BuildIndex,
    LoadInto,
    LoadTable,
    LoadTables,
    NativeForeignKey,
    NativeStep,
    RestorePlan,
    RestoreTask,
)

from conftest import Databases, rows, run_sql

SCHEMA = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(40))",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), "
    "note VARCHAR(40))",
    "CREATE INDEX child_note ON child (note)",
    "CREATE TABLE lone (id INTEGER PRIMARY KEY, v VARCHAR(10))",
    "INSERT INTO parent VALUES (1, 'a'), (2, 'b')",
    "INSERT INTO child VALUES (10, 1, 'x'), (11, 2, 'y'), (12, NULL, 'z')",
    "INSERT INTO lone VALUES (1, 'one')",
]


def _archive(dbs: Databases, kind: str, tmp_path: Path) -> Path:
    src = dbs.new(kind)
    run_sql(src, *SCHEMA)
    path = tmp_path / f"{kind}.crate"
    dbcrate.dump(src, path)
    return path


def _check_graph(plan: RestorePlan) -> None:
    """Every task comes after tasks planned before it; each table loads exactly once."""
    for number, scheduled in enumerate(plan.tasks):
        assert all(0 <= i < number for i in scheduled.after), scheduled
    loads = [name for s in plan.tasks for name in (
        (s.task.table,) if isinstance(s.task, LoadTable)
        else s.task.tables if isinstance(s.task, LoadInto | LoadTables) else ())]
    assert sorted(loads) == sorted(s.name for s in plan.sources if s.name not in plan.resumed)


def test_the_runner_performs_every_kind_of_task() -> None:
    assert set(PERFORMERS) == set(typing.get_args(RestoreTask))


def test_sqlite_plan_is_frozen_and_writes_nothing(dbs: Databases, tmp_path: Path) -> None:
    archive = _archive(dbs, "sqlite", tmp_path)
    target = tmp_path / "new.db"
    # (the portable DDL's schedule; the native schema's is checked in test_native_restore_*)
    plan = restore_run.plan(archive, f"sqlite:///{target}", dbcrate.RestoreOptions(ddl="portable"))
    assert not target.exists(), "planning must not leave a database file behind"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.tasks = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.settings.jobs = 4  # type: ignore[misc]
    names = [s.name for s in plan.sources]
    assert names.index("parent") < names.index("child")  # foreign-key order
    _check_graph(plan)
    kinds = [s.task.kind for s in plan.tasks]
    assert kinds.count("load") == 3 and "foreign_key" not in kinds  # SQLite: keys inline
    index = next(s for s in plan.tasks if isinstance(s.task, BuildIndex) and s.task.table == "child")
    load = next(i for i, s in enumerate(plan.tasks)
                if isinstance(s.task, LoadTable) and s.task.table == "child")
    assert load in index.after and index.shared == frozenset({"child"})
    assert "child_note" in index.task.objects
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["mode"] == "recreate" and data["settings"]["sessions"] == 1
    assert {t["name"]: t["action"] for t in data["tables"]} == {
        "parent": "create", "child": "create", "lone": "create"}


@pytest.mark.parametrize("ddl", ["portable", "native"])
def test_postgresql_foreign_keys_wait_for_both_tables(ddl: str, dbs: Databases,
                                                      tmp_path: Path) -> None:
    archive = _archive(dbs, "postgresql", tmp_path)
    dst = dbs.new("postgresql")
    plan = restore_run.plan(archive, dst, dbcrate.RestoreOptions(jobs=2, ddl=ddl))  # type: ignore[arg-type]
    _check_graph(plan)
    assert plan.settings.sessions == 2 and plan.same_engine
    assert (plan.native is not None) == (ddl == "native")
    position = {("load", table): i for i, s in enumerate(plan.tasks)
                if isinstance(s.task, LoadTable | LoadTables)
                for table in getattr(s.task, "tables", (s.task.table,))}
    # native: small tables load in groups, here of two (three tables shared out over two
    # sessions; a group of one is no group); portable: one transaction each
    groups = [s.task for s in plan.tasks if isinstance(s.task, LoadTables)]
    assert [len(g.tables) for g in groups] == ([2] if ddl == "native" else [])
    fks = [s for s in plan.tasks if isinstance(s.task, AddForeignKey | NativeForeignKey)]
    assert len(fks) == 1
    fk = fks[0]
    assert fk.task.table == "child" and fk.task.parent == "parent"
    assert {position[("load", "child")], position[("load", "parent")]} <= set(fk.after)
    # and after both tables' own keys and indexes
    # (a group of small tables builds its tables' keys and indexes in its own task)
    built = {i for i, s in enumerate(plan.tasks)
             if (isinstance(s.task, BuildIndex | NativeStep) and s.task.table in ("child", "parent"))
             or (isinstance(s.task, LoadTables) and {"child", "parent"} & set(s.task.tables)
             and any(s.task.steps))}
    assert built and built <= set(fk.after)
    assert fk.exclusive == frozenset({"child", "parent"})
    # the plan the restore executes is the plan printed
    report = dbcrate.restore(archive, dst, jobs=2, ddl=ddl)
    assert report.ok, report.to_dict()
    assert report.plan is not None
    assert report.plan["tasks"] == plan.to_dict()["tasks"]
    assert report.plan["ddl"] == ddl
    assert {t.status for t in report.tables} == {"restored"}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_clean_into_existing_groups_follow_the_engine(kind: str, dbs: Databases,
                                                       tmp_path: Path) -> None:
    """PostgreSQL checks foreign keys while loading: parent and child are emptied and loaded
    together; MariaDB turns the checks off for the session: one table per task."""
    archive = _archive(dbs, kind, tmp_path)
    dst = dbs.new(kind)
    run_sql(dst, *SCHEMA[:4])
    plan = restore_run.plan(archive, dst, dbcrate.RestoreOptions(mode="into-existing", clean=True))
    _check_graph(plan)
    groups = sorted(tuple(sorted(s.task.tables)) for s in plan.tasks
                    if isinstance(s.task, LoadInto))
    if kind == "postgresql":
        assert groups == [("child", "parent"), ("lone",)]
    else:
        assert groups == [("child",), ("lone",), ("parent",)]
    assert all(s.task.clean for s in plan.tasks)


def test_plan_json_prints_the_plan_data(dbs: Databases, tmp_path: Path) -> None:
    archive = _archive(dbs, "sqlite", tmp_path)
    target = tmp_path / "t.db"
    env = {**os.environ, "NO_COLOR": "1"}
    for args in (["plan", str(archive), f"sqlite:///{target}", "--json", "--ddl", "portable"],
                 ["restore", str(archive), f"sqlite:///{target}", "--dry-run", "--json",
                  "--ddl", "portable"]):
        proc = subprocess.run([sys.executable, "-m", "dbcrate", *args], capture_output=True,
                              text=True, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        plan = json.loads(proc.stdout)["plan"]
        assert {t["kind"] for t in plan["tasks"]} == {"load", "index"}
        assert {t["table"] for t in plan["tasks"] if t["kind"] == "load"} == {
            "parent", "child", "lone"}
        assert plan["settings"]["dry_run"] is True
        assert not target.exists()


def test_a_copys_tables_not_yet_written_are_weighed_by_their_estimates() -> None:
    """In a ``copy``, the restore is planned before the source's tables are read: a table of
    no chunks yet is as big as the source estimated it (its ``expected`` size), not a small
    table to load in a group that waits for whole tables; the ones estimated small still go
    in groups."""
    from dbcrate.model.logical import LogicalType
    from dbcrate.model.manifest import TableEntry
    from dbcrate.model.schema import Column, Table
    from dbcrate.restore.native import SMALL_TABLE_BYTES, load_groups
    from dbcrate.restore.plan import Source

    def source(name: str, estimated: int) -> Source:
        table = Table(name=name, columns=[Column("id", LogicalType("int32"), "")])
        return Source(TableEntry(table), table, (), (0, estimated))

    sources = [source("big", 400 * 1024 * 1024), source("s1", 8192), source("s2", 16384),
               source("mid", SMALL_TABLE_BYTES), source("s3", 0), source("s4", 100)]
    grouped = [[s.name for s in group] for group in load_groups(sources, sessions=1)]
    assert grouped == [["s1", "s2"], ["s3", "s4"]]


@pytest.mark.postgresql
def test_one_tables_indexes_are_built_side_by_side(dbs: Databases, tmp_path: Path) -> None:
    """As ``pg_restore -j`` does: each index of a big table a step of its own (sharing the
    table: several at once), its key a step that holds the table alone, and the table's other
    post-data objects (a rule here) one step after all of them. The restored table has every
    index, its key, its clustering and its rule."""
    src = dbs.new("postgresql")
    run_sql(src, "CREATE TABLE t (id int PRIMARY KEY, a text, b text)",
            "CREATE INDEX t_a ON t (a)", "CREATE INDEX t_b ON t (b)",
            "INSERT INTO t SELECT i, md5(i::text), md5((-i)::text) "
            "FROM generate_series(1, 60000) i",  # (over 1 MiB: not a small table's group)
            "CLUSTER t USING t_a",  # (pg_dump writes CLUSTER ON with the index)
            "CREATE RULE keep AS ON DELETE TO t DO INSTEAD NOTHING")
    archive = tmp_path / "t.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new("postgresql")
    planned = restore_run.plan(archive, dst, dbcrate.RestoreOptions(jobs=2))
    steps = {i: s for i, s in enumerate(planned.tasks)
             if isinstance(s.task, NativeStep) and s.task.table == "t"}
    [load] = [i for i, s in enumerate(planned.tasks) if isinstance(s.task, LoadTable)]
    alone = {s.task.objects: s for s in steps.values() if s.after == (load,)}
    assert sorted(alone) == [("CONSTRAINT public.t_pkey",), ("INDEX public.t_a",),
                             ("INDEX public.t_b",)]
    assert alone[("CONSTRAINT public.t_pkey",)].exclusive == {"t"}
    assert alone[("INDEX public.t_a",)].shared == {"t"}
    assert not alone[("INDEX public.t_a",)].exclusive
    [rest] = [(i, s) for i, s in steps.items() if s.after != (load,)]
    assert len(rest[1].task.objects) == 1 and rest[1].task.objects[0].startswith("RULE ")
    assert set(rest[1].after) == {load, *(i for i, s in steps.items() if s.after == (load,))}
    dbcrate.restore(archive, dst, jobs=2).raise_for_failures()
    assert rows(dst, "SELECT indexrelid::regclass::text, indisclustered, indisprimary "
                     "FROM pg_index WHERE indrelid = 't'::regclass ORDER BY 1") == [
        ("t_a", True, False), ("t_b", False, False), ("t_pkey", False, True)]
    assert rows(dst, "SELECT rulename FROM pg_rules WHERE tablename = 't'") == [("keep",)]
