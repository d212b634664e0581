"""``copy`` restores each table as soon as the source's read of it is written (issue 19), as
pgcopydb streams tables: proven with a lock that holds the read of one table until another
table is in the target (a copy that read everything first would wait on the lock: the test
releases it after 30 s and fails). A source that cannot be read to the end: the error names
what the target got; ``clean`` reads the whole source before touching the target."""

from __future__ import annotations

import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import dbcrate
from dbcrate.errors import DatabaseError
from dbcrate.hooks import Hooks
from dbcrate.options import DumpOptions, RestoreOptions

from conftest import Databases, engine_of, require, rows, run_cli, run_sql, tables
from content import snapshot


@pytest.fixture
def spools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import tempfile

    spools = tmp_path / "tmpdir"
    spools.mkdir()
    monkeypatch.setenv("TMPDIR", str(spools))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return spools


def _two_tables(dbs: Databases) -> str:
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE a_small (id int PRIMARY KEY, v text)",
            "CREATE TABLE z_big (id int PRIMARY KEY, v text)",
            "CREATE INDEX z_big_v ON z_big (v)",
            "INSERT INTO a_small SELECT i, 'a' || i FROM generate_series(1, 300) i",
            "INSERT INTO z_big SELECT i, md5(i::text) FROM generate_series(1, 20000) i")
    return source


@pytest.fixture
def reader_role(dbs: Databases):  # type: ignore[no-untyped-def]
    """A role that is not a superuser: row-level security applies to it."""
    require("postgresql")
    role = f"dbcrate_r_{uuid.uuid4().hex[:8]}"
    admin = engine_of(_as(dbs.new("postgresql"), "postgres").rsplit("/", 1)[0] + "/postgres")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    yield role
    dbs.drop_all()  # (the grants go with the databases)
    dbs.created.clear()
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


def _as(url: str, role: str) -> str:
    return sa.engine.make_url(url).set(username=role, password=None).render_as_string(
        hide_password=False)


class Gate:
    """Every row of z_big that the reader role reads waits for an advisory lock that the test
    holds until :meth:`release` (then passes, or with ``fail`` raises an error): a row-level
    security policy, so catalogs, sizes and the other table are read as usual (superusers
    bypass it: the copy reads as ``role``). Released after 30 s at the latest, so that a copy
    that does not stream fails its test instead of hanging."""

    def __init__(self, source: str, role: str, key: int, *, fail: bool = False,
                 lock_timeout_ms: int = 30_000, passing: str = "false") -> None:
        broken = "RAISE EXCEPTION 'the disk under z_big failed';" if fail else ""
        run_sql(source,
                "CREATE FUNCTION gate() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
                f"PERFORM set_config('lock_timeout', '{lock_timeout_ms}', true); "
                f"PERFORM pg_advisory_lock_shared({key}); "
                f"PERFORM pg_advisory_unlock_shared({key}); {broken} RETURN true; END $$",
                "ALTER TABLE z_big ENABLE ROW LEVEL SECURITY",
                f"CREATE POLICY gated ON z_big FOR SELECT USING ({passing} OR gate())",
                f'GRANT SELECT ON a_small, z_big TO "{role}"')
        self.key = key
        self.released = threading.Event()
        self.seen: dict[str, bool] = {}
        self._holder = engine_of(source).connect()
        self._holder.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        self._timer = threading.Timer(30, self.release)
        self._timer.start()

    def release(self) -> None:
        if not self.released.is_set():
            self.released.set()
            self._holder.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")

    def hooks(self, at: str = "a_small") -> Hooks:
        """A restore hook that, at the first rows of table ``at``, notes whether z_big still
        waits (its read not done) and releases it."""

        def transform(table: str, batch):  # type: ignore[no-untyped-def]
            # (rows: the restore also calls it once with no rows, for the schema it makes)
            if table == at and batch.num_rows and table not in self.seen:
                self.seen[table] = not self.released.is_set()
                self.release()
            return batch

        return Hooks(transform=transform)

    def close(self) -> None:
        self._timer.cancel()
        self.release()
        self._holder.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_table_is_restored_while_another_is_still_being_read(dbs: Databases, spools: Path,
                                                               reader_role: str, jobs: int) -> None:
    source = _two_tables(dbs)
    target = dbs.new("postgresql")
    gate = Gate(source, reader_role, 7_000_000 + jobs)
    try:
        result = dbcrate.copy(_as(source, reader_role), target,
                              DumpOptions(jobs=jobs, no_native_schema=True),
                              RestoreOptions(jobs=jobs, hooks=gate.hooks()))
    finally:
        gate.close()
    assert gate.seen == {"a_small": True}  # a_small was in while z_big was still read
    assert result.report.ok and result.spool is None
    assert snapshot(source) == snapshot(target)
    assert rows(target, "SELECT indexname FROM pg_indexes WHERE tablename = 'z_big' "
                "ORDER BY 1") == [("z_big_pkey",), ("z_big_v",)]
    assert list(spools.iterdir()) == []


def test_a_source_that_cannot_be_read_to_the_end_names_what_the_target_got(
        dbs: Databases, spools: Path, reader_role: str) -> None:
    source = _two_tables(dbs)
    target = dbs.new("postgresql")
    gate = Gate(source, reader_role, 7_000_010, fail=True)
    try:
        with pytest.raises(DatabaseError) as failed:
            dbcrate.copy(_as(source, reader_role), target, DumpOptions(no_native_schema=True),
                         RestoreOptions(hooks=gate.hooks()))
    finally:
        gate.close()
    assert gate.seen == {"a_small": True}
    assert "z_big" in failed.value.message and "the disk under z_big failed" in failed.value.message
    assert ("the target holds the 1 table copied before the read stopped (a_small)"
            in (failed.value.hint or ""))
    assert rows(target, "SELECT count(*) FROM a_small") == [(300,)]
    # z_big: never created (its load is where the table is made) or left empty
    assert "z_big" not in {r[0] for r in rows(target, "SELECT tablename FROM pg_tables")} or \
        rows(target, "SELECT count(*) FROM z_big") == [(0,)]
    assert list(spools.iterdir()) == []  # the read is incomplete: nothing to resume from


def test_the_cli_says_what_the_target_got(dbs: Databases, spools: Path,
                                          reader_role: str) -> None:
    source = _two_tables(dbs)
    run_sql(source, f'GRANT SELECT ON a_small TO "{reader_role}"')  # not z_big
    target = dbs.new("postgresql")
    code, _, err = run_cli("copy", _as(source, reader_role), target, "--no-native-schema",
                           "--no-progress")
    assert code == 13, err
    message = " ".join(err.split())
    assert "permission denied for table z_big" in message and "Traceback" not in err
    restored = {r[0] for r in rows(target, "SELECT tablename FROM pg_tables "
                                   "WHERE schemaname = 'public'")} - {"dbcrate_journal"}
    if "a_small" in restored and rows(target, "SELECT count(*) FROM a_small") == [(300,)]:
        assert "the target holds the 1 table copied before the read stopped (a_small)" in message
    else:  # z_big failed first (its read starts first with two jobs)
        assert "nothing was written into the target's tables" in message


def test_clean_reads_the_whole_source_before_touching_the_target(
        dbs: Databases, spools: Path, reader_role: str) -> None:
    source = _two_tables(dbs)
    run_sql(source, f'GRANT SELECT ON a_small TO "{reader_role}"')
    target = dbs.new("postgresql")
    run_sql(target, "CREATE TABLE a_small (id int PRIMARY KEY, v text)",
            "INSERT INTO a_small VALUES (1, 'mine')")
    with pytest.raises(DatabaseError):
        dbcrate.copy(_as(source, reader_role), target,
                     DumpOptions(no_native_schema=True), RestoreOptions(clean=True))
    assert rows(target, "SELECT id, v FROM a_small") == [(1, "mine")]  # untouched


def test_a_read_waiting_for_its_server_lets_the_other_threads_run(
        dbs: Databases, tmp_path: Path, reader_role: str) -> None:
    """libpq's blocking calls in psycopg's C binding hold the GIL: a COPY waiting for its
    server (here for a lock) stopped every thread of the process. The reader now waits with
    the GIL released (dbcrate.dialects.pgcopy)."""
    source = _two_tables(dbs)
    gate = Gate(source, reader_role, 7_000_020, lock_timeout_ms=4000)
    failed: list[BaseException] = []

    def dump() -> None:
        try:
            dbcrate.dump(_as(source, reader_role), tmp_path / "z.crate", include=["z_big"],
                         jobs=1, no_native_schema=True)
        except BaseException as exc:  # (reported by the assertion below)
            failed.append(exc)

    reader = threading.Thread(target=dump)
    watcher = engine_of(source).connect()
    try:
        reader.start()
        deadline = time.monotonic() + 10
        waiting = False
        while not waiting and time.monotonic() < deadline:  # (frozen here before the fix)
            waiting = bool(watcher.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory' "
                "AND query LIKE 'COPY%%z_big%%'").scalar())
            time.sleep(0.01)
        ticks, start = 0, time.monotonic()
        while time.monotonic() - start < 0.5:
            ticks += 1
            time.sleep(0.001)
        gate.release()
        reader.join(30)
    finally:
        gate.close()
        watcher.close()
    assert waiting, "the read never waited for the gate (or the process stood still)"
    assert ticks > 100  # about 400 when the GIL is free; 1 when a read held it
    assert not failed and not reader.is_alive()
    with dbcrate.open_archive(tmp_path / "z.crate") as arch:
        assert arch.table("z_big").rows == 20000


@pytest.mark.parametrize("existing", [True, False], ids=["existing-file", "new-file"])
def test_into_another_engine_each_table_is_checked_as_it_is_read(
        dbs: Databases, spools: Path, reader_role: str, existing: bool) -> None:
    """Into SQLite every value is checked; the check of a table starts as soon as its read is
    written, while the next table is still read. Into an existing file, before anything is
    written; into a file the copy makes, as the table loads (a refused value removes the
    file: tests/test_checks_alongside.py)."""
    from dbcrate.transfer import iter_copy

    source = _two_tables(dbs)
    target = dbs.new("sqlite")
    if existing:
        run_sql(target, "CREATE TABLE mine (id integer)")
    gate = Gate(source, reader_role, 7_000_030)
    seen_while_reading: list[bool] = []
    written_before_the_check: list[set[str]] = []
    events = iter_copy(_as(source, reader_role), target, DumpOptions(no_native_schema=True))
    try:
        while True:
            event = next(events)
            if event.table != "a_small" or seen_while_reading:
                continue
            if (existing and event.phase == "verify") or \
                    (not existing and event.phase == "data" and event.finished):
                seen_while_reading.append(not gate.released.is_set())
                written_before_the_check.append(tables(target) - {"dbcrate_journal"})
                gate.release()
    except StopIteration as done:
        result = done.value
    finally:
        gate.close()
    assert seen_while_reading == [True]
    if existing:  # nothing in the target while checking
        assert written_before_the_check == [{"mine"}]
    else:  # loaded (and checked) while the next table was still read
        assert written_before_the_check == [{"a_small"}]
        assert result.report.plan["settings"]["checks_with_loads"] is True
    assert result.report.ok
    assert snapshot(source) == snapshot(target, ["a_small", "z_big"])


def test_a_table_a_migration_renames_is_copied_not_waited_for_forever(
        dbs: Databases, tmp_path: Path, spools: Path) -> None:
    """The restore waits for a table under its archive name: a migration that renames it
    (person -> client) must not leave the copy waiting for a name the dump never writes."""
    from test_restore_modes import MIGRATIONS, NEW_SCHEMA, OLD_SCHEMA

    source, target = dbs.new("postgresql"), dbs.new("postgresql")
    run_sql(source, *OLD_SCHEMA)
    run_sql(target, *NEW_SCHEMA)
    toml = tmp_path / "migrations.toml"
    toml.write_text(MIGRATIONS)
    result = dbcrate.copy(source, target, DumpOptions(schema_version="6"),
                          RestoreOptions(mode="into-existing", migrations=str(toml)))
    assert result.report.ok, result.report.to_dict()
    assert rows(target, "SELECT count(*) FROM client") == [(3,)]
    assert list(spools.iterdir()) == []


def test_a_copy_given_up_stops_its_read_at_once(dbs: Databases, spools: Path,
                                                reader_role: str) -> None:
    """Closing the copy (Ctrl-C, or a caller that stops iterating) while a table's read waits
    for its server cancels that read now, and leaves no spool and no holding directory."""
    from dbcrate.transfer import iter_copy

    source = _two_tables(dbs)
    target = dbs.new("postgresql")
    gate = Gate(source, reader_role, 7_000_040)  # z_big's read waits until the gate opens
    events = iter_copy(_as(source, reader_role), target, DumpOptions(no_native_schema=True))
    try:
        for event in events:
            if event.phase == "data" and event.finished and event.table == "a_small":
                break
        started = time.monotonic()
        events.close()
        took = time.monotonic() - started
    finally:
        gate.close()
    assert took < 10  # not the 30 s the gate would hold the read
    assert rows(target, "SELECT count(*) FROM a_small") == [(300,)]
    assert list(spools.iterdir()) == []


def _finish_order(url: str, output: Path, container: str) -> list[str]:
    """The tables in the order their data was appended (their last ``data`` event)."""
    options = DumpOptions(jobs=2, container=container)  # type: ignore[arg-type]
    events = dbcrate.iter_dump(url, output, options)
    order = []
    while True:
        try:
            event = next(events)
        except StopIteration:
            break
        if event.phase == "data" and event.finished and event.table:
            order.append(event.table)
    return order


def test_a_directory_takes_each_table_once_read_a_tar_keeps_manifest_order(
        dbs: Databases, tmp_path: Path) -> None:
    """A big first table does not hold back the small one read beside it, where the output
    keeps no order of members (a directory, as `copy`'s spool); a tar's members stay in
    manifest order (docs/FORMAT.md). Both restore to the same rows."""
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE a_big (id int PRIMARY KEY, t text)",
            "INSERT INTO a_big SELECT i, md5(i::text) || repeat('x', 200) "
            "FROM generate_series(1, 400000) i",
            "CREATE TABLE b_small (id int PRIMARY KEY)", "INSERT INTO b_small VALUES (1)")
    directory = _finish_order(source, tmp_path / "dir", "directory")
    tar = _finish_order(source, tmp_path / "a.crate", "tar")
    assert directory == ["b_small", "a_big"]
    assert tar == ["a_big", "b_small"]
    with tarfile.open(tmp_path / "a.crate") as tar_file:  # (in the file, as written)
        members = [m.name for m in tar_file.getmembers() if m.name.startswith("data/")]
    assert members[0].startswith("data/t0001/") and members == sorted(members)
    for output in (tmp_path / "dir", tmp_path / "a.crate"):
        target = dbs.new("postgresql")
        assert dbcrate.restore(output, target).ok
        for query in ("SELECT count(*), md5(string_agg(t, ',' ORDER BY id)) FROM a_big",
                      "SELECT id FROM b_small"):
            assert rows(target, query) == rows(source, query)


def _wide_tables(dbs: Databases) -> str:
    """a_small and z_big, whose rows (640 bytes) fill the reader's first 2 MiB block of
    COPY text before the 5,000th."""
    source = dbs.new("postgresql")
    run_sql(source, "CREATE TABLE a_small (id int PRIMARY KEY, v text)",
            "CREATE TABLE z_big (id int PRIMARY KEY, v text)",
            "INSERT INTO a_small SELECT i, 'a' || i FROM generate_series(1, 300) i",
            "INSERT INTO z_big SELECT i, repeat(md5(i::text), 20) "
            "FROM generate_series(1, 20000) i")
    return source


@pytest.mark.parametrize("native", [False, True])
def test_a_table_loads_while_it_is_still_being_read(dbs: Databases, spools: Path,
                                                    reader_role: str, native: bool) -> None:
    """A table's chunks are handed to the restore as they are written, not once the table
    is read to its end (as pgcopydb pipes COPY out into COPY in): z_big's first 5,000 rows
    pass, the rest wait for the gate, which z_big's own load releases at its first rows.
    With the native schema too: a table not yet written weighs what the source estimated (it
    was taken for a small table, loaded in a group that waits for whole tables)."""
    source = _wide_tables(dbs)
    # (not analyzed: no row estimate, so z_big is read in one part, in key order: a read in
    # parts would meet the gate of row 5,001 in every part, as the policy is checked first)
    target = dbs.new("postgresql")
    gate = Gate(source, reader_role, 7_000_030 + native, passing="id <= 5000")
    try:
        result = dbcrate.copy(_as(source, reader_role), target,
                              DumpOptions(no_native_schema=not native, chunk_rows=1000),
                              RestoreOptions(hooks=gate.hooks(at="z_big")))
    finally:
        gate.close()
    assert gate.seen == {"z_big": True}  # loading while its own read still waited
    assert result.report.ok and result.spool is None
    assert snapshot(source) == snapshot(target)
    assert {r.name: r.rows for r in result.report.tables} == {"a_small": 300, "z_big": 20000}
    assert result.dump is not None
    assert len(result.dump.manifest.table("z_big").chunks) == 20


def test_a_read_that_fails_under_a_table_being_loaded_rolls_its_load_back(
        dbs: Databases, spools: Path, reader_role: str) -> None:
    """The dump fails after z_big's first chunks were loaded: the load waiting for the next
    chunk ends with the dump's error, and its transaction takes the rows it had back."""
    source = _wide_tables(dbs)
    target = dbs.new("postgresql")
    gate = Gate(source, reader_role, 7_000_040, fail=True, passing="id <= 5000")
    try:
        with pytest.raises(DatabaseError) as failed:
            dbcrate.copy(_as(source, reader_role), target,
                         DumpOptions(no_native_schema=True, chunk_rows=1000),
                         RestoreOptions(hooks=gate.hooks(at="z_big")))
    finally:
        gate.close()
    assert gate.seen == {"z_big": True}  # its first chunks were being loaded
    assert "the disk under z_big failed" in failed.value.message
    assert rows(target, "SELECT count(*) FROM a_small") == [(300,)]
    assert "z_big" not in {r[0] for r in rows(target, "SELECT tablename FROM pg_tables")} or \
        rows(target, "SELECT count(*) FROM z_big") == [(0,)]
    assert list(spools.iterdir()) == []
