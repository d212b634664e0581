"""Progress that tells the truth (issue 17): the generator's ``(done, total, description)``
contract on a big table, for dump and restore, and the CLI's progress lines under a pty.

The contract (docs/CLI.md, "Progress events"): within one description ``total`` never changes
and ``done`` never goes back; a big table yields events while it is read or written; the
``overall`` events give the whole run's bytes and end with ``done == total``.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import dbcrate
from dbcrate.options import DumpOptions, RestoreOptions
from dbcrate.progress import Event, drain

from conftest import Databases, rows, run_sql

BIG_ROWS = 1_000_000
BATCH = 8_192  # small batches: many of them while the big table takes a second or two


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with one big table and one small one."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, val REAL)")
        conn.execute("CREATE TABLE small (id INTEGER PRIMARY KEY, t TEXT)")
        conn.executemany("INSERT INTO big VALUES (?, ?, ?)",
                         ((i, f"name-{i}", i * 0.5) for i in range(BIG_ROWS)))
        conn.executemany("INSERT INTO small VALUES (?, ?)", ((i, "x") for i in range(50)))
    return path


Timed = list[tuple[float, Event]]


def _collect(gen: Generator[Event, None, Any]) -> tuple[Timed, Any]:
    t0 = time.monotonic()
    events: Timed = []
    result = drain(gen, lambda ev: events.append((time.monotonic() - t0, ev)))
    return events, result


def _assert_contract(events: Timed) -> None:
    """Within one description: ``total`` constant, ``done`` never back."""
    seen: dict[str, Event] = {}
    for _, ev in events:
        done, total, description = ev  # the Camelot tuple
        before = seen.get(description)
        if before is not None:
            assert total == before.total, f"{description!r}: total {before.total} -> {total}"
            assert done >= before.done, f"{description!r}: done {before.done} -> {done}"
        seen[description] = ev


def _assert_big_table_moves(events: Timed, description: str, rows_expected: int) -> None:
    """Several events of the big table while it works, and a last one with all its rows."""
    mine = [(t, ev) for t, ev in events if ev.description == description]
    running = [ev for _, ev in mine if not ev.finished]
    # events come with time (about every 0.2 s), so how many a fast machine shows varies: at
    # least one while the table works, each saying something new
    assert running, f"{description}: no event while it ran"
    assert len({ev.rows for ev in running}) == len(running)
    assert all(0 < ev.rows < rows_expected for ev in running[:-1])
    assert all(ev.bytes > 0 for ev in running)
    last = mine[-1][1]
    assert last.finished and last.rows == rows_expected and last.done == rows_expected
    # bounded: not one event per batch (about one per 0.2 s)
    span = mine[-1][0] - mine[0][0]
    assert len(mine) <= span / 0.2 + 3, f"{len(mine)} events in {span:.2f}s"


def _overall(events: Timed, description: str, moves: int = 3) -> list[Event]:
    overall = [ev for _, ev in events if ev.phase == "overall"]
    assert overall and all(ev.description == description for ev in overall)
    assert overall[0].done == 0
    assert overall[-1].finished and overall[-1].done == overall[-1].total
    assert len({ev.done for ev in overall}) >= moves  # it moves while the big table works
    return overall


def _dump(url: str, out: Path, **options: Any) -> tuple[Timed, Any]:
    opts = DumpOptions(overwrite=True, batch_rows=BATCH, chunk_rows=50_000, **options)
    return _collect(dbcrate.iter_dump(url, out, opts))


def test_dump_generator_contract_on_a_big_table(big_db: Path, tmp_path: Path) -> None:
    events, result = _dump(f"sqlite:///{big_db}", tmp_path / "a.crate")
    _assert_contract(events)
    _assert_big_table_moves(events, "Dump table big", BIG_ROWS)
    overall = _overall(events, "Dump (size estimated)")
    # the total is SQLite's size of the two tables, fixed before the first row is read
    with sqlite3.connect(big_db) as conn:
        pages = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name IN ('big', 'small') "
                             "AND aggregate = 1").fetchone()[0]
    assert overall[0].total == pages
    assert result.manifest.tables[0].rows + result.manifest.tables[1].rows == BIG_ROWS + 50


def test_dump_progress_with_parallel_workers(big_db: Path, tmp_path: Path) -> None:
    """-j 2 with the big table cut into key ranges read at once: one description per table,
    its rows summed over its ranges, never back."""
    events, _ = _dump(f"sqlite:///{big_db}", tmp_path / "j.crate", jobs=2)
    _assert_contract(events)
    big = [ev for _, ev in events if ev.description == "Dump table big"]
    assert big[-1].finished and big[-1].rows == BIG_ROWS


@pytest.fixture(scope="module")
def big_archive(big_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("arch") / "big.crate"
    dbcrate.dump(f"sqlite:///{big_db}", out, DumpOptions(chunk_rows=50_000))
    return out


def _restore(archive: Path, url: str, **options: Any) -> tuple[Timed, Any]:
    return _collect(dbcrate.iter_restore(archive, url, RestoreOptions(**options)))


def test_restore_generator_contract_on_a_big_table(big_archive: Path, dbs: Databases) -> None:
    url = dbs.new("sqlite")
    events, report = _restore(big_archive, url)
    assert report.ok
    _assert_contract(events)
    _assert_big_table_moves(events, "Restore table big", BIG_ROWS)
    overall = _overall(events, "Restore")
    # exact: the archive's data bytes of the selected tables
    with dbcrate.open_archive(big_archive) as arch:
        tables = arch.manifest.tables
    assert overall[0].total == sum(c.size for t in tables for c in t.chunks)
    assert rows(url, "SELECT count(*) FROM big") == [(BIG_ROWS,)]


def test_restore_into_existing_reports_its_chunks(big_archive: Path, dbs: Databases) -> None:
    """Into an existing schema (chunk by chunk): the same contract."""
    url = dbs.new("sqlite")
    dbcrate.restore(big_archive, url, RestoreOptions(schema_only=True))
    events, report = _restore(big_archive, url, mode="into-existing")
    assert report.ok
    _assert_contract(events)
    _assert_big_table_moves(events, "Restore table big", BIG_ROWS)
    _overall(events, "Restore")


#: the PostgreSQL table's rows: the dump lasts several ticks even on a quick moment of the
#: machine (with 500,000 it took under 0.4 s at times: no tick between its start and its end)
PG_ROWS = 1_500_000


def test_postgresql_dump_and_restore(dbs: Databases, tmp_path: Path) -> None:
    """PostgreSQL: the total is pg_table_size of the tables (an estimate), the contract holds
    whatever the estimate, and a restore reports its table while COPY runs."""
    url = dbs.new("postgresql")
    run_sql(url, "CREATE TABLE big (id bigint, name text, val double precision)",
            f"INSERT INTO big SELECT g, 'name-' || g, g * 0.5 FROM generate_series(1, {PG_ROWS}) g",
            "ANALYZE big")
    (size,) = rows(url, "SELECT pg_table_size('big')")[0]
    events, _ = _dump(url, tmp_path / "pg.crate")
    _assert_contract(events)
    overall = _overall(events, "Dump (size estimated)")
    assert overall[0].total == size
    big = [ev for _, ev in events if ev.description == "Dump table big"]
    # at least one event while COPY runs (how many depends on the machine's speed), then the end
    assert len(big) >= 2 and 0 < big[0].rows < PG_ROWS
    assert big[-1].finished and big[-1].rows == PG_ROWS
    events, report = _restore(tmp_path / "pg.crate", dbs.new("postgresql"))
    assert report.ok
    _assert_contract(events)
    _overall(events, "Restore", moves=2)


# ---------------------------------------------------------------------------- the CLI
CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def _screen(out: str) -> tuple[list[str], list[list[str]]]:
    """A rough terminal: the final screen's lines, and each frame drawn before a redraw
    (enough of ``\\r``, ``\\n``, erase line and cursor up for rich's live display)."""
    lines, frames, row, col, i = [""], [], 0, 0, 0
    while i < len(out):
        m = CSI.match(out, i)
        if m:
            arg, cmd = m.groups()
            if cmd == "K" and row == len(lines) - 1 and lines[row].strip():
                frames.append([line.rstrip() for line in lines if line.strip()])
            if cmd == "K":
                lines[row] = lines[row][:col] if arg in ("", "0") else ""
            elif cmd == "A":
                row = max(0, row - int(arg or 1))
            i = m.end()
            continue
        ch, i = out[i], i + 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif ch >= " ":
            line = lines[row].ljust(col)
            lines[row], col = line[:col] + ch + line[col + 1:], col + 1
    return [line.rstrip() for line in lines if line.strip()], frames


def _run_pty(*args: str, columns: int = 100) -> tuple[int, str]:
    """The CLI with standard output and error on a pty ``columns`` wide."""
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: only exec (no pytest machinery runs here)
        os.execve(sys.executable, [sys.executable, "-m", "dbcrate", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


RAW_COUNT = re.compile(r"\b\d{5,}\b")  # a byte count as a plain integer (84729637/84729637)


def _check_cli(out: str, overall: str, table: str, summary: str) -> None:
    final, frames = _screen(out)
    drawn = [line for frame in frames for line in frame]
    bars = [line for line in drawn if line.startswith(overall + " ")]
    assert bars, "\n".join(drawn[-20:])
    # the overall bar: sizes for people, a rate and a time left once it moves
    assert any(re.search(r"MiB/\d+\.\d MiB \d+\.\d [KM]iB/s \d:\d\d:\d\d$", b) for b in bars), bars
    # the big table's line while it works: its rows (with separators) and bytes
    lines = [line for line in drawn if line.strip().startswith(table + " ")]
    assert any(re.search(r"\d{3},\d{3}/1,000,000 rows, \d+\.\d (KiB|MiB)$", x) for x in lines), lines
    # a frame shows the overall bar and the table line together
    assert any(any(x.startswith(overall + " ") for x in f) and
               any(x.strip().startswith(table + " ") for x in f) for f in frames)
    assert not any(RAW_COUNT.search(line) for line in drawn), [
        line for line in drawn if RAW_COUNT.search(line)]
    # the end: no bar, no table line left; only the command's own output
    assert final[-1].startswith(summary), final
    assert not any("━" in line or line.strip().startswith(table) for line in final), final


def test_cli_dump_and_restore_under_a_pty(big_db: Path, tmp_path: Path) -> None:
    crate = tmp_path / "p.crate"
    rc, out = _run_pty("dump", f"sqlite:///{big_db}", str(crate), "--chunk-rows", "50000")
    assert rc == 0, out
    _check_cli(out, "Dump (size estimated)", "Dump table big", "dumped 2 tables")
    target = tmp_path / "r.db"
    rc, out = _run_pty("restore", str(crate), f"sqlite:///{target}")
    assert rc == 0, out
    _check_cli(out, "Restore", "Restore table big", "restored 2 tables")


def test_cli_no_progress_off_a_terminal_and_json_unchanged(big_db: Path, tmp_path: Path) -> None:
    """Standard error a pipe: no progress lines; --json prints the same JSON document."""
    crate = tmp_path / "n.crate"
    proc = subprocess.run([sys.executable, "-m", "dbcrate", "dump", f"sqlite:///{big_db}",
                           str(crate), "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Dump table" not in proc.stderr and "━" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["tables"], doc["rows"], doc["archive"]) == (2, BIG_ROWS + 50, str(crate))


def test_overall_line_shows_a_rate_after_its_first_move() -> None:
    """A run that moves the overall bar once before it ends (a fast dump) still shows a rate
    and a time left: the average since the line appeared, until rich has two samples."""
    from rich.progress import Progress

    from dbcrate.cli.progress import _Detail

    now = [100.0]
    bar = Progress(_Detail(), get_time=lambda: now[0], disable=True)
    task = bar.add_task("Dump", total=40 * 2**20, kind="bytes")
    assert str(_Detail().render(bar.tasks[0])) == "0 B/40.0 MiB"  # nothing moved: no rate
    now[0] += 2.0
    bar.update(task, completed=10 * 2**20)  # one sample: 10 MiB in 2 s
    assert str(_Detail().render(bar.tasks[0])) == "10.0 MiB/40.0 MiB 5.0 MiB/s 0:00:06"
    now[0] += 1.0
    bar.update(task, completed=20 * 2**20)  # two samples: rich's rate, 10 MiB in 1 s
    assert str(_Detail().render(bar.tasks[0])) == "20.0 MiB/40.0 MiB 10.0 MiB/s 0:00:02"
