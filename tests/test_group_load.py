"""Small tables load several to a transaction on PostgreSQL (restore/groupload.py), with the
outcome per table that a transaction per table gives: a table that fails is rolled back alone,
the others commit, and ``--resume`` finishes exactly the one that failed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import dbcrate
from dbcrate.restore import run as restore_run
from dbcrate.restore.plan import LoadTables, NativeStep

from conftest import Databases, failing_load_hook, rows, run_sql

pytestmark = pytest.mark.postgresql

TABLES = ["t1", "t2", "t3", "t4"]

# the second batch of t1 fails while its COPY runs (the server aborts the transaction: only
# the rollback to the table's savepoint saves the group); the preflight transforms every batch
# first, in the main thread: only the load fails
FAIL_ON_T1 = failing_load_hook("t1", "refused by the test's hook")


def _source(dbs: Databases) -> str:
    src = dbs.new("postgresql")
    for i, name in enumerate(TABLES, start=1):
        run_sql(src, f"CREATE TABLE {name} (id integer PRIMARY KEY, v text)",
                f"CREATE INDEX {name}_v ON {name} (v)",
                f"INSERT INTO {name} SELECT g, 'v' || g FROM generate_series(1, {i * 10}) g")
    return src


def test_a_failing_table_is_rolled_back_alone_and_resume_finishes_it(
        dbs: Databases, tmp_path: Path) -> None:
    src = _source(dbs)
    archive = tmp_path / "small.crate"
    dbcrate.dump(src, archive, chunk_rows=5)  # t1: two batches
    dst = dbs.new("postgresql")
    plan = restore_run.plan(archive, dst, dbcrate.RestoreOptions(jobs=1))
    groups = [s.task.tables for s in plan.tasks if isinstance(s.task, LoadTables)]
    # four tables on one session: groups of two (at least four groups per session, and a
    # group of one table is no group); each table in exactly one group
    assert sorted(t for g in groups for t in g) == TABLES and all(len(g) == 2 for g in groups)
    # each table's keys and indexes are built by its group's task, in the same transaction
    described = [t for t in plan.to_dict()["tasks"] if t["kind"] == "load_group"]
    assert [t["tables"] for t in described] == [list(g) for g in groups]
    assert all(len(t["post_data_groups"]) == 2 and all(t["post_data_groups"])
               for t in described)
    assert not any(isinstance(s.task, NativeStep) for s in plan.tasks)

    hooks = tmp_path / "fail_t1.py"
    hooks.write_text(FAIL_ON_T1)
    report = dbcrate.restore(archive, dst, jobs=1, hooks=str(hooks))
    status = {t.name: t for t in report.tables}
    assert not report.ok
    assert status["t1"].status == "failed" and "refused by the test's hook" in status["t1"].error
    assert "stays empty" in status["t1"].error
    # the table that shares t1's group, and the others, committed with their rows
    for i, name in enumerate(TABLES[1:], start=2):
        assert status[name].status == "restored" and status[name].rows == i * 10, name
        assert rows(dst, f"SELECT count(*) FROM {name}") == [(i * 10,)]
    assert rows(dst, "SELECT count(*) FROM t1") == [(0,)]
    # the post-data of the tables that loaded is in; t1's is not, and its report says so
    assert rows(dst, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                     "AND tablename IN ('t2', 't3', 't4')") == [(6,)]
    assert {o["name"] for o in status["t1"].not_recreated} == {"t1_pkey", "t1_v"}

    again = dbcrate.restore(archive, dst, jobs=1, resume=True)
    assert again.ok, again.to_dict()
    resumed = {t.name: t for t in again.tables}
    assert all("committed by an earlier run" in " ".join(resumed[n].warnings)
               for n in TABLES[1:])
    for i, name in enumerate(TABLES, start=1):
        assert rows(dst, f"SELECT count(*), count(DISTINCT v) FROM {name}") == [(i * 10, i * 10)]
    # the keys and indexes of every table, the failed one's too (after its resumed load)
    assert rows(dst, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'") == [(8,)]


def test_one_transaction_loads_no_groups(dbs: Databases, tmp_path: Path) -> None:
    """--single-transaction: one transaction already; nothing to group."""
    src = _source(dbs)
    archive = tmp_path / "small.crate"
    dbcrate.dump(src, archive)
    plan = restore_run.plan(archive, dbs.new("postgresql"),
                            dbcrate.RestoreOptions(single_transaction=True))
    assert not any(isinstance(s.task, LoadTables) for s in plan.tasks)


def test_a_batch_of_native_statements_that_fails_runs_again_one_by_one(
        dbs: Databases, tmp_path: Path) -> None:
    """The pre-data goes to the server in batches of objects (one message each); when one
    statement of a batch fails - here the owner of the middle table, a role the target lacks -
    the batch is rolled back and run object by object: every table is created, and the
    failure is the warning it is without batches, naming that table alone."""
    source = dbs.new("postgresql")
    owner = f"dbcrate_owner_{uuid.uuid4().hex[:8]}"
    run_sql(source, f'CREATE ROLE "{owner}"')
    for name in TABLES:
        run_sql(source, f"CREATE TABLE {name} (id integer PRIMARY KEY)",
                f"INSERT INTO {name} VALUES (1)")
    run_sql(source, f'ALTER TABLE t2 OWNER TO "{owner}"')
    archive = tmp_path / "owners.crate"
    dbcrate.dump(source, archive)
    run_sql(source, f'REASSIGN OWNED BY "{owner}" TO postgres', f'DROP OWNED BY "{owner}"',
            f'DROP ROLE "{owner}"')
    copy = dbs.new("postgresql")
    report = dbcrate.restore(archive, copy)
    assert report.ok, report.to_dict()
    missing = [w for w in report.warnings if "owner or grant was not restored" in w]
    assert len(missing) == 1 and "TABLE public.t2" in missing[0], report.warnings
    for name in TABLES:
        assert rows(copy, f"SELECT id FROM {name}") == [(1,)]
    assert rows(copy, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'") == [(4,)]
