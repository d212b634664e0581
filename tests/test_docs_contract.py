"""docs/CLI.md against the code: the exit-code table, the options, and the JSON output fields.

The exit codes and the fields each ``--json`` command prints are documented once, in
docs/CLI.md. These tests parse that page and compare it with what the code has and prints:
:data:`dbcrate.errors.EXIT_CODES` and every ``DbcrateError`` subclass for the exit codes, and
real commands run on a small SQLite database for the JSON fields (the top-level keys and the
keys of a ``tables`` entry). A doc that falls behind the code fails here.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest

import dbcrate
from dbcrate.cli import cli
from dbcrate.errors import EXIT_CODES, DbcrateError

CLI_DOC = Path(__file__).resolve().parent.parent / "docs" / "CLI.md"
ENV = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
ENV.pop("DBCRATE_TRACEBACK", None)


# ----------------------------------------------------------------------------- parsing the doc
def _sections(text: str, level: str) -> dict[str, str]:
    """Heading text -> body, for headings of exactly ``level`` (``"##"`` or ``"###"``)."""
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (``\\|`` is a pipe inside a cell)."""
    inner = line.strip().strip("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def _table_rows(body: str) -> list[list[str]]:
    """The data rows of the first Markdown table in ``body`` (header and rule dropped)."""
    lines = [ln for ln in body.splitlines() if ln.strip().startswith("|")]
    return [_cells(ln) for ln in lines[2:]]


def doc_exit_codes() -> dict[int, str]:
    body = _sections(CLI_DOC.read_text(encoding="utf-8"), "##")["Exit codes"]
    return {int(code): meaning.replace("`", "") for code, meaning in _table_rows(body)}


def doc_json_fields() -> dict[str, tuple[set[str], set[str], set[str]]]:
    """Command (``"dump --json"``) -> (top-level fields, ``tables[]`` fields, optional fields).

    A section ``### `A --json`, `B --json``` documents every command named in its heading; a
    field whose meaning begins "only when" may be absent from the output.
    """
    json_part = CLI_DOC.read_text(encoding="utf-8").split("## JSON output", 1)[1]
    out: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for heading, body in _sections(json_part, "###").items():
        top: set[str] = set()
        entry: set[str] = set()
        optional: set[str] = set()
        for field, meaning in ((row[0].strip("`"), row[1]) for row in _table_rows(body)):
            if field.startswith("tables[]."):
                entry.add(field.removeprefix("tables[]."))
            else:
                top.add(field)
            if meaning.startswith("only when"):
                optional.add(field)
        for command in re.findall(r"`([^`]+)`", heading):
            out[command] = (top, entry, optional)
    return out


# -------------------------------------------------------------------------------- exit codes
def _all_error_classes() -> set[type[DbcrateError]]:
    """Every DbcrateError subclass, after importing every dbcrate module that can be imported
    without Django settings (so that subclasses defined outside errors.py are seen too)."""
    for info in pkgutil.walk_packages(dbcrate.__path__, "dbcrate."):
        if info.name.startswith("dbcrate.contrib") or info.name == "dbcrate.__main__":
            continue
        importlib.import_module(info.name)
    seen: set[type[DbcrateError]] = set()
    todo = [DbcrateError]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.add(cls)
            todo.extend(cls.__subclasses__())
    return seen


def test_exit_code_table_equals_the_code() -> None:
    assert doc_exit_codes() == EXIT_CODES


def test_every_option_is_documented() -> None:
    """Every option a command shows in ``--help`` (each of its spellings) is named in
    docs/CLI.md."""
    doc = CLI_DOC.read_text(encoding="utf-8")
    missing = [f"{name} {opt}" for name, command in cli.commands.items()
               for param in command.params
               if isinstance(param, click.Option) and not param.hidden
               for opt in (*param.opts, *param.secondary_opts)
               if not re.search(rf"`[^`]*(?<![\w-]){re.escape(opt)}(?![\w-])[^`]*`", doc)]
    assert not missing


def test_every_error_class_has_a_documented_exit_code() -> None:
    documented = doc_exit_codes()
    undocumented = {cls.__qualname__: cls.exit_code for cls in _all_error_classes()
                    if cls.exit_code not in documented}
    assert not undocumented


# ------------------------------------------------------------------------------- JSON fields
def _run(*args: str, cwd: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "dbcrate", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (args, proc.stderr)
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def _check(command: str, data: dict[str, object]) -> None:
    top, entry, optional = doc_json_fields()[command]
    printed = set(data)
    assert printed <= top, f"{command}: undocumented fields {sorted(printed - top)}"
    missing = top - optional - printed
    assert not missing, f"{command}: documented fields not printed {sorted(missing)}"
    tables = data.get("tables")
    if isinstance(tables, list):
        assert tables, f"{command}: the test database has a table"
        for item in tables:
            assert isinstance(item, dict)
            keys = set(item)
            assert keys <= entry, f"{command}: undocumented tables[] fields {sorted(keys - entry)}"
            gone = entry - optional - keys
            assert not gone, f"{command}: documented tables[] fields not printed {sorted(gone)}"
    else:
        assert not entry, f"{command}: tables[] fields documented, but tables is {tables!r}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SQLite database (two tables) and its archive ``a.crate``."""
    work = tmp_path_factory.mktemp("contract")
    con = sqlite3.connect(work / "a.db")
    con.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER "
                "REFERENCES customer(id), total NUMERIC(10, 2))")
    con.executemany("INSERT INTO customer VALUES (?, ?)", [(i, f"c{i}") for i in range(1, 6)])
    con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, 1 + i % 5, "1.50")
                                                            for i in range(1, 21)])
    con.commit()
    con.close()
    subprocess.run([sys.executable, "-m", "dbcrate", "dump", "sqlite:///a.db", "a.crate"],
                   cwd=work, env=ENV, check=True, capture_output=True, timeout=300)
    return work


def test_every_documented_command_is_checked() -> None:
    assert set(doc_json_fields()) == {
        "dump --json", "dump --dry-run --json", "convert --json", "copy --json", "ls --json",
        "ls --against URL --json", "verify --json", "prune --json", "restore --json",
        "restore --dry-run --json", "plan --json",
    }


def test_dump_json(workdir: Path) -> None:
    _check("dump --json", _run("dump", "sqlite:///a.db", "b.crate", "--json", cwd=workdir))
    (workdir / "out").mkdir()
    into_directory = _run("dump", "sqlite:///a.db", "out", "--json", cwd=workdir)
    assert "name_taken" in into_directory
    _check("dump --json", into_directory)


def test_dump_dry_run_json(workdir: Path) -> None:
    _check("dump --dry-run --json",
           _run("dump", "sqlite:///a.db", "c.crate", "--dry-run", "--json", cwd=workdir))


def test_convert_json(workdir: Path) -> None:
    _check("convert --json", _run("convert", "a.crate", "conv", "--as", "directory", "--json",
                                  cwd=workdir))


def test_ls_json(workdir: Path) -> None:
    _check("ls --json", _run("ls", "a.crate", "--json", cwd=workdir))


def test_ls_against_json(workdir: Path) -> None:
    _check("ls --against URL --json",
           _run("ls", "a.crate", "--against", "sqlite:///a.db", "--json", cwd=workdir))


def test_verify_json(workdir: Path) -> None:
    _check("verify --json", _run("verify", "a.crate", "--json", cwd=workdir))


def test_copy_json(workdir: Path) -> None:
    data = _run("copy", "sqlite:///a.db", "sqlite:///copied.db", "--json", cwd=workdir)
    _check("copy --json", data)
    assert isinstance(data["restore"], dict)
    _check("restore --json", data["restore"])


def test_prune_json(workdir: Path) -> None:
    _check("prune --json", _run("prune", ".", "--keep-last", "5", "--dry-run", "--json",
                                cwd=workdir))


def test_restore_json(workdir: Path) -> None:
    _check("restore --json", _run("restore", "a.crate", "sqlite:///r.db", "--json", cwd=workdir))


def test_restore_dry_run_json(workdir: Path) -> None:
    _check("restore --dry-run --json",
           _run("restore", "a.crate", "sqlite:///dry.db", "--dry-run", "--json", cwd=workdir))


def test_plan_json(workdir: Path) -> None:
    _check("plan --json", _run("plan", "a.crate", "sqlite:///p.db", "--json", cwd=workdir))
