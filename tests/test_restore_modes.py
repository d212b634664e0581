"""Restore modes on real engines: into an existing newer schema (TOML migrations and hooks),
conflict policies, cyclic foreign keys, preflight refusals, single transaction, kill -9 + resume."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.errors import NotPortable, UsageError

from conftest import ENGINES, Databases, engine_of, rows, run_sql
from content import snapshot


def q(url: str, name: str) -> str:
    return sa.create_engine(url).dialect.identifier_preparer.quote(name)


OLD_SCHEMA = [
    "CREATE TABLE person (id INTEGER PRIMARY KEY, fullname VARCHAR(100), fax VARCHAR(30), age BIGINT)",
    "INSERT INTO person VALUES (1, 'Ada Lovelace', '555-1', 36), (2, 'Alan Turing', NULL, 41), "
    "(3, 'Grace Hopper', '555-3', 85)",
    "CREATE TABLE schema_info (version VARCHAR(10))",
    "INSERT INTO schema_info VALUES ('6')",
]
NEW_SCHEMA = [
    "CREATE TABLE client (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "country VARCHAR(40) NOT NULL, age INTEGER, note VARCHAR(20) DEFAULT 'none')",
]
MIGRATIONS = """
[[step]]
from = "6"
to = "7"
drop_tables = ["schema_info"]
[step.tables.person]
rename_to = "client"
rename_columns = { fullname = "name" }
drop_columns = ["fax"]

[[step]]
from = "7"
to = "8"
[step.tables.client.defaults]
country = "unknown"
"""


@pytest.mark.parametrize("kind", ENGINES)
def test_older_archive_into_newer_schema_with_toml(kind: str, dbs: Databases, tmp_path: Path) -> None:
    src, dst = dbs.new(kind), dbs.new(kind)
    run_sql(src, *OLD_SCHEMA)
    run_sql(dst, *NEW_SCHEMA)
    archive = tmp_path / "v6.crate"
    dbcrate.dump(src, archive, schema_version="6")
    toml = tmp_path / "migrations.toml"
    toml.write_text(MIGRATIONS)
    report = dbcrate.restore(archive, dst, mode="into-existing", migrations=str(toml))
    assert report.ok, report.to_dict()
    assert rows(dst, "SELECT id, name, country, age, note FROM client ORDER BY id") == [
        (1, "Ada Lovelace", "unknown", 36, "none"),
        (2, "Alan Turing", "unknown", 41, "none"),
        (3, "Grace Hopper", "unknown", 85, "none"),
    ]


HOOKS = '''
import pyarrow as pa
import pyarrow.compute as pc
CALLS = []

def restore_table_filter(table):
    return table.name != "schema_info"

def prepare_schema_for_restore(connection, manifest):
    CALLS.append(("prepare", manifest.schema_version))

def update_schema_after_restore(connection, manifest):
    CALLS.append(("update", manifest.schema_version))

def transform(table, batch):
    if table != "person":
        return batch
    names = batch.column(batch.schema.get_field_index("fullname"))
    return pa.RecordBatch.from_arrays(
        [batch.column(0), pc.utf8_upper(names), pa.array(["nowhere"] * batch.num_rows),
         batch.column(3)],
        names=["id", "name", "country", "age"])
'''


@pytest.mark.parametrize("kind", ENGINES)
def test_older_archive_into_newer_schema_with_hooks(kind: str, dbs: Databases, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = dbs.new(kind), dbs.new(kind)
    run_sql(src, *OLD_SCHEMA)
    run_sql(dst, *[s.replace("client", "person") for s in NEW_SCHEMA])
    archive = tmp_path / "v6.crate"
    dbcrate.dump(src, archive, schema_version="6")
    hooks_file = tmp_path / "myhooks.py"
    hooks_file.write_text(HOOKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import myhooks

    myhooks.CALLS.clear()  # the module is shared by the parametrised runs
    report = dbcrate.restore(archive, dst, mode="into-existing", hooks=myhooks)
    assert report.ok, report.to_dict()
    assert [t.name for t in report.tables] == ["person"]
    assert myhooks.CALLS == [("prepare", "6"), ("update", "6")]
    assert rows(dst, "SELECT id, name, country, age FROM person ORDER BY id") == [
        (1, "ADA LOVELACE", "nowhere", 36), (2, "ALAN TURING", "nowhere", 41),
        (3, "GRACE HOPPER", "nowhere", 85)]


@pytest.mark.parametrize("kind", ENGINES)
def test_conflict_policies(kind: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(kind)
    run_sql(src, "CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))",
            "INSERT INTO item VALUES (1, 'new one'), (2, 'new two'), (3, 'new three')")
    archive = tmp_path / "items.crate"
    dbcrate.dump(src, archive)
    existing = ["CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))",
                "INSERT INTO item VALUES (2, 'old two'), (9, 'old nine')"]

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    planned = dbcrate.restore(archive, dst, mode="into-existing", dry_run=True)
    assert any("conflicts: 1 archive rows" in line for line in planned.tables[0].plan), planned
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == [(2, "old two"), (9, "old nine")]
    report = dbcrate.restore(archive, dst, mode="into-existing")  # on_conflict="error"
    error = (report.tables[0].error or "").lower()
    assert not report.ok and ("dup" in error or "unique" in error), error
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == [(2, "old two"), (9, "old nine")]

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    assert dbcrate.restore(archive, dst, mode="into-existing", on_conflict="skip").ok
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == [
        (1, "new one"), (2, "old two"), (3, "new three"), (9, "old nine")]

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    assert dbcrate.restore(archive, dst, mode="into-existing", on_conflict="update").ok
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == [
        (1, "new one"), (2, "new two"), (3, "new three"), (9, "old nine")]

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    assert dbcrate.restore(archive, dst, mode="into-existing", clean=True).ok
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == [
        (1, "new one"), (2, "new two"), (3, "new three")]


CYCLE = {
    "postgresql": [
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER)",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id))",
        "ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b(id)",
        "CREATE TABLE node (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES node(id))",
    ],
    "mysql": [
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER)",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER, FOREIGN KEY (a_id) REFERENCES a(id))",
        "ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b(id)",
        "CREATE TABLE node (id INTEGER PRIMARY KEY, parent INTEGER, FOREIGN KEY (parent) REFERENCES node(id))",
    ],
    "sqlite": [
        "CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b(id))",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a(id))",
        "CREATE TABLE node (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES node(id))",
    ],
}
CYCLE_DATA = [
    "INSERT INTO a (id, b_id) VALUES (1, NULL), (2, NULL)",
    "INSERT INTO b (id, a_id) VALUES (10, 1), (20, 2)",
    "UPDATE a SET b_id = 20 WHERE id = 1",
    "UPDATE a SET b_id = 10 WHERE id = 2",
    "INSERT INTO node (id, parent) VALUES (5, NULL)",
    "INSERT INTO node (id, parent) VALUES (1, 5), (2, 1), (3, 2)",
]


@pytest.mark.parametrize("kind", ENGINES)
def test_cyclic_foreign_keys_into_existing_schema(kind: str, dbs: Databases, tmp_path: Path) -> None:
    src, dst = dbs.new(kind), dbs.new(kind)
    run_sql(src, *CYCLE[kind], *CYCLE_DATA)
    run_sql(dst, *CYCLE[kind])
    archive = tmp_path / "cycle.crate"
    dbcrate.dump(src, archive, chunk_rows=2)
    report = dbcrate.restore(archive, dst, mode="into-existing")
    assert report.ok, report.to_dict()
    assert not [w for w in report.warnings if "break foreign key" in w], report.warnings
    assert snapshot(src) == snapshot(dst)
    # and into a fresh database (recreate): the keys come back as constraints
    fresh = dbs.new(kind)
    assert dbcrate.restore(archive, fresh).ok
    assert snapshot(src) == snapshot(fresh)


@pytest.mark.parametrize("kind", ENGINES)
def test_preflight_blocks_and_leaves_target_untouched(kind: str, dbs: Databases, tmp_path: Path) -> None:
    src, dst = dbs.new(kind), dbs.new(kind)
    run_sql(src, "CREATE TABLE t (id INTEGER PRIMARY KEY, big BIGINT, name VARCHAR(50))",
            "INSERT INTO t VALUES (1, 5, 'fine'), (2, 3000000000, 'too big for INTEGER')")
    run_sql(dst, "CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, name VARCHAR(50), "
                 "required VARCHAR(5) NOT NULL)",
            "INSERT INTO t VALUES (7, 7, 'keep me', 'x')")
    archive = tmp_path / "t.crate"
    dbcrate.dump(src, archive)
    before = snapshot(dst)
    with pytest.raises(NotPortable) as info:
        dbcrate.restore(archive, dst, mode="into-existing", clean=True, dry_run=True)
    assert "'required' is NOT NULL without a default" in info.value.message
    run_sql(dst, "ALTER TABLE t DROP COLUMN required" if kind != "sqlite" else "SELECT 1")
    if kind == "sqlite":  # SQLite < 3.35 style: rebuild without the column
        run_sql(dst, "DROP TABLE t", "CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, name VARCHAR(50))",
                "INSERT INTO t VALUES (7, 7, 'keep me')")
    before = snapshot(dst)
    cli = subprocess.run([sys.executable, "-m", "dbcrate", "plan", str(archive), dst,
                          "--mode", "into-existing", "--clean"], capture_output=True, text=True)
    if kind == "sqlite":  # SQLite integers are 64-bit whatever the declared type: it fits
        assert cli.returncode == 0, cli.stderr
        assert snapshot(dst) == before
        return
    assert cli.returncode == 9, cli.stderr
    assert "big" in cli.stderr and "id=2" in cli.stderr and "Traceback" not in cli.stderr
    with pytest.raises(NotPortable) as info:
        dbcrate.restore(archive, dst, mode="into-existing", clean=True)
    assert any(p.column == "big" and p.row_key == {"id": 2} for p in info.value.problems)
    assert snapshot(dst) == before


def test_single_transaction(dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new("postgresql")
    run_sql(src, "CREATE TABLE one (id INTEGER PRIMARY KEY)", "INSERT INTO one VALUES (1), (2)",
            "CREATE TABLE two (id INTEGER PRIMARY KEY)", "INSERT INTO two VALUES (1), (2)")
    archive = tmp_path / "two.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new("postgresql")
    run_sql(dst, "CREATE TABLE one (id INTEGER PRIMARY KEY)", "CREATE TABLE two (id INTEGER PRIMARY KEY)",
            "INSERT INTO two VALUES (2)")  # 'two' will conflict
    report = dbcrate.restore(archive, dst, mode="into-existing", single_transaction=True)
    assert not report.ok
    assert rows(dst, "SELECT count(*) FROM one") == [(0,)]  # rolled back with the rest
    # MariaDB cannot roll DDL back: refused up front for a recreating restore
    with pytest.raises(UsageError, match="cannot roll back"):
        dbcrate.restore(archive, dbs.new("mysql"), single_transaction=True)


KILLER = '''
import os, signal
SEEN = {"n": 0}
def transform(table, batch):
    SEEN["n"] += 1
    if os.environ.get("DBCRATE_TEST_KILL") and SEEN["n"] == int(os.environ["DBCRATE_TEST_KILL"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return batch
'''


def killed_restore(archive: Path, target: str, tmp_path: Path, at: int,
                   *options: str) -> Callable[[], subprocess.CompletedProcess[str]]:
    """Restore ``archive`` into ``target`` through the CLI, killed (SIGKILL) by a transform
    hook at its ``at``-th batch; returns what runs the same command with ``--resume``."""
    hooks = tmp_path / "killer.py"
    hooks.write_text(KILLER)
    cmd = [sys.executable, "-m", "dbcrate", "restore", str(archive), target, "--hooks", str(hooks),
           "--no-progress", *options]
    env = {k: v for k, v in os.environ.items() if k != "DBCRATE_TEST_KILL"}
    killed = subprocess.run(cmd, env={**env, "DBCRATE_TEST_KILL": str(at)}, capture_output=True)
    assert killed.returncode == -9, killed.stderr
    return lambda: subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("mode", ["recreate", "into-existing"])
@pytest.mark.parametrize("kind", ENGINES)
def test_kill_9_then_resume(kind: str, mode: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(kind)
    run_sql(src, "CREATE TABLE big (id INTEGER PRIMARY KEY, v VARCHAR(20))",
            "CREATE TABLE small (id INTEGER PRIMARY KEY, big_id INTEGER REFERENCES big(id))")
    values = ", ".join(f"({i}, 'v{i}')" for i in range(1, 401))
    run_sql(src, f"INSERT INTO big VALUES {values}",
            "INSERT INTO small VALUES (1, 1), (2, 400)")
    archive = tmp_path / "k.crate"
    dbcrate.dump(src, archive, chunk_rows=50)  # 8 chunks for big
    dst = dbs.new(kind)
    if mode == "into-existing":
        run_sql(dst, "CREATE TABLE big (id INTEGER PRIMARY KEY, v VARCHAR(20))",
                "CREATE TABLE small (id INTEGER PRIMARY KEY, big_id INTEGER REFERENCES big(id))")
    resume = killed_restore(archive, dst, tmp_path, 5, "--mode", mode)
    again = resume()
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(dst, ["big", "small"]) == snapshot(src, ["big", "small"])
    eng = engine_of(dst)
    assert "dbcrate_journal" not in sa.inspect(eng).get_table_names()
    eng.dispose()


# the preflight reads (and transforms) every batch in the main thread first; the loads run on
# the restore's worker threads
KILL_WHILE_LOADING_SMALL = '''
import os, signal, threading
def transform(table, batch):
    loading = threading.current_thread().name.startswith("dbcrate-task")
    if os.environ.get("DBCRATE_TEST_KILL") and loading and table == "small":
        os.kill(os.getpid(), signal.SIGKILL)
    return batch
'''


def _structure(url: str) -> dict[str, object]:
    eng = engine_of(url)
    insp = sa.inspect(eng)
    out = {
        "pk": {t: insp.get_pk_constraint(t)["constrained_columns"] for t in ("big", "small")},
        "indexes": sorted((ix["name"], tuple(ix["column_names"]))
                          for t in ("big", "small") for ix in insp.get_indexes(t)),
        "fks": sorted((fk["referred_table"], tuple(fk["constrained_columns"]))
                      for fk in insp.get_foreign_keys("small")),
    }
    eng.dispose()
    return out


@pytest.mark.parametrize("kind", ENGINES)
def test_resume_builds_the_keys_and_indexes_the_killed_run_did_not(
        kind: str, dbs: Databases, tmp_path: Path) -> None:
    """Killed while loading the second table: the first one is committed but (PostgreSQL:
    its primary key comes after the data) has none of its keys and indexes yet; the resumed
    run builds them, and the foreign key between the two."""
    src = dbs.new(kind)
    # big has over 1 MiB of incompressible data, so that it loads in a transaction of its own
    # (smaller tables load together with others on PostgreSQL: restore/groupload.py)
    run_sql(src, "CREATE TABLE big (id INTEGER PRIMARY KEY, v VARCHAR(20), pad TEXT)",
            "CREATE INDEX big_v ON big (v)",
            "CREATE TABLE small (id INTEGER PRIMARY KEY, big_id INTEGER REFERENCES big(id))")
    values = ", ".join(f"({i}, 'v{i}', '{secrets.token_urlsafe(3000)}')" for i in range(1, 401))
    run_sql(src, f"INSERT INTO big VALUES {values}", "INSERT INTO small VALUES (1, 1), (2, 400)")
    archive = tmp_path / "k.crate"
    dbcrate.dump(src, archive, chunk_rows=50)  # 8 batches for big, then 1 for small
    dst = dbs.new(kind)
    hooks = tmp_path / "killer.py"
    hooks.write_text(KILL_WHILE_LOADING_SMALL)
    # one table at a time (-j 1): the kill comes while small loads, after big is committed
    cmd = [sys.executable, "-m", "dbcrate", "restore", str(archive), dst, "--hooks", str(hooks),
           "--no-progress", "-j", "1"]
    killed = subprocess.run(cmd, env={**os.environ, "DBCRATE_TEST_KILL": "1"}, capture_output=True)
    assert killed.returncode == -9, killed.stderr
    assert rows(dst, f"SELECT count(*) FROM {q(dst, 'big')}") == [(400,)]
    again = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(dst, ["big", "small"]) == snapshot(src, ["big", "small"])
    got = _structure(dst)
    assert got == _structure(src)
    assert got["pk"] == {"big": ["id"], "small": ["id"]} and got["fks"] == [("big", ("big_id",))]


def test_four_byte_utf8_into_utf8mb3_column_is_refused(dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new("sqlite")
    run_sql(src, "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)",
            "INSERT INTO note VALUES (1, 'plain'), (2, 'smile 😀')")
    archive = tmp_path / "notes.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new("mysql")
    run_sql(dst, "CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT CHARACTER SET utf8mb3)")
    with pytest.raises(NotPortable) as info:
        dbcrate.restore(archive, dst, mode="into-existing")
    assert any(p.column == "body" and p.row_key == {"id": 2} and "utf8mb3" in p.problem
               for p in info.value.problems), info.value.message
    assert rows(dst, "SELECT count(*) FROM note") == [(0,)]
    # recreate mode creates utf8mb4 tables: the emoji goes in
    assert dbcrate.restore(archive, dbs.new("mysql")).ok


@pytest.mark.parametrize("kind", ["mysql", "sqlite"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_orphan_rows_are_reported(dbs: Databases, tmp_path: Path, kind: str, jobs: int) -> None:
    """SQLite does not enforce foreign keys by default, so a source can hold orphans; engines
    that load with the checks off (MariaDB, SQLite) report them per constraint afterwards."""
    src = dbs.new("sqlite")
    run_sql(src,
            "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))",
            "CREATE TABLE other (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))",
            "INSERT INTO parent VALUES (1), (2)",
            "INSERT INTO child VALUES (1, 1), (2, 3), (3, 4), (4, NULL)",
            "INSERT INTO other VALUES (1, 2)")
    archive = tmp_path / "orphans.crate"
    dbcrate.dump(src, archive)
    report = dbcrate.restore(archive, dbs.new(kind), dbcrate.RestoreOptions(jobs=jobs))
    assert report.ok
    broken = [w for w in report.warnings if "break foreign key" in w]
    assert len(broken) == 1 and broken[0].startswith("child: 2 rows break foreign key"), broken


DUPLICATING_HOOK = '''
import pyarrow as pa
def transform(table, batch):
    doubled = [pa.concat_arrays([column, column]) for column in batch.columns]
    return pa.RecordBatch.from_arrays(doubled, schema=batch.schema)
'''


@pytest.mark.parametrize("kind", ENGINES)
def test_duplicate_primary_keys_from_a_hook_are_a_reported_failure(
        kind: str, dbs: Databases, tmp_path: Path) -> None:
    """A hook that doubles every row: PostgreSQL builds the primary key after the rows (as
    pg_restore does), so the key fails and the rows stay; the other engines refuse the load.
    Either way the table is failed, the exit code says so, and the other table is restored."""
    src = dbs.new(kind)
    run_sql(src, "CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    archive = tmp_path / "d.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new(kind)
    hooks = tmp_path / "dup.py"
    hooks.write_text(DUPLICATING_HOOK)
    report = dbcrate.restore(archive, dst, hooks=str(hooks))
    (result,) = report.tables
    assert result.status == "failed"
    if kind == "postgresql":
        # (from the native schema the primary key is a constraint of pg_dump's post-data)
        assert result.error.startswith(("rows restored, but an index could not be created",
                                        "rows restored, but a constraint could not be created"))
        assert rows(dst, "SELECT count(*) FROM t") == [(4,)]
        assert sa.inspect(engine_of(dst)).get_pk_constraint("t")["constrained_columns"] == []
    else:  # the load is refused and rolled back: the table the native schema made stays empty
        assert rows(dst, "SELECT count(*) FROM t") == [(0,)]
        assert result.error.endswith("stays empty"), result.error
    res = subprocess.run([sys.executable, "-m", "dbcrate", "restore", str(archive), dbs.new(kind),
                          "--hooks", str(hooks), "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 10 and "Traceback" not in res.stderr, res.stderr
