"""The native schema is captured before the dump's own connections lock a table.

pg_dump locks every table it dumps. Were the dump's transaction to hold a table's lock first
(the bounds of a key range, read while planning), an ``ALTER TABLE`` from another session would
queue behind it and pg_dump's lock behind the ``ALTER``, while the dump waited for pg_dump: a
wait no server detects. The capture now starts with the snapshot and the plan waits for it
before its first lock (dump/native.py)."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.archive_tools import manifest_of, read_members
from tests.conftest import Databases, engine_of, rows, run_cli, run_sql

from dbcrate.dialects import pg_large
from dbcrate.dialects.postgresql import PostgreSQL
from dbcrate.dump.source import Snapshot

# (dbcrate.dump, the attribute, is the dump function)
native_capture = importlib.import_module("dbcrate.dump.native")


@pytest.mark.parametrize(("jobs", "filtered", "tolerate", "reader"),
                         [(1, False, False, "adbc"), (1, True, False, "adbc"),
                          (2, False, False, "adbc"), (2, False, True, "adbc"),
                          (2, False, False, "copy")])
def test_an_alter_waiting_on_the_dump_does_not_hang_it(dbs: Databases, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       jobs: int, filtered: bool,
                                                       tolerate: bool, reader: str) -> None:
    """Once the dump holds its locks (its leader locks every table it reads, after the
    capture), another session's ``ALTER TABLE big`` waits behind them. The dump still
    completes, with the native schema and every row: its ADBC readers and -j workers take a
    table's lock NOWAIT, and a refused one leaves the table to the leader (COPY), which holds
    every lock. Never a hang; the ALTER runs after the dump."""
    src = dbs.new("postgresql")  # big: 50,000 rows, split in 5 key ranges with -j 2
    run_sql(src, "CREATE TABLE big (id integer PRIMARY KEY, v text)", "CREATE TABLE small (id int)",
            "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 50000) g", "ANALYZE")
    if reader == "adbc":  # the worker's lock is taken before the ADBC reader's query
        monkeypatch.setattr(PostgreSQL, "arrow_reader_min_bytes", 0)
    else:  # a small table's: sent with its COPY, in one message (pgcopy's ``first``)
        monkeypatch.setattr(PostgreSQL, "arrow_reader_min_bytes", None)
        monkeypatch.setattr(pg_large, "CHECKED_TOAST_BYTES", 1 << 40)
    altered: dict[str, Any] = {}
    real = PostgreSQL.lock_for_reading

    def alter() -> None:
        eng = engine_of(src)
        try:
            with eng.connect() as conn:
                conn.exec_driver_sql("SET lock_timeout = '20s'")
                conn.exec_driver_sql("ALTER TABLE big ADD COLUMN x integer")
                altered["at"] = time.monotonic()
        except sa.exc.DBAPIError as exc:
            altered["error"] = str(exc)
        finally:
            eng.dispose()

    def lock_for_reading(self: PostgreSQL, conn: sa.Connection, tables: list[str]) -> None:
        real(self, conn, tables)  # the dump now holds big's lock
        altered["thread"] = threading.Thread(target=alter)
        altered["thread"].start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not rows(
                src, "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock' AND starts_with(query, 'ALTER TABLE big')"):
            time.sleep(0.02)

    monkeypatch.setattr(PostgreSQL, "lock_for_reading", lock_for_reading)
    early: list[bool] = []
    real_done = native_capture.NativeCapture.done

    def done(self: native_capture.NativeCapture, *args: Any) -> None:
        early.append(self._early is not None)
        real_done(self, *args)

    monkeypatch.setattr(native_capture.NativeCapture, "done", done)
    handed: list[str] = []  # tasks a worker, refused big's lock, handed to the leader
    real_on_leader = Snapshot._on_leader

    def on_leader(self: Snapshot, fn: Any, *args: Any) -> Any:
        handed.append(args[1].table.name)
        return real_on_leader(self, fn, *args)

    monkeypatch.setattr(Snapshot, "_on_leader", on_leader)
    archive = tmp_path / "a.dbcrate"
    extra = (["-T", "small"] if filtered else []) + (["--tolerate"] if tolerate else [])
    started = time.monotonic()
    code, _, err = run_cli("dump", src, str(archive), "-j", str(jobs), "--chunk-rows", "10000",
                           "--no-progress", *extra)
    finished = time.monotonic()
    altered["thread"].join(30)
    assert early == [not filtered]
    assert "error" not in altered, altered  # the ALTER was not kept waiting 20 s
    assert altered["at"] >= finished - 0.5 and finished - started < 15
    assert code == 0, err
    assert (jobs == 1 and not handed) or (jobs == 2 and set(handed) == {"big"}), handed
    manifest = manifest_of(read_members(archive))
    assert any("CREATE TABLE public.big" in o["sql"] for o in manifest["native"]["objects"])
    target = f"sqlite:///{tmp_path / 'back.db'}"
    code, _, err = run_cli("restore", str(archive), target)
    assert code == 0, err
    assert rows(target, "SELECT count(*), sum(id) FROM big") == [(50000, 50000 * 50001 // 2)]
