"""``dump --tolerate``: a table that cannot be read is recorded as failed, the dump goes on, and
the exit code, the manifest and ``ls`` say that the archive is incomplete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

import dbcrate

from conftest import PG_ADMIN, Databases, run_sql
from content import snapshot

DBCRATE = [sys.executable, "-m", "dbcrate"]
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DBCRATE, *args], capture_output=True, text=True, env=ENV, timeout=300)


def test_unreadable_table_is_recorded_as_failed(dbs: Databases, tmp_path: Path) -> None:
    src = dbs.new("postgresql")
    role = f"dbcrate_limited_{uuid.uuid4().hex[:8]}"
    run_sql(src,
            "CREATE TABLE a (id int PRIMARY KEY, v text)",
            "CREATE TABLE secret (id int PRIMARY KEY, v text)",
            "CREATE TABLE z (id int PRIMARY KEY, a_id int REFERENCES a(id))",
            "INSERT INTO a VALUES (1, 'x'), (2, 'y')",
            "INSERT INTO secret VALUES (1, 'hidden')",
            "INSERT INTO z VALUES (10, 1)",
            f"CREATE ROLE {role} LOGIN",
            f"GRANT SELECT ON a, z TO {role}")
    limited = sa.engine.make_url(src).set(username=role).render_as_string(hide_password=False)
    try:
        archive = tmp_path / "partial.crate"
        res = cli("dump", limited, str(archive))  # without --tolerate: the first failure ends it
        assert res.returncode == 13 and "secret" in res.stderr and not archive.exists()

        res = cli("dump", limited, str(archive), "--tolerate", "--json")
        assert res.returncode == 15, res.stderr
        assert "incomplete" in res.stderr and "secret" in res.stderr
        payload = json.loads(res.stdout)
        assert payload["complete"] is False and payload["failed"] == ["secret"]
        # pg_dump locks every table, secret too: the native schema is not captured, and it says so
        assert any("native schema was not captured" in w and "secret" in w
                   for w in payload["warnings"]), payload["warnings"]
        with dbcrate.open_archive(archive) as a:
            assert a.manifest.complete is False
            entry = a.table("secret")
            assert entry.status == "failed" and "permission denied" in (entry.error or "")
            assert a.table("z").status == "ok" and a.table("z").rows == 1  # read after the failure
        res = cli("ls", str(archive))
        assert "INCOMPLETE" in res.stdout and "secret" in res.stdout
        res = cli("verify", str(archive))
        assert res.returncode == 0, res.stderr

        dst = dbs.new("sqlite")
        res = cli("restore", str(archive), dst)
        assert res.returncode == 2 and "failed at dump time" in res.stderr
        res = cli("restore", str(archive), dst, "-T", "secret")
        assert res.returncode == 0, res.stderr
        assert snapshot(dst) == snapshot(src, ["a", "z"])
    finally:
        run_sql(src, f"REVOKE ALL ON a, z FROM {role}")
        run_sql(PG_ADMIN, f"DROP ROLE IF EXISTS {role}")


def test_unreadable_value_on_sqlite(tmp_path: Path) -> None:
    """SQLite: a TEXT value that is not UTF-8 cannot be read exactly; with --tolerate that table
    is recorded as failed and the tables after it are still dumped (inside a savepoint of the
    same read transaction)."""
    src = f"sqlite:///{tmp_path / 'bad.db'}"
    run_sql(src, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)",
            "INSERT INTO a VALUES (1, 'x')",
            "CREATE TABLE bad (id INTEGER PRIMARY KEY, v TEXT)",
            "INSERT INTO bad VALUES (1, CAST(x'ff41' AS TEXT))",
            "CREATE TABLE z (id INTEGER PRIMARY KEY)", "INSERT INTO z VALUES (5)")
    archive = tmp_path / "partial.crate"
    res = cli("dump", src, str(archive))
    assert res.returncode == 13 and "bad" in res.stderr and not archive.exists()
    res = cli("dump", src, str(archive), "--tolerate")
    assert res.returncode == 15, res.stderr
    with dbcrate.open_archive(archive) as a:
        assert {t.name: t.status for t in a.tables} == {"a": "ok", "bad": "failed", "z": "ok"}
        assert "UTF-8" in (a.table("bad").error or "")
    dst = f"sqlite:///{tmp_path / 'copy.db'}"
    res = cli("restore", str(archive), dst, "-T", "bad")
    assert res.returncode == 0, res.stderr
    assert snapshot(dst) == snapshot(src, ["a", "z"])
