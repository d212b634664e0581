"""The options are stated once: the option dataclasses' ``Literal`` types and defaults against
the registries they mirror, and the CLI's choices and defaults against the dataclasses.

* every ``Literal`` of :mod:`dbcrate.options` equals the set the library dispatches on
  (container kinds, conflict policies, storage policies, restore modes); ``data_format`` is an
  open set (plugin formats) and stays a ``str``;
* every click option of ``dump``, ``restore``, ``plan`` and ``convert`` that sets an options
  field has that field's default and, for a ``Literal`` field, its choices;
* ``--chunk-rows`` is the one chunk-size option of ``dump`` and ``convert``; ``--max-row-count``
  is a hidden alias of it;
* ``plan`` shares restore's options, help texts included; ``dbcrate --help`` lists the
  commands it listed before the CLI was split into modules.
"""

from __future__ import annotations

import contextlib
import sqlite3
import typing
from pathlib import Path
from typing import Any

import click
import pytest

import dbcrate
from dbcrate.cli import cli
from dbcrate.cli.params import dump_chunk_rows, given_chunk_rows
from dbcrate.containers.kinds import CONTAINER_KINDS
from dbcrate.errors import UsageError
from dbcrate.formats.registry import FORMATS
from dbcrate.options import DumpOptions, RestoreOptions, choices_of, default_of
from dbcrate.restore.conflicts import POLICIES
from dbcrate.storages.restore import POLICIES as STORAGE_POLICIES

from conftest import run_cli

#: the options class each command fills
COMMAND_OPTIONS: dict[str, type[Any]] = {
    "dump": DumpOptions, "restore": RestoreOptions, "plan": RestoreOptions, "convert": DumpOptions,
}
#: click parameter name -> options field, where the two differ
RENAMED = {"kind": "container", "compress_level": "compression_level"}
#: (command, field) whose CLI default differs from the dataclass's on purpose, and why
OWN_DEFAULT = {
    ("dump", "chunk_rows"): "None: the kind's default (dump_chunk_rows)",
    ("convert", "chunk_rows"): "None: keep the source's chunks (the library's default)",
    ("convert", "data_format"): "None: the source's data format",
}
#: how a click default is spelled for a field of another type
AS_FIELD = {"archive_mode": lambda text: int(text, 8)}


# --------------------------------------------------------------------- the Literals and registries
def test_container_kinds_are_the_registry() -> None:
    assert choices_of(DumpOptions, "container") == tuple(CONTAINER_KINDS)
    assert default_of(DumpOptions, "container") in CONTAINER_KINDS


def test_conflict_policies_are_the_registry() -> None:
    assert choices_of(RestoreOptions, "on_conflict") == POLICIES
    assert default_of(RestoreOptions, "on_conflict") == "error"


def test_storage_policies_are_the_registry() -> None:
    assert choices_of(RestoreOptions, "storages_policy") == STORAGE_POLICIES
    assert default_of(RestoreOptions, "storages_policy") in STORAGE_POLICIES


def test_data_format_is_an_open_set() -> None:
    """Plugins add formats at run time: the field is a ``str`` whose default is built in."""
    with pytest.raises(TypeError, match="not a Literal"):
        choices_of(DumpOptions, "data_format")
    assert default_of(DumpOptions, "data_format") in FORMATS


def _small_archive(tmp_path: Path) -> Path:
    db = tmp_path / "src.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i)) for i in range(10)])
        conn.commit()
    archive = tmp_path / "a.crate"
    dbcrate.dump(f"sqlite:///{db}", archive)
    return archive


def test_restore_modes_are_what_the_restore_accepts(tmp_path: Path) -> None:
    """The restore refuses a mode outside the Literal and knows every mode in it."""
    archive = _small_archive(tmp_path)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(UsageError, match="unknown restore mode"):
        dbcrate.restore(archive, target, RestoreOptions(mode="sideways", dry_run=True))  # type: ignore[arg-type]
    for mode in choices_of(RestoreOptions, "mode"):
        try:
            dbcrate.restore(archive, target, RestoreOptions(mode=mode, dry_run=True))  # type: ignore[arg-type]
        except dbcrate.DbcrateError as exc:  # into-existing: the target has no table t
            assert "unknown restore mode" not in exc.message


def test_choices_of_and_default_of() -> None:
    assert choices_of(RestoreOptions, "mode") == ("recreate", "into-existing")
    assert default_of(DumpOptions, "include") == []
    assert default_of(DumpOptions, "include") is not default_of(DumpOptions, "include")
    assert default_of(DumpOptions, "chunk_rows") == 250_000
    with pytest.raises(TypeError):
        choices_of(DumpOptions, "jobs")
    with pytest.raises(KeyError):
        default_of(DumpOptions, "no_such_field")


# ------------------------------------------------------------------ the CLI against the options
def _command(name: str) -> click.Command:
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    return command


def _mapped_options(name: str) -> list[tuple[click.Option, str]]:
    """The click options of command ``name`` that set a field of its options class."""
    fields = set(typing.get_type_hints(COMMAND_OPTIONS[name]))
    found = []
    for param in _command(name).params:
        field = RENAMED.get(param.name or "", param.name or "")
        if isinstance(param, click.Option) and field in fields:
            found.append((param, field))
    return found


@pytest.mark.parametrize("name", sorted(COMMAND_OPTIONS))
def test_cli_defaults_and_choices_come_from_the_options(name: str) -> None:
    cls = COMMAND_OPTIONS[name]
    # the values a command gets when no option is given (both commands take two arguments)
    given = _command(name).make_context(name, ["ARG1", "ARG2"]).params
    checked = 0
    for param, field in _mapped_options(name):
        default = given[param.name]
        if (name, field) in OWN_DEFAULT:
            assert default is None, (name, field)
            continue
        expected = default_of(cls, field)
        if param.multiple:
            assert expected == [] and default == (), (name, field)
        elif param.is_flag:
            assert default is False and expected is False, (name, field)
        else:
            shown = AS_FIELD.get(field, lambda v: v)(default)
            assert shown == expected, (name, field, default, expected)
        try:
            choices = choices_of(cls, field)
        except TypeError:
            assert not isinstance(param.type, click.Choice), (name, field)
        else:
            assert isinstance(param.type, click.Choice), (name, field)
            assert tuple(param.type.choices) == choices, (name, field)
        checked += 1
    assert checked >= 2, f"{name}: too few options matched fields ({checked})"


def test_the_options_named_in_the_task_are_checked() -> None:
    """The walk above sees the options that restate a field (it maps them by name)."""
    seen = {(name, field) for name in COMMAND_OPTIONS for _, field in _mapped_options(name)}
    for expected in [("restore", "mode"), ("restore", "storages_policy"),
                     ("restore", "on_conflict"), ("plan", "mode"), ("plan", "on_conflict"),
                     ("dump", "container"), ("convert", "container"), ("dump", "data_format"),
                     ("dump", "compression_level"), ("dump", "chunk_rows"), ("dump", "jobs"),
                     ("restore", "jobs"), ("dump", "archive_mode")]:
        assert expected in seen


def test_plan_shares_restores_options() -> None:
    """plan's options are restore's: the same declarations, the same help texts."""
    restore = {p.name: p for p in _command("restore").params}
    for param in _command("plan").params:
        if not isinstance(param, click.Option):
            continue
        assert param.help, f"plan {param.opts} has no help"
        if param.name in restore and param.name != "as_json":
            other = restore[param.name]
            assert isinstance(other, click.Option)
            assert (param.opts, param.help, param.to_info_dict()) == (other.opts, other.help,
                                                                     other.to_info_dict())


def test_commands_listed_as_before() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == ["convert", "copy", "dump", "keygen", "ls", "plan", "prune",
                                      "restore", "verify"]


# --------------------------------------------------------------------------------- --chunk-rows
_run = run_cli


def test_chunk_rows_default_is_the_kinds() -> None:
    assert dump_chunk_rows("tar") == dump_chunk_rows("directory") == 250_000
    assert dump_chunk_rows("sqlite") == CONTAINER_KINDS["sqlite"].default_max_rows
    assert dump_chunk_rows("python") == CONTAINER_KINDS["python"].default_max_rows == 50_000


def test_max_row_count_is_a_hidden_alias() -> None:
    assert given_chunk_rows(None, None) is None
    assert given_chunk_rows(10, None) == given_chunk_rows(None, 10) == given_chunk_rows(10, 10) == 10
    with pytest.raises(UsageError, match="disagree"):
        given_chunk_rows(10, 20)
    for name in ("dump", "convert"):
        code, text, _ = _run(name, "--help")
        assert code == 0
        assert "--chunk-rows" in text and "--max-row-count" not in text


def _chunks(archive: Path) -> list[int]:
    with dbcrate.open_archive(archive) as a:
        return [len(t.chunks) for t in a.manifest.tables]


@pytest.mark.parametrize("flag", ["--chunk-rows", "--max-row-count"])
def test_chunk_rows_and_its_alias_split_alike(flag: str, tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i)) for i in range(250)])
        conn.commit()
    crate, py, again = tmp_path / "a.crate", tmp_path / "a_py", tmp_path / "b.crate"
    assert _run("dump", str(db), str(crate), flag, "100", "--no-progress")[0] == 0
    assert _chunks(crate) == [3]
    assert _run("dump", str(db), str(py), "--as", "python", flag, "60", "--no-progress")[0] == 0
    assert _chunks(py) == [5]
    assert _run("convert", str(crate), str(again), flag, "50", "--no-progress")[0] == 0
    assert _chunks(again) == [5]
    code, _, err = _run("dump", str(db), str(tmp_path / "c.crate"), "--chunk-rows", "10",
                        "--max-row-count", "20")
    assert code == 2 and "disagree" in err
    assert not (tmp_path / "c.crate").exists()
