"""Nothing lost, nothing silent: restores that must not lose a user's rows or say less than they
did (resume, clean, single transaction, reruns, foreign keys not carried, migrations outside the
chain, conflict counts and ``check``, lost connections, files left by dry runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.errors import (
    NotPortable,
    RowsDiffer,
    StrictWarnings,
    TargetConflict,
    UnfinishedRestore,
    UsageError,
)

from conftest import ENGINES, Databases, engine_of, rows, run_sql, tables


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbcrate", *args, "--no-progress"]
                          if args[0] == "restore" else [sys.executable, "-m", "dbcrate", *args],
                          capture_output=True, text=True)


# --------------------------------------------------------------------- resume (item 1)
@pytest.mark.parametrize("kind", ENGINES)
def test_resume_never_drops_a_table_it_did_not_start(kind: str, dbs: Databases,
                                                     tmp_path: Path) -> None:
    src, dst = dbs.new(kind), dbs.new(kind)
    run_sql(src, "CREATE TABLE genre (id INTEGER PRIMARY KEY, name VARCHAR(20))",
            "INSERT INTO genre VALUES (1, 'Rock'), (2, 'Jazz')",
            "CREATE TABLE other (id INTEGER PRIMARY KEY)")
    archive = tmp_path / "g.crate"
    dbcrate.dump(src, archive)
    run_sql(dst, "CREATE TABLE genre (id INTEGER PRIMARY KEY, name VARCHAR(20), extra INTEGER)",
            "INSERT INTO genre VALUES (999, 'mine', 7)")
    with pytest.raises(TargetConflict, match="genre"):
        dbcrate.restore(archive, dst, include=["genre"], resume=True)
    done = cli("restore", str(archive), dst, "-t", "genre", "--resume")
    assert done.returncode == 8, done.stdout + done.stderr
    assert rows(dst, "SELECT id, name, extra FROM genre") == [(999, "mine", 7)]
    assert "dbcrate_journal" not in tables(dst)


# ------------------------------------------------------ clean into existing (items 2, 9)
DOUBLER = '''
import pyarrow as pa
def transform(table, batch):
    if table == "two":  # every key twice: the load fails on the primary key
        return pa.concat_batches([batch, batch]) if hasattr(pa, "concat_batches") else \\
            pa.RecordBatch.from_pylist(batch.to_pylist() * 2, schema=batch.schema)
    return batch
'''


def _two_tables(kind: str, dbs: Databases, tmp_path: Path) -> tuple[Path, str]:
    src, dst = dbs.new(kind), dbs.new(kind)
    ddl = ["CREATE TABLE one (id INTEGER PRIMARY KEY, v VARCHAR(10))",
           "CREATE TABLE two (id INTEGER PRIMARY KEY, v VARCHAR(10))"]
    run_sql(src, *ddl, "INSERT INTO one VALUES (1, 'a'), (2, 'b')",
            "INSERT INTO two VALUES (1, 'x'), (2, 'y')")
    run_sql(dst, *ddl, "INSERT INTO one VALUES (7, 'old')", "INSERT INTO two VALUES (8, 'old')")
    archive = tmp_path / "two.crate"
    dbcrate.dump(src, archive)
    return archive, dst


@pytest.mark.parametrize("kind", ENGINES)
def test_clean_into_existing_failure_keeps_the_old_rows_and_a_rerun_works(
        kind: str, dbs: Databases, tmp_path: Path) -> None:
    archive, dst = _two_tables(kind, dbs, tmp_path)
    hooks = tmp_path / "doubler.py"
    hooks.write_text(DOUBLER)
    report = dbcrate.restore(archive, dst, mode="into-existing", clean=True, hooks=str(hooks))
    by_name = {t.name: t for t in report.tables}
    assert by_name["one"].status == "restored" and by_name["two"].status == "failed"
    assert "keeps its rows from before the restore" in (by_name["two"].error or "")
    assert rows(dst, "SELECT id, v FROM two") == [(8, "old")]  # emptying rolled back too
    assert rows(dst, "SELECT id, v FROM one ORDER BY id") == [(1, "a"), (2, "b")]
    # the same command again, without the fault and without --resume: it works (issue: an
    # IntegrityError on the journal's key)
    again = cli("restore", str(archive), dst, "--mode", "into-existing", "--clean")
    assert again.returncode == 0, again.stdout + again.stderr
    assert rows(dst, "SELECT id, v FROM two ORDER BY id") == [(1, "x"), (2, "y")]
    assert "dbcrate_journal" not in tables(dst)


@pytest.mark.parametrize("kind", ENGINES)
def test_rerun_of_an_unfinished_append_says_resume_or_clean(kind: str, dbs: Databases,
                                                             tmp_path: Path) -> None:
    archive, dst = _two_tables(kind, dbs, tmp_path)
    hooks = tmp_path / "doubler.py"
    hooks.write_text(DOUBLER)
    first = dbcrate.restore(archive, dst, mode="into-existing", hooks=str(hooks))
    assert not first.ok
    two = next(t for t in first.tables if t.name == "two")
    assert "nothing of it was written: the table is unchanged" in (two.error or "")
    with pytest.raises(UnfinishedRestore) as info:
        dbcrate.restore(archive, dst, mode="into-existing")
    assert "resume=True" in (info.value.hint or "") and "clean=True" in (info.value.hint or "")
    said = cli("restore", str(archive), dst, "--mode", "into-existing")
    assert said.returncode == 8 and "Traceback" not in said.stderr, said.stderr
    assert "--resume" in said.stderr + said.stdout
    resumed = dbcrate.restore(archive, dst, mode="into-existing", resume=True)
    assert resumed.ok, resumed.to_dict()
    assert rows(dst, "SELECT id FROM two ORDER BY id") == [(1,), (2,), (8,)]
    assert rows(dst, "SELECT id FROM one ORDER BY id") == [(1,), (2,), (7,)]


def test_clean_into_existing_empties_and_loads_linked_tables_together(
        dbs: Databases, tmp_path: Path) -> None:
    """PostgreSQL checks foreign keys while loading: a parent and its child are emptied and
    loaded in one transaction, so the child's failure leaves both as they were."""
    src, dst = dbs.new("postgresql"), dbs.new("postgresql")
    ddl = ["CREATE TABLE one (id INTEGER PRIMARY KEY)",
           "CREATE TABLE two (id INTEGER PRIMARY KEY, one_id INTEGER REFERENCES one(id))"]
    run_sql(src, *ddl, "INSERT INTO one VALUES (1), (2)", "INSERT INTO two VALUES (1, 1), (2, 2)")
    run_sql(dst, *ddl, "INSERT INTO one VALUES (7)", "INSERT INTO two VALUES (8, 7)")
    archive = tmp_path / "fk.crate"
    dbcrate.dump(src, archive)
    hooks = tmp_path / "doubler.py"
    hooks.write_text(DOUBLER)
    report = dbcrate.restore(archive, dst, mode="into-existing", clean=True, hooks=str(hooks))
    assert [t.status for t in report.tables] == ["failed", "failed"]
    assert all("together with one, two" in (t.error or "") for t in report.tables)
    assert rows(dst, "SELECT id FROM one") == [(7,)]
    assert rows(dst, "SELECT id, one_id FROM two") == [(8, 7)]


# ------------------------------------------------------ single transaction (item 5)
@pytest.mark.parametrize("kind", ENGINES)
def test_failed_single_transaction_leaves_nothing(kind: str, dbs: Databases,
                                                  tmp_path: Path) -> None:
    archive, dst = _two_tables(kind, dbs, tmp_path)
    run_sql(dst, "INSERT INTO two VALUES (1, 'clash')")
    before = tables(dst)
    report = dbcrate.restore(archive, dst, mode="into-existing", single_transaction=True)
    assert not report.ok
    assert all("the target is unchanged" in (t.error or "") for t in report.tables
               if t.status == "failed")
    assert tables(dst) == before  # no dbcrate_journal left
    assert rows(dst, "SELECT id FROM one") == [(7,)]
    if kind != "mysql":  # recreate: MariaDB cannot roll DDL back (refused up front)
        fresh = dbs.new(kind)
        run_sql(fresh, "CREATE TABLE keep (id INTEGER)")
        hooks = tmp_path / "doubler.py"
        hooks.write_text(DOUBLER)
        failed = dbcrate.restore(archive, fresh, single_transaction=True, hooks=str(hooks))
        assert not failed.ok
        assert tables(fresh) == {"keep"}


# --------------------------------------------------------- foreign keys (item 6)
SHOP = [
    "CREATE TABLE employee (id INTEGER PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE customer (id INTEGER PRIMARY KEY, rep_id INTEGER, "
    "CONSTRAINT customer_rep_fkey FOREIGN KEY (rep_id) REFERENCES employee(id))",
    "CREATE TABLE invoice (id INTEGER PRIMARY KEY, customer_id INTEGER, "
    "CONSTRAINT invoice_customer_fkey FOREIGN KEY (customer_id) REFERENCES customer(id))",
    "INSERT INTO employee VALUES (1, 'Jane')",
    "INSERT INTO customer VALUES (10, 1), (11, 1)",
    "INSERT INTO invoice VALUES (100, 10), (101, 11)",
]


def _fk_names(url: str, table: str) -> list[tuple[str, str]]:
    eng = engine_of(url)
    try:
        return sorted((fk["referred_table"], ",".join(fk["constrained_columns"]))
                      for fk in sa.inspect(eng).get_foreign_keys(table))
    finally:
        eng.dispose()


@pytest.mark.parametrize("kind", ENGINES)
def test_a_foreign_key_not_recreated_is_a_warning_and_strict_fails(
        kind: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(kind)
    run_sql(src, *SHOP)
    archive = tmp_path / "shop.crate"
    dbcrate.dump(src, archive)
    dst = dbs.new(kind)
    report = dbcrate.restore(archive, dst, include=["customer", "invoice"])
    assert report.ok
    customer = next(t for t in report.tables if t.name == "customer")
    assert customer.not_recreated == [{
        "kind": "foreign key", "name": "customer_rep_fkey",
        "reason": "table 'employee' is neither restored nor present in the target"}]
    assert any("customer_rep_fkey" in w for w in report.all_warnings)
    assert _fk_names(dst, "invoice") == [("customer", "customer_id")]
    # the JSON report carries it; --strict makes it a failure with its own exit code
    dst2 = dbs.new(kind)
    done = cli("restore", str(archive), dst2, "-t", "customer", "-t", "invoice", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    table = next(t for t in data["tables"] if t["name"] == "customer")
    assert table["not_recreated"][0]["name"] == "customer_rep_fkey"
    assert any("customer_rep_fkey" in w for w in table["warnings"])
    dst3 = dbs.new(kind)
    with pytest.raises(StrictWarnings, match="customer_rep_fkey"):
        dbcrate.restore(archive, dst3, include=["customer", "invoice"],
                        strict=True).raise_for_failures()
    strict = cli("restore", str(archive), dbs.new(kind), "-t", "customer", "-t", "invoice",
                 "--strict")
    assert strict.returncode == 16, strict.stdout + strict.stderr
    assert "customer_rep_fkey" in strict.stdout + strict.stderr


FAIL_CUSTOMER = '''
def transform(table, batch):
    if table == "customer" and batch.num_rows:
        raise RuntimeError("customer cannot be loaded today")
    return batch
'''


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_foreign_key_to_a_failed_table_is_named(kind: str, dbs: Databases,
                                                  tmp_path: Path) -> None:
    src = dbs.new(kind)
    run_sql(src, *SHOP)
    archive = tmp_path / "shop.crate"
    dbcrate.dump(src, archive)
    hooks = tmp_path / "fail.py"
    hooks.write_text(FAIL_CUSTOMER)
    report = dbcrate.restore(archive, dbs.new(kind), hooks=str(hooks))
    invoice = next(t for t in report.tables if t.name == "invoice")
    assert invoice.status == "restored"
    if kind == "mysql":
        # the native schema keeps MariaDB's foreign keys inside CREATE TABLE (as mysqldump):
        # the key is there, and the orphan check names the rows it leaves without a parent
        assert "invoice: 2 rows break foreign key invoice_customer_fkey -> customer" in \
            report.warnings, report.warnings
        return
    assert invoice.not_recreated == [{
        "kind": "foreign key", "name": "invoice_customer_fkey",
        "reason": "table 'customer' failed to restore (failed)"}]


RENAME = """
[[step]]
from = "1"
to = "2"
[step.tables.customer]
rename_to = "client"
rename_columns = { id = "client_id" }
"""


@pytest.mark.parametrize("kind", ENGINES)
def test_foreign_keys_follow_a_migration_rename(kind: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(kind)
    run_sql(src, *SHOP)
    archive = tmp_path / "shop.crate"
    dbcrate.dump(src, archive, schema_version="1")
    steps = tmp_path / "m.toml"
    steps.write_text(RENAME)
    dst = dbs.new(kind)
    report = dbcrate.restore(archive, dst, migrations=str(steps))
    assert report.ok and not report.all_warnings, report.to_dict()
    assert _fk_names(dst, "invoice") == [("client", "customer_id")]
    assert _fk_names(dst, "client") == [("employee", "rep_id")]


# ---------------------------------------------------------- migrations chain (item 7)
def test_an_archive_outside_the_migration_chain_is_refused(dbs: Databases, tmp_path: Path) -> None:
    src, dst = dbs.new("sqlite"), dbs.new("sqlite")
    run_sql(src, "CREATE TABLE customer (id INTEGER PRIMARY KEY)", "INSERT INTO customer VALUES (1)")
    run_sql(dst, "CREATE TABLE client (id INTEGER PRIMARY KEY)")
    archive = tmp_path / "v5.crate"
    dbcrate.dump(src, archive, schema_version="5")
    steps = tmp_path / "m.toml"
    steps.write_text(RENAME.replace('"1"', '"6"').replace('"2"', '"7"'))
    with pytest.raises(UsageError, match=r"schema version 5 is not in the migration chain.*6 -> 7"):
        dbcrate.restore(archive, dst, mode="into-existing", migrations=str(steps))
    assert rows(dst, "SELECT count(*) FROM client") == [(0,)]
    assert tables(dst) == {"client"}
    # an archive already at the chain's end restores without steps
    at_end = tmp_path / "v7.crate"
    run_sql(src, "ALTER TABLE customer RENAME TO client")
    dbcrate.dump(src, at_end, schema_version="7")
    assert dbcrate.restore(at_end, dst, mode="into-existing", migrations=str(steps)).ok
    assert rows(dst, "SELECT id FROM client") == [(1,)]


# --------------------------------------------- conflict counts and check (items 8, 10)
@pytest.mark.parametrize("kind", ENGINES)
def test_conflict_policies_report_counts_and_check_changes_nothing(
        kind: str, dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new(kind)
    run_sql(src, "CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))",
            "INSERT INTO item VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four')")
    archive = tmp_path / "items.crate"
    dbcrate.dump(src, archive)
    existing = ["CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))",
                "INSERT INTO item VALUES (2, 'two'), (3, 'THREE'), (9, 'nine')"]
    before = [(2, "two"), (3, "THREE"), (9, "nine")]

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    skip = dbcrate.restore(archive, dst, mode="into-existing", on_conflict="skip")
    assert skip.ok and skip.tables[0].conflicts == {"inserted": 2, "skipped": 2}

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    update = dbcrate.restore(archive, dst, mode="into-existing", on_conflict="update")
    assert update.ok
    assert update.tables[0].conflicts == {"inserted": 2, "updated": 1, "unchanged": 1}
    assert rows(dst, "SELECT label FROM item WHERE id = 3") == [("three",)]  # case counts

    dst = dbs.new(kind)
    run_sql(dst, *existing)
    check = dbcrate.restore(archive, dst, mode="into-existing", on_conflict="check")
    assert check.tables[0].status == "checked"
    assert check.tables[0].conflicts == {"missing": 2, "identical": 1, "differing": 1,
                                         "differing_keys": [{"id": 3}]}
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == before
    with pytest.raises(RowsDiffer, match="item"):
        check.raise_for_failures()
    said = cli("restore", str(archive), dst, "--mode", "into-existing", "--on-conflict", "check",
               "--json")
    assert said.returncode == 17, said.stdout + said.stderr
    assert json.loads(said.stdout)["tables"][0]["conflicts"]["differing_keys"] == [{"id": 3}]
    assert rows(dst, "SELECT id, label FROM item ORDER BY id") == before
    assert "dbcrate_journal" not in tables(dst)
    # an identical target: check passes
    same = dbs.new(kind)
    run_sql(same, "CREATE TABLE item (id INTEGER PRIMARY KEY, label VARCHAR(20))",
            "INSERT INTO item VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four')")
    clean = dbcrate.restore(archive, same, mode="into-existing", on_conflict="check")
    clean.raise_for_failures()
    assert clean.tables[0].conflicts == {"missing": 0, "identical": 4, "differing": 0,
                                         "differing_keys": []}


@pytest.mark.parametrize("policy", ["skip", "update", "check"])
@pytest.mark.parametrize("kind", ENGINES)
def test_policies_on_a_table_whose_columns_are_all_key_columns(
        kind: str, policy: str, dbs: Databases, tmp_path: Path) -> None:
    """Chinook's playlist_track: MariaDB said 'Column ... in UPDATE is ambiguous'."""
    src, dst = dbs.new(kind), dbs.new(kind)
    ddl = "CREATE TABLE playlist_track (playlist_id INTEGER, track_id INTEGER, " \
          "PRIMARY KEY (playlist_id, track_id))"
    run_sql(src, ddl, "INSERT INTO playlist_track VALUES (1, 1), (1, 2), (2, 1)")
    run_sql(dst, ddl, "INSERT INTO playlist_track VALUES (1, 1), (5, 5)")
    archive = tmp_path / "pt.crate"
    dbcrate.dump(src, archive)
    planned = dbcrate.restore(archive, dst, mode="into-existing", on_conflict=policy, dry_run=True)
    assert planned.tables[0].status == "planned"
    report = dbcrate.restore(archive, dst, mode="into-existing", on_conflict=policy)
    report.raise_for_failures()
    expected = [(1, 1), (5, 5)] if policy == "check" else [(1, 1), (1, 2), (2, 1), (5, 5)]
    assert rows(dst, "SELECT playlist_id, track_id FROM playlist_track "
                     "ORDER BY playlist_id, track_id") == expected


def test_an_upsert_the_target_refuses_is_found_before_writing(dbs: Databases,
                                                              tmp_path: Path) -> None:
    """MariaDB matches any unique key: a row that clashes on another unique key must not
    change a row with another primary key."""
    src, dst = dbs.new("mysql"), dbs.new("mysql")
    ddl = "CREATE TABLE person (id INTEGER PRIMARY KEY, email VARCHAR(40) UNIQUE, name VARCHAR(20))"
    run_sql(src, ddl, "INSERT INTO person VALUES (1, 'a@x', 'new a'), (2, 'b@x', 'new b')")
    run_sql(dst, ddl, "INSERT INTO person VALUES (7, 'b@x', 'someone else')")
    archive = tmp_path / "p.crate"
    dbcrate.dump(src, archive)
    report = dbcrate.restore(archive, dst, mode="into-existing", on_conflict="update")
    assert not report.ok
    assert "another unique key" in (report.tables[0].error or "")
    assert rows(dst, "SELECT id, email, name FROM person") == [(7, "b@x", "someone else")]


# ------------------------------------------------------- lost connection (item 12)
KILL_SESSION = '''
import os
import sqlalchemy as sa
DONE = {"killed": False}
def transform(table, batch):
    # kills the restore's loading session while it loads: the first time a batch passes and
    # a session of the target is inside a transaction (the preflight reads batches too, and
    # an idle pooled session that is killed is replaced when next handed out: not this case)
    if table == "big" and batch.num_rows and not DONE["killed"]:
        eng = sa.create_engine(os.environ["DBCRATE_TEST_ADMIN"], isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            found = c.exec_driver_sql(os.environ["DBCRATE_TEST_SESSIONS"]).all()
            for (pid,) in found:
                c.exec_driver_sql(os.environ["DBCRATE_TEST_KILL"].format(pid=int(pid)))
            DONE["killed"] = bool(found)
        eng.dispose()
    return batch
'''


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_a_connection_killed_mid_restore_is_named(kind: str, dbs: Databases, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = dbs.new(kind), dbs.new(kind)
    run_sql(src, "CREATE TABLE big (id INTEGER PRIMARY KEY, v VARCHAR(20))")
    run_sql(src, "INSERT INTO big VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, 2001)))
    archive = tmp_path / "big.crate"
    dbcrate.dump(src, archive, chunk_rows=200)
    name = sa.engine.make_url(dst).database
    if kind == "mysql":
        # sessions are not pooled here: any session on the target is the loading one (a
        # load streamed to LOAD DATA opens its transaction only when the statement runs)
        sessions = ("SELECT id FROM information_schema.processlist "
                    f"WHERE db = '{name}' AND id <> CONNECTION_ID()")
        kill = "KILL {pid}"
    else:
        sessions = ("SELECT pid FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid() "
                    "AND xact_start IS NOT NULL")
        kill = "SELECT pg_terminate_backend({pid})"
    monkeypatch.setenv("DBCRATE_TEST_ADMIN", dst)
    monkeypatch.setenv("DBCRATE_TEST_SESSIONS", sessions)
    monkeypatch.setenv("DBCRATE_TEST_KILL", kill)
    hooks = tmp_path / "kill.py"
    hooks.write_text(KILL_SESSION)
    for mode in ("recreate", "into-existing"):
        if mode == "into-existing":
            run_sql(dst, "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, v VARCHAR(20))")
        done = cli("restore", str(archive), dst, "--mode", mode, "--hooks", str(hooks), "--json")
        said = done.stdout + done.stderr
        assert done.returncode == 10, said
        assert "NoneType" not in said and "Traceback" not in said, said
        error = json.loads(done.stdout)["tables"][0]["error"]
        assert error.startswith("the connection to the database server was lost"), error
        if mode == "recreate":  # the native schema made it first, before the rows
            assert rows(dst, "SELECT count(*) FROM big") == [(0,)]
            assert error.endswith("created empty by the native schema, stays empty"), error
            run_sql(dst, "DROP TABLE big", "DROP TABLE dbcrate_journal")  # start over
        else:
            assert rows(dst, "SELECT count(*) FROM big") == [(0,)]
            assert error.endswith("nothing of it was written: the table is unchanged"), error


def test_a_connection_lost_outside_a_table_is_a_database_error(dbs: Databases,
                                                               tmp_path: Path) -> None:
    """A session the server ends outside a table's unit (here in the schema hook, between the
    journal and the tables) is named as a lost connection with exit 13, not as a bug."""
    src, dst = dbs.new("postgresql"), dbs.new("postgresql")
    run_sql(src, "CREATE TABLE t (id integer PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    archive = tmp_path / "t.crate"
    dbcrate.dump(src, archive)
    hooks = tmp_path / "ends_its_session.py"
    hooks.write_text("def prepare_schema_for_restore(connection, manifest):\n"
                     "    connection.exec_driver_sql('SELECT pg_terminate_backend(pg_backend_pid())')\n")
    done = cli("restore", str(archive), dst, "--hooks", str(hooks))
    said = done.stdout + done.stderr
    assert done.returncode == 13, said
    assert "the connection to the database server was lost" in said, said
    assert "internal error" not in said and "--resume" in said, said


# ------------------------------------------------- no file left by a dry run (item 14)
def test_plan_dry_run_and_refused_restore_leave_no_sqlite_file(dbs: Databases,
                                                               tmp_path: Path) -> None:
    src = dbs.new("sqlite")
    run_sql(src, "CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    archive = tmp_path / "t.crate"
    dbcrate.dump(src, archive)
    target = tmp_path / "new.db"
    url = f"sqlite:///{target}"
    assert cli("plan", str(archive), url).returncode == 0
    assert not target.exists()
    assert cli("restore", str(archive), url, "--dry-run").returncode == 0
    assert not target.exists()
    refused = cli("restore", str(archive), url, "--mode", "into-existing")
    assert refused.returncode == 9, refused.stderr
    assert not target.exists()
    with pytest.raises(NotPortable):
        dbcrate.restore(archive, url, mode="into-existing")
    assert not target.exists()
    assert dbcrate.restore(archive, url).ok
    assert rows(url, "SELECT id FROM t") == [(1,)]
    # an existing empty file is the user's: kept
    empty = tmp_path / "empty.db"
    empty.touch()
    assert cli("plan", str(archive), f"sqlite:///{empty}").returncode == 0
    assert empty.exists()



INTERRUPT = '''
import os, signal
def transform(table, batch):
    if table == "two" and batch.num_rows:
        os.kill(os.getpid(), signal.SIGINT)
    return batch
'''


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_interrupted_restore_says_how_to_continue(kind: str, dbs: Databases,
                                                     tmp_path: Path) -> None:
    archive, _ = _two_tables(kind, dbs, tmp_path)
    dst = dbs.new(kind)
    hooks = tmp_path / "interrupt.py"
    hooks.write_text(INTERRUPT)
    stopped = cli("restore", str(archive), dst, "--hooks", str(hooks))
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert "rerun the same command with --resume" in " ".join(stopped.stderr.split())
    assert "Traceback" not in stopped.stderr
    again = cli("restore", str(archive), dst, "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    assert rows(dst, "SELECT id, v FROM two ORDER BY id") == [(1, "x"), (2, "y")]


@pytest.mark.parametrize("ddl", ['CREATE TABLE "" (id INTEGER)', 'CREATE TABLE t ("" INTEGER)'])
def test_an_empty_name_is_refused_at_dump_time(ddl: str, dbs: Databases, tmp_path: Path) -> None:
    """SQLite accepts empty names; an archive cannot hold them (its reader refuses them), so
    the dump refuses first, and leaves no archive."""
    src = dbs.new("sqlite")
    run_sql(src, ddl)
    out = tmp_path / "e.crate"
    done = cli("dump", src, str(out))
    assert done.returncode == 11, done.stdout + done.stderr
    assert "an archive cannot name it" in " ".join(done.stderr.split())
    assert not out.exists()
    assert list(tmp_path.glob("*.crate*")) == []
